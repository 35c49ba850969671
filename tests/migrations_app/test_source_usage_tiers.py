"""`usage_tiers`: legacy_accounts.plan + legacy_usage this period -> what is left this month."""

from decimal import Decimal

import pytest

from billing.models import LegacyAccount, LegacyUsage, UserProfile
from credits.models import CreditTransaction, EntryKind
from migrations_app.models import MigrationStatus, UserMigration
from tests.factories import (
    LegacyAccountFactory,
    LegacyUsageFactory,
    previous_period,
)
from tests.helpers import balance_of, entries_of, sources_args, table_contents

pytestmark = pytest.mark.django_db

SOURCE = sources_args("usage_tiers")


@pytest.mark.parametrize(
    ("plan", "used", "credits"),
    [
        ("free", None, "20.00"),
        ("free", "7.55", "12.45"),
        ("pro", "60.00", "200.00"),
        ("business", "999.99", "0.01"),
        ("pro", "260.00", "0.00"),
        ("pro", "300.00", "0.00"),
    ],
)
def test_remaining_allowance_of_the_tier_this_period(migrate, plan, used, credits):
    # given
    legacy = LegacyAccountFactory(plan=plan)
    if used is not None:
        LegacyUsageFactory(user=legacy.user, amount_used=Decimal(used))
    # when
    migrate("--execute", "--yes", *SOURCE)
    # then
    assert balance_of(legacy.user_id) == Decimal(credits)
    row = UserMigration.objects.get(user_id=legacy.user_id, source="usage_tiers")
    assert row.status == MigrationStatus.COMPLETED
    assert row.initial_credits_granted == Decimal(credits)
    assert row.rounding_remainder == Decimal("0")
    migration_entries = entries_of(legacy.user, kind=EntryKind.MIGRATION)
    assert [entry.amount for entry in migration_entries] == (
        [Decimal(credits)] if Decimal(credits) else []
    )


def test_only_the_current_period_counts(migrate):
    # given: last month's usage would use up the allowance
    legacy = LegacyAccountFactory(plan="pro")
    LegacyUsageFactory(user=legacy.user, period=previous_period(), amount_used=Decimal("260"))
    LegacyUsageFactory(user=legacy.user, period="2020-01", amount_used=Decimal("100"))
    LegacyUsageFactory(user=legacy.user, amount_used=Decimal("10.00"))
    # when
    migrate("--execute", "--yes", *SOURCE)
    # then
    assert balance_of(legacy.user_id) == Decimal("250.00")
    row = UserMigration.objects.get(user_id=legacy.user_id)
    assert row.legacy_amounts == {"ALLOWANCE": "260", "USED": "10.00"}


def test_plan_is_set_on_the_profile(migrate):
    # given
    legacy = LegacyAccountFactory(plan="business")
    UserProfile.objects.create(user=legacy.user, plan="free")
    # when
    migrate("--execute", "--yes", *SOURCE)
    # then
    profile = UserProfile.objects.get(user_id=legacy.user_id)
    assert profile.plan == "business"
    row = UserMigration.objects.get(user_id=legacy.user_id)
    assert row.rollback_data == {"profile": {"plan": "free"}}


def test_unknown_plan_fails_the_user(migrate):
    # given
    gold = LegacyAccountFactory(plan="gold")
    fine = LegacyAccountFactory(plan="pro")
    # when
    _, out = migrate("--execute", "--yes", *SOURCE, expect=1)
    # then
    row = UserMigration.objects.get(user_id=gold.user_id)
    assert row.status == MigrationStatus.FAILED
    assert row.error_message == "unknown plan 'gold' (not in CREDITS_PLANS)"
    assert "[usage_tiers]: unknown plan 'gold'" in out
    assert not CreditTransaction.objects.filter(account__user_id=gold.user_id).exists()
    assert not UserProfile.objects.filter(user_id=gold.user_id).exists()
    assert balance_of(fine.user_id) == Decimal("260.00")


def test_legacy_side_is_untouched(migrate):
    # given
    legacy = LegacyAccountFactory(plan="pro")
    LegacyUsageFactory(user=legacy.user, amount_used=Decimal("12.34"))
    LegacyAccountFactory(plan="gold")
    before = table_contents(LegacyAccount, LegacyUsage)
    # when
    migrate("--execute", "--yes", *SOURCE, expect=1)
    # then
    assert table_contents(LegacyAccount, LegacyUsage) == before
