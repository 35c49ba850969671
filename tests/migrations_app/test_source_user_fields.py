"""`user_fields`: legacy_accounts -> UserProfile, one migration entry, legacy history."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.models import LegacyAccount, LegacyCreditTransaction, LegacyPayment, UserProfile
from credits.models import CreditAccount, CreditTransaction, EntryKind
from credits.selectors import ledger_sum
from migrations_app.models import MigrationStatus, UserMigration
from tests.factories import (
    LegacyAccountFactory,
    LegacyCreditTransactionFactory,
    LegacyPaymentFactory,
)
from tests.helpers import entries_of, sources_args, table_contents

pytestmark = pytest.mark.django_db

SOURCE = sources_args("user_fields")


def test_profile_is_synced_from_legacy_account(migrate):
    # given
    started = timezone.now().replace(microsecond=0) - timedelta(days=40)
    ends = started + timedelta(days=70)
    legacy = LegacyAccountFactory(
        plan="pro",
        credits_balance=Decimal("260.00"),
        subscription_status="active",
        subscription_started_at=started,
        subscription_ends_at=ends,
        stripe_customer_id="cus_123",
        stripe_price_id="price_pro_monthly",
        preferences={"theme": "dark", "digest": False},
        usage_stats={"exports": 12, "last_login": "2026-10-01"},
    )
    # when
    migrate("--execute", "--yes", *SOURCE)
    # then
    profile = UserProfile.objects.get(user_id=legacy.user_id)
    assert profile.plan == "pro"
    assert profile.subscription_status == "active"
    assert profile.subscription_started_at == started
    assert profile.subscription_ends_at == ends
    assert profile.stripe_customer_id == "cus_123"
    assert profile.stripe_price_id == "price_pro_monthly"
    assert profile.preferences == {"theme": "dark", "digest": False}
    assert profile.usage_stats == {"exports": 12, "last_login": "2026-10-01"}
    assert profile.migration_completed_at is not None


def test_empty_stripe_customer_id_becomes_null(migrate):
    # given: several users without a Stripe customer (the profile column is unique)
    first = LegacyAccountFactory(stripe_customer_id="")
    second = LegacyAccountFactory(stripe_customer_id="")
    # when
    migrate("--execute", "--yes", *SOURCE)
    # then
    for legacy in (first, second):
        assert UserProfile.objects.get(user_id=legacy.user_id).stripe_customer_id is None


def test_credits_balance_becomes_one_migration_entry(migrate):
    # given
    legacy = LegacyAccountFactory(plan="pro", credits_balance=Decimal("260.00"))
    # when
    migrate("--execute", "--yes", *SOURCE)
    # then
    account = CreditAccount.objects.get(user_id=legacy.user_id)
    account.refresh_from_db()
    assert account.balance == Decimal("260.00")
    assert ledger_sum(account=account) == Decimal("260.00")
    (entry,) = entries_of(legacy.user, kind=EntryKind.MIGRATION)
    assert entry.amount == Decimal("260.00")
    assert entry.migrated_from == "user_fields"
    assert entry.idempotency_key == f"migration:user_fields:{legacy.user_id}:0"
    row = UserMigration.objects.get(user_id=legacy.user_id, source="user_fields")
    assert row.status == MigrationStatus.COMPLETED
    assert row.initial_credits_granted == Decimal("260.00")
    assert row.rounding_remainder == Decimal("0")
    assert row.legacy_currency == "CREDITS"
    assert row.legacy_amount == Decimal("260.00")
    assert row.rate == Decimal("1")
    assert row.attempts == 1
    assert not row.data_mismatch


def test_legacy_ledger_and_paid_payments_become_history(migrate):
    # given
    legacy = LegacyAccountFactory(credits_balance=Decimal("12.50"))
    purchase = LegacyCreditTransactionFactory(
        user=legacy.user, delta=Decimal("20.00"), reason="purchase", stripe_event_id="evt_1"
    )
    usage = LegacyCreditTransactionFactory(user=legacy.user, delta=Decimal("-7.50"), reason="use")
    paid = LegacyPaymentFactory(user=legacy.user, amount=1999, status="PAID")
    LegacyPaymentFactory(user=legacy.user, amount=1999, status="FAILED")
    # when
    migrate("--execute", "--yes", *SOURCE)
    # then
    history = entries_of(legacy.user, kind=EntryKind.HISTORY)
    assert [(entry.legacy_transaction_id, entry.amount) for entry in history] == [
        (f"legacy_credit_transactions:{purchase.pk}", Decimal("0.00")),
        (f"legacy_credit_transactions:{usage.pk}", Decimal("0.00")),
        (f"payments:{paid.pk}", Decimal("0.00")),
    ]
    assert history[0].metadata["delta"] == "20.00"
    assert history[0].metadata["stripe_event_id"] == "evt_1"
    assert history[2].metadata["amount_cents"] == 1999
    assert history[2].description == "Legacy payment 19.99 USD"
    assert all(entry.migrated_from == "user_fields" for entry in history)
    row = UserMigration.objects.get(user_id=legacy.user_id)
    assert row.historical_operations == 3
    assert not row.data_mismatch
    account = CreditAccount.objects.get(user_id=legacy.user_id)
    assert account.balance == Decimal("12.50") == ledger_sum(account=account)
    assert entries_of(legacy.user).count() == 4


def test_ledger_mismatch_is_reported_and_the_user_still_migrated(migrate):
    # given: the legacy ledger sums to 500, the user was shown 1000
    legacy = LegacyAccountFactory(plan="business", credits_balance=Decimal("1000.00"))
    LegacyCreditTransactionFactory(user=legacy.user, delta=Decimal("500.00"))
    # when
    _, out = migrate("--execute", "--yes", *SOURCE)
    # then
    row = UserMigration.objects.get(user_id=legacy.user_id)
    assert row.status == MigrationStatus.COMPLETED
    assert row.data_mismatch
    assert row.mismatch_detail == "legacy ledger sums to 500.00, credits_balance is 1000.00"
    assert row.initial_credits_granted == Decimal("1000.00")
    assert "MISMATCH: legacy ledger sums to 500.00" in out
    assert "data mismatches: 1 (migrated, reported)" in out
    account = CreditAccount.objects.get(user_id=legacy.user_id)
    assert account.balance == Decimal("1000.00")


def test_ledger_mismatch_in_json_report(migrate):
    # given
    legacy = LegacyAccountFactory(credits_balance=Decimal("30.00"))
    LegacyCreditTransactionFactory(user=legacy.user, delta=Decimal("10.00"))
    # when
    _, report = migrate("--dry-run", "--format", "json", *SOURCE)
    # then
    (mismatch,) = report["data_mismatches"]
    assert mismatch["user_id"] == legacy.user_id
    assert mismatch["data_mismatch"] == "legacy ledger sums to 10.00, credits_balance is 30.00"
    assert mismatch["credits"] == "30.00"


def test_negative_credits_balance_fails_the_user_with_the_error(migrate):
    # given
    broken = LegacyAccountFactory(credits_balance=Decimal("-5.00"))
    fine = LegacyAccountFactory(credits_balance=Decimal("5.00"))
    # when
    _, out = migrate("--execute", "--yes", *SOURCE, expect=1)
    # then
    row = UserMigration.objects.get(user_id=broken.user_id)
    assert row.status == MigrationStatus.FAILED
    assert row.error_message == "negative legacy credits_balance (-5.00)"
    assert row.attempts == 1
    assert f"user {broken.user_id} {broken.user.email} [user_fields]: negative legacy" in out
    assert not CreditTransaction.objects.filter(account__user_id=broken.user_id).exists()
    assert UserMigration.objects.get(user_id=fine.user_id).status == MigrationStatus.COMPLETED


def test_zero_credits_balance_migrates_without_a_migration_entry(migrate):
    # given
    legacy = LegacyAccountFactory(credits_balance=Decimal("0.00"))
    # when
    migrate("--execute", "--yes", *SOURCE)
    # then
    row = UserMigration.objects.get(user_id=legacy.user_id)
    assert row.status == MigrationStatus.COMPLETED
    assert row.initial_credits_granted == Decimal("0.00")
    assert not entries_of(legacy.user).exists()
    assert CreditAccount.objects.get(user_id=legacy.user_id).balance == Decimal("0.00")


def test_legacy_side_is_untouched(migrate):
    # given
    legacy = LegacyAccountFactory(
        plan="pro", credits_balance=Decimal("42.42"), stripe_customer_id="cus_keep"
    )
    LegacyCreditTransactionFactory(user=legacy.user, delta=Decimal("42.42"))
    LegacyPaymentFactory(user=legacy.user)
    LegacyPaymentFactory(user=legacy.user, status="FAILED")
    LegacyAccountFactory(credits_balance=Decimal("-1.00"))
    before = table_contents(LegacyAccount, LegacyCreditTransaction, LegacyPayment)
    # when
    migrate("--execute", "--yes", *SOURCE, expect=1)
    # then
    assert table_contents(LegacyAccount, LegacyCreditTransaction, LegacyPayment) == before
