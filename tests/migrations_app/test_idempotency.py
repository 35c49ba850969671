"""Running --execute again: nothing new after success; FAILED users are retried once fixed."""

from decimal import Decimal

import pytest

from billing.models import LegacyAccount, LegacyBilling, UserProfile
from credits.models import CreditAccount, CreditTransaction
from migrations_app.models import MigrationStatus, UserMigration
from tests.factories import LegacyAccountFactory, LegacyBillingFactory
from tests.helpers import sources_args, table_contents

pytestmark = pytest.mark.django_db


def test_a_second_execute_after_success_writes_nothing_new(migrate, legacy_world):
    # given
    migrate("--execute", "--yes", *sources_args(), expect=1)
    entries = CreditTransaction.objects.count()
    balances = dict(CreditAccount.objects.values_list("user_id", "balance"))
    before = table_contents(
        CreditAccount, CreditTransaction, UserMigration, UserProfile, LegacyBilling, LegacyAccount
    )
    # when
    _, report = migrate("--execute", "--yes", "--format", "json", *sources_args(), expect=1)
    # then
    assert CreditTransaction.objects.count() == entries
    assert dict(CreditAccount.objects.values_list("user_id", "balance")) == balances
    after = table_contents(
        CreditAccount, CreditTransaction, UserMigration, UserProfile, LegacyBilling, LegacyAccount
    )
    for label in after:
        if label != "migrations_app.UserMigration":
            assert after[label] == before[label], label
    # only the FAILED users were tried again, and failed again: their data is unchanged
    for row_before, row_after in zip(
        before["migrations_app.UserMigration"], after["migrations_app.UserMigration"], strict=True
    ):
        if row_before["status"] == MigrationStatus.FAILED:
            assert row_after["attempts"] == row_before["attempts"] + 1
        else:
            assert row_after == row_before
    assert report["credits"] == "0.00"
    assert report["skipped"] == {"already migrated": 14}
    assert report["users"] == {"skipped": 14, "failed": 4}


def test_a_failed_user_is_retried_after_the_data_is_fixed(migrate):
    # given
    broken = LegacyBillingFactory(balance_usd=Decimal("-3.00"))
    migrate("--execute", "--yes", *sources_args("usd_balance"), expect=1)
    row = UserMigration.objects.get(user_id=broken.user_id)
    assert (row.status, row.attempts) == (MigrationStatus.FAILED, 1)
    LegacyBilling.objects.filter(pk=broken.pk).update(balance_usd=Decimal("3.00"))
    # when
    migrate("--execute", "--yes", *sources_args("usd_balance"))
    # then
    row.refresh_from_db()
    assert row.status == MigrationStatus.COMPLETED
    assert row.attempts == 2
    assert row.error_message == ""
    assert row.initial_credits_granted == Decimal("3.00")
    account = CreditAccount.objects.get(user_id=broken.user_id)
    assert account.balance == Decimal("3.00")
    broken.refresh_from_db()
    assert broken.balance_usd == Decimal("0.00")
    migrate("--verify", *sources_args("usd_balance"))


def test_a_user_failed_at_the_database_is_retried_after_the_data_is_fixed(migrate):
    # given: two legacy accounts with one Stripe customer
    first = LegacyAccountFactory(credits_balance=Decimal("1.00"), stripe_customer_id="cus_dup")
    second = LegacyAccountFactory(credits_balance=Decimal("2.00"), stripe_customer_id="cus_dup")
    migrate("--execute", "--yes", *sources_args("user_fields"), expect=1)
    assert UserMigration.objects.get(user_id=second.user_id).status == MigrationStatus.FAILED
    LegacyAccount.objects.filter(pk=second.pk).update(stripe_customer_id="cus_second")
    # when
    migrate("--execute", "--yes", *sources_args("user_fields"))
    # then
    row = UserMigration.objects.get(user_id=second.user_id)
    assert (row.status, row.attempts) == (MigrationStatus.COMPLETED, 2)
    assert CreditAccount.objects.get(user_id=second.user_id).balance == Decimal("2.00")
    assert CreditAccount.objects.get(user_id=first.user_id).balance == Decimal("1.00")
    assert UserMigration.objects.get(user_id=first.user_id).attempts == 1
    assert UserProfile.objects.get(user_id=second.user_id).stripe_customer_id == "cus_second"
