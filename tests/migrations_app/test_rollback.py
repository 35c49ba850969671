"""--rollback: reversal entries appended, nothing deleted, legacy values restored exactly."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.models import LegacyAccount, LegacyBilling, UserProfile
from credits.models import CreditAccount, CreditTransaction, EntryKind
from credits.selectors import ledger_sum
from credits.services import credit_spend
from migrations_app.models import MigrationRun, MigrationStatus, RunMode, UserMigration
from migrations_app.sources.user_fields import PROFILE_FIELDS
from tests.factories import (
    LegacyAccountFactory,
    LegacyBillingFactory,
    LegacyCreditTransactionFactory,
)
from tests.helpers import entries_of, sources_args, table_contents

WRITE_REFUSED = "the database refused this user's migration: "

pytestmark = pytest.mark.django_db

USD = sources_args("usd_balance")


def spend(user, amount: str) -> None:
    credit_spend(
        account=CreditAccount.objects.get(user=user),
        amount=Decimal(amount),
        idempotency_key=f"spend:{user.pk}:{amount}",
    )


def profile_fields(user_id) -> dict:
    return UserProfile.objects.filter(user_id=user_id).values(*PROFILE_FIELDS).get()


def test_rollback_restores_usd_and_uah_and_appends_a_reversal(migrate):
    # given
    legacy = LegacyBillingFactory(balance_usd=Decimal("12.34"), balance_uah=Decimal("567.89"))
    other = LegacyBillingFactory(balance_usd=Decimal("1.00"))
    migrate("--execute", "--yes", *USD)
    (migration_entry,) = entries_of(legacy.user)
    entries_before = list(CreditTransaction.objects.order_by("pk").values())
    # when
    _, out = migrate("--rollback", "--yes", "--user", str(legacy.user_id), *USD)
    # then
    legacy.refresh_from_db()
    assert legacy.balance_usd == Decimal("12.34")
    assert legacy.balance_uah == Decimal("567.89")
    # nothing deleted or changed on the ledger: one reversal appended
    entries_after = list(CreditTransaction.objects.order_by("pk").values())
    assert entries_after[: len(entries_before)] == entries_before
    (reversal,) = entries_after[len(entries_before) :]
    assert reversal["kind"] == EntryKind.REVERSAL
    assert reversal["amount"] == Decimal("-25.97")  # 12.34 + 567.89 x 0.024 = 25.96936
    assert reversal["reverses_id"] == migration_entry.pk
    assert reversal["migrated_from"] == "usd_balance"
    account = CreditAccount.objects.get(user_id=legacy.user_id)
    assert account.balance == Decimal("0.00") == ledger_sum(account=account)
    row = UserMigration.objects.get(user_id=legacy.user_id)
    assert row.status == MigrationStatus.ROLLED_BACK
    assert row.generation == 1
    assert row.rollback_data["rollback"]["reversed"] == "25.97"
    assert row.rollback_data["rollback"]["shortfall"] == "0.00"
    assert row.rollback_data["balance_usd"] == "12.34"
    assert row.run.mode == RunMode.ROLLBACK
    assert UserProfile.objects.get(user_id=legacy.user_id).migration_completed_at is None
    assert "users rolled back: 1" in out
    assert "credits reversed: 25.97" in out
    # the other user is untouched
    assert UserMigration.objects.get(user_id=other.user_id).status == MigrationStatus.COMPLETED
    other.refresh_from_db()
    assert other.balance_usd == Decimal("0.00")
    migrate("--verify", *USD)


def test_rollback_with_keep_legacy_leaves_legacy_values(migrate):
    # given
    legacy = LegacyBillingFactory(balance_usd=Decimal("5.00"))
    migrate("--execute", "--yes", "--keep-legacy", *USD)
    # when
    migrate("--rollback", "--yes", "--user", str(legacy.user_id), *USD)
    # then
    legacy.refresh_from_db()
    assert legacy.balance_usd == Decimal("5.00")
    assert CreditAccount.objects.get(user_id=legacy.user_id).balance == Decimal("0.00")
    migrate("--verify", *USD)


def test_rollback_by_email_restores_the_profile_fields_user_fields_synced(migrate):
    # given: a profile that existed before the migration
    legacy = LegacyAccountFactory(
        plan="pro",
        credits_balance=Decimal("260.00"),
        subscription_status="active",
        subscription_started_at=timezone.now() - timedelta(days=3),
        stripe_customer_id="cus_new",
        stripe_price_id="price_pro",
        preferences={"theme": "dark"},
        usage_stats={"exports": 3},
    )
    started = timezone.now() - timedelta(days=400, microseconds=123)
    UserProfile.objects.create(
        user=legacy.user,
        plan="free",
        subscription_status="canceled",
        subscription_started_at=started,
        subscription_ends_at=None,
        stripe_customer_id="cus_old",
        stripe_price_id="",
        preferences={"lang": "uk", "nested": {"a": [1, 2]}},
        usage_stats={},
    )
    before = profile_fields(legacy.user_id)
    migrate("--execute", "--yes", *sources_args("user_fields"))
    assert profile_fields(legacy.user_id)["stripe_customer_id"] == "cus_new"
    # when
    migrate("--rollback", "--yes", "--user", legacy.user.email, *sources_args("user_fields"))
    # then
    assert profile_fields(legacy.user_id) == before
    assert before["subscription_started_at"] == started
    assert CreditAccount.objects.get(user_id=legacy.user_id).balance == Decimal("0.00")
    migrate("--verify", *sources_args("user_fields"))


def test_rollback_of_a_profile_the_migration_made_resets_it_to_a_new_profiles_values(migrate):
    # given
    legacy = LegacyAccountFactory(plan="business", stripe_customer_id="cus_1", preferences={"a": 1})
    migrate("--execute", "--yes", *sources_args("user_fields"))
    # when
    migrate("--rollback", "--yes", "--user", str(legacy.user_id), *sources_args("user_fields"))
    # then
    assert profile_fields(legacy.user_id) == {
        "plan": "free",
        "subscription_status": "",
        "subscription_started_at": None,
        "subscription_ends_at": None,
        "stripe_customer_id": None,
        "stripe_price_id": "",
        "preferences": {},
        "usage_stats": {},
    }


def test_rollback_all_restores_every_legacy_value_and_deletes_no_ledger_row(migrate, legacy_world):
    # given
    billing_before = table_contents(LegacyBilling)
    profiles_before = {
        user_id: profile_fields(user_id)
        for user_id in UserProfile.objects.values_list("user_id", flat=True)
    }
    migrate("--execute", "--yes", *sources_args(), expect=1)
    entries_before = list(CreditTransaction.objects.order_by("pk").values())
    completed = UserMigration.objects.filter(status=MigrationStatus.COMPLETED).count()
    granted = UserMigration.objects.filter(initial_credits_granted__gt=0).count()
    # when
    _, report = migrate("--rollback", "--yes", "--all", "--format", "json", *sources_args())
    # then
    assert report["users"] == {"rolled_back": completed}
    assert table_contents(LegacyBilling) == billing_before
    for user_id, fields in profiles_before.items():
        assert profile_fields(user_id) == fields
    entries_after = list(CreditTransaction.objects.order_by("pk").values())
    assert entries_after[: len(entries_before)] == entries_before
    new = entries_after[len(entries_before) :]
    assert [entry["kind"] for entry in new] == [EntryKind.REVERSAL] * granted
    assert set(
        UserMigration.objects.exclude(status=MigrationStatus.FAILED).values_list(
            "status", flat=True
        )
    ) == {MigrationStatus.ROLLED_BACK}
    for account in CreditAccount.objects.select_related("user"):
        expected = Decimal("20.00") if account.user == legacy_world.signed_up else Decimal("0")
        assert account.balance == expected == ledger_sum(account=account)
    migrate("--verify", *sources_args())


def test_a_user_who_spent_migrated_credits_has_what_is_left_of_them_reversed(migrate):
    # given
    spender = LegacyBillingFactory(balance_usd=Decimal("10.50"))
    other = LegacyBillingFactory(balance_usd=Decimal("2.00"))
    migrate("--execute", "--yes", *USD)
    spend(spender.user, "4.00")
    # when: without --force
    _, out = migrate("--rollback", "--yes", "--all", *USD)
    # then: what is left of the migration's lot is reversed, what was spent stays spent
    reversal = entries_of(spender.user, kind=EntryKind.REVERSAL).get()
    assert reversal.amount == Decimal("-6.50")
    assert reversal.metadata["spent_before_rollback"] == "4.00"
    account = CreditAccount.objects.get(user_id=spender.user_id)
    assert account.balance == Decimal("0.00") == ledger_sum(account=account)
    row = UserMigration.objects.get(user_id=spender.user_id)
    assert row.status == MigrationStatus.ROLLED_BACK
    assert row.rollback_data["rollback"]["reversed"] == "6.50"
    assert row.rollback_data["rollback"]["spent_before_rollback"] == "4.00"
    assert row.rollback_data["rollback"]["taken_from_account"] == "0.00"
    assert row.rollback_data["rollback"]["shortfall"] == "4.00"
    assert row.rollback_data["rollback"]["forced"] is False
    spender.refresh_from_db()
    assert spender.balance_usd == Decimal("10.50")
    assert "-6.50 credits  (4.00 spent before the rollback; shortfall 4.00)" in out
    assert "users rolled back: 2" in out
    # the other user of the run is rolled back
    other.refresh_from_db()
    assert other.balance_usd == Decimal("2.00")
    assert UserMigration.objects.get(user_id=other.user_id).status == MigrationStatus.ROLLED_BACK
    migrate("--verify", *USD)


def test_force_reverses_what_is_left_and_records_the_shortfall(migrate):
    # given
    spender = LegacyBillingFactory(balance_usd=Decimal("10.50"), balance_uah=Decimal("25.00"))
    migrate("--execute", "--yes", *USD)
    spend(spender.user, "4.00")
    entries = CreditTransaction.objects.count()
    # when
    _, out = migrate("--rollback", "--yes", "--force", "--user", str(spender.user_id), *USD)
    # then
    spender.refresh_from_db()
    assert (spender.balance_usd, spender.balance_uah) == (Decimal("10.50"), Decimal("25.00"))
    account = CreditAccount.objects.get(user_id=spender.user_id)
    assert account.balance == Decimal("0.00") == ledger_sum(account=account)
    assert CreditTransaction.objects.count() == entries + 1
    reversal = entries_of(spender.user, kind=EntryKind.REVERSAL).get()
    assert reversal.amount == Decimal("-7.10")  # 11.10 granted, 4.00 spent
    row = UserMigration.objects.get(user_id=spender.user_id)
    assert row.status == MigrationStatus.ROLLED_BACK
    assert row.rollback_data["rollback"]["reversed"] == "7.10"
    assert row.rollback_data["rollback"]["shortfall"] == "4.00"
    assert row.rollback_data["rollback"]["forced"] is True
    assert "shortfall 4.00" in out
    migrate("--verify", *USD)


def test_force_when_everything_was_spent_records_all_of_it_as_shortfall(migrate):
    # given
    spender = LegacyBillingFactory(balance_usd=Decimal("5.00"))
    migrate("--execute", "--yes", *USD)
    spend(spender.user, "5.00")
    entries = CreditTransaction.objects.count()
    # when
    migrate("--rollback", "--yes", "--force", "--user", str(spender.user_id), *USD)
    # then
    assert CreditTransaction.objects.count() == entries
    row = UserMigration.objects.get(user_id=spender.user_id)
    assert row.status == MigrationStatus.ROLLED_BACK
    assert row.rollback_data["rollback"]["shortfall"] == "5.00"
    spender.refresh_from_db()
    assert spender.balance_usd == Decimal("5.00")
    migrate("--verify", *USD)


def test_rolling_back_twice_changes_nothing_the_second_time(migrate, legacy_world):
    # given
    migrate("--execute", "--yes", *sources_args(), expect=1)
    migrate("--rollback", "--yes", "--all", *sources_args())
    tables = (CreditAccount, CreditTransaction, UserMigration, UserProfile, LegacyBilling)
    before = table_contents(*tables)
    # when
    _, report = migrate("--rollback", "--yes", "--all", "--format", "json", *sources_args())
    _, again = migrate(
        "--rollback",
        "--yes",
        "--user",
        str(legacy_world.pro.pk),
        "--format",
        "json",
        *sources_args(),
    )
    # then
    assert table_contents(*tables) == before
    assert set(report["users"]) == {"skipped"}
    assert report["skipped"] == {"already rolled back": report["users"]["skipped"]}
    assert report["credits"] == "0.00"
    assert again["skipped"] == {"already rolled back": 3}


def test_after_a_rollback_only_a_named_user_is_migrated_again(migrate):
    # given
    named = LegacyBillingFactory(balance_usd=Decimal("10.00"))
    unnamed = LegacyBillingFactory(balance_usd=Decimal("20.00"))
    LegacyAccountFactory(user=named.user, credits_balance=Decimal("5.00"))
    LegacyCreditTransactionFactory(user=named.user, delta=Decimal("5.00"))
    sources = sources_args("usd_balance", "user_fields")
    migrate("--execute", "--yes", *sources)
    migrate("--rollback", "--yes", "--all", *sources)
    # when: a run over everyone leaves rolled-back users alone
    _, everyone = migrate("--execute", "--yes", "--format", "json", *sources)
    # then
    assert everyone["users"] == {"skipped": 3}
    assert everyone["skipped"] == {"rolled back (name the user with --user to migrate again)": 3}
    assert CreditAccount.objects.get(user_id=named.user_id).balance == Decimal("0.00")
    # when: named with --user, the user is migrated again under a new key
    migrate("--execute", "--yes", "--user", str(named.user_id), *sources)
    # then
    named.refresh_from_db()
    assert named.balance_usd == Decimal("0.00")
    account = CreditAccount.objects.get(user_id=named.user_id)
    assert account.balance == Decimal("15.00") == ledger_sum(account=account)
    keys = list(
        entries_of(named.user, kind=EntryKind.MIGRATION).values_list("idempotency_key", flat=True)
    )
    assert keys == [
        f"migration:usd_balance:{named.user_id}:0",
        f"migration:user_fields:{named.user_id}:0",
        f"migration:usd_balance:{named.user_id}:1",
        f"migration:user_fields:{named.user_id}:1",
    ]
    # the legacy ledger row is on the ledger once, however often the user is migrated
    assert entries_of(named.user, kind=EntryKind.HISTORY).count() == 1
    for row in UserMigration.objects.filter(user_id=named.user_id):
        assert (row.status, row.generation, row.attempts) == (MigrationStatus.COMPLETED, 1, 2)
    assert UserMigration.objects.get(user_id=unnamed.user_id).status == (
        MigrationStatus.ROLLED_BACK
    )
    unnamed.refresh_from_db()
    assert unnamed.balance_usd == Decimal("20.00")
    assert MigrationRun.objects.filter(mode=RunMode.ROLLBACK).count() == 1
    migrate("--verify", *sources)


def test_rolling_back_every_source_of_a_user_undoes_them_newest_first(migrate):
    # given: user_fields fails, usage_tiers migrates (and makes the profile), then user_fields
    # is fixed and migrates: the newest migration is user_fields, though its row is older
    legacy = LegacyAccountFactory(
        plan="pro", credits_balance=Decimal("-1.00"), stripe_customer_id="cus_1"
    )
    sources = sources_args("user_fields", "usage_tiers")
    migrate("--execute", "--yes", *sources, expect=1)
    legacy.credits_balance = Decimal("1.00")
    legacy.save()
    migrate("--execute", "--yes", *sources)
    assert profile_fields(legacy.user_id)["stripe_customer_id"] == "cus_1"
    # when
    migrate("--rollback", "--yes", "--all", *sources)
    # then: the profile is back to a new profile's values, as before any migration
    assert profile_fields(legacy.user_id) == {
        "plan": "free",
        "subscription_status": "",
        "subscription_started_at": None,
        "subscription_ends_at": None,
        "stripe_customer_id": None,
        "stripe_price_id": "",
        "preferences": {},
        "usage_stats": {},
    }
    assert CreditAccount.objects.get(user_id=legacy.user_id).balance == Decimal("0.00")


def test_rolling_back_user_fields_and_usage_tiers_of_the_realistic_data(migrate, legacy_world):
    # given
    sources = sources_args("user_fields", "usage_tiers")
    migrate("--execute", "--yes", *sources, expect=1)
    assert profile_fields(legacy_world.pro.pk)["plan"] == "pro"
    # when
    migrate("--rollback", "--yes", "--all", *sources)
    # then
    assert profile_fields(legacy_world.pro.pk)["plan"] == "free"
    assert profile_fields(legacy_world.pro.pk)["stripe_customer_id"] is None
    assert profile_fields(legacy_world.mismatched.pk)["plan"] == "free"


def test_rolling_back_usage_tiers_alone_keeps_what_user_fields_set(migrate):
    # given: usage_tiers made the profile, user_fields synced it afterwards
    legacy = LegacyAccountFactory(plan="pro", stripe_customer_id="cus_1", preferences={"a": 1})
    migrate("--execute", "--yes", *sources_args("usage_tiers"))
    migrate("--execute", "--yes", *sources_args("user_fields"))
    # when
    migrate("--rollback", "--yes", "--all", *sources_args("usage_tiers"))
    # then: only the plan usage_tiers set goes back
    fields = profile_fields(legacy.user_id)
    assert fields["plan"] == "free"
    assert fields["stripe_customer_id"] == "cus_1"
    assert fields["preferences"] == {"a": 1}


def test_a_user_migrated_again_after_a_forced_rollback_still_verifies(migrate):
    # given: 4.00 of 10.50 spent, so a forced rollback leaves 4.00 of usd_balance on the ledger
    spender = LegacyBillingFactory(balance_usd=Decimal("10.50"))
    migrate("--execute", "--yes", *USD)
    spend(spender.user, "4.00")
    migrate("--rollback", "--yes", "--force", "--all", *USD)
    # when
    migrate("--execute", "--yes", "--user", str(spender.user_id), *USD)
    # then
    row = UserMigration.objects.get(user_id=spender.user_id)
    assert row.status == MigrationStatus.COMPLETED
    assert row.initial_credits_granted == Decimal("10.50")
    assert row.rollback_data["earlier_shortfall"] == "4.00"
    account = CreditAccount.objects.get(user_id=spender.user_id)
    assert account.balance == Decimal("10.50") == ledger_sum(account=account)
    migrate("--verify", *USD)
    # and rolled back again, in full this time
    migrate("--rollback", "--yes", "--all", *USD)
    row.refresh_from_db()
    assert row.rollback_data["rollback"]["shortfall"] == "0.00"
    assert row.rollback_data["earlier_shortfall"] == "4.00"
    assert CreditAccount.objects.get(user_id=spender.user_id).balance == Decimal("0.00")
    migrate("--verify", *USD)


def test_migrating_a_rolled_back_user_again_records_a_database_failure(migrate):
    # given: after the rollback, another user takes the Stripe customer back
    rolled_back = LegacyAccountFactory(credits_balance=Decimal("1.00"), stripe_customer_id="cus_x")
    other = LegacyAccountFactory(credits_balance=Decimal("2.00"), stripe_customer_id="cus_o")
    sources = sources_args("user_fields")
    migrate("--execute", "--yes", *sources)
    migrate("--rollback", "--yes", "--all", *sources)
    LegacyAccount.objects.filter(pk=other.pk).update(stripe_customer_id="cus_x")
    migrate("--execute", "--yes", "--user", str(other.user_id), *sources)
    # when
    _, out = migrate("--execute", "--yes", "--user", str(rolled_back.user_id), *sources, expect=1)
    # then
    row = UserMigration.objects.get(user_id=rolled_back.user_id)
    assert row.status == MigrationStatus.FAILED
    assert row.error_message.startswith(WRITE_REFUSED)
    assert (
        f"user {rolled_back.user_id} {rolled_back.user.email} [user_fields]: {WRITE_REFUSED}" in out
    )
    assert CreditAccount.objects.get(user_id=rolled_back.user_id).balance == Decimal("0.00")
