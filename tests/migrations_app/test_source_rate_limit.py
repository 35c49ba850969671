"""`rate_limit`: legacy_operations -> an initial grant (base or power user) and history."""

from decimal import Decimal

import pytest

from billing.models import LegacyOperation
from credits.models import EntryKind
from migrations_app.models import MigrationStatus, UserMigration
from tests.factories import UserFactory, operations
from tests.helpers import balance_of, entries_of, sources_args, table_contents

pytestmark = pytest.mark.django_db

SOURCE = sources_args("rate_limit")


@pytest.mark.parametrize(
    ("in_window", "credits"),
    [
        (1, "20.00"),
        # 300 operations in 30 days is exactly 10 a day: not more than 10, so the base grant
        (300, "20.00"),
        (301, "50.00"),
    ],
)
def test_grant_is_base_or_power_user_at_more_than_ten_a_day(migrate, in_window, credits):
    # given
    user = UserFactory()
    operations(user, in_window, days_ago=3)
    # when
    migrate("--execute", "--yes", *SOURCE)
    # then
    assert balance_of(user.pk) == Decimal(credits)
    (entry,) = entries_of(user, kind=EntryKind.MIGRATION)
    assert entry.amount == Decimal(credits)
    row = UserMigration.objects.get(user=user, source="rate_limit")
    assert row.status == MigrationStatus.COMPLETED
    assert row.initial_credits_granted == Decimal(credits)
    assert row.legacy_amounts == {"OPERATIONS": str(in_window)}


def test_only_operations_in_the_last_30_days_count(migrate):
    # given: 301 operations, one of them 31 days ago
    user = UserFactory()
    operations(user, 300, days_ago=29.9)
    operations(user, 1, days_ago=31)
    # when
    migrate("--execute", "--yes", *SOURCE)
    # then
    assert balance_of(user.pk) == Decimal("20.00")


def test_each_legacy_operation_becomes_one_history_entry(migrate):
    # given
    user = UserFactory()
    operations(user, 4, days_ago=1, kind="export")
    operations(user, 3, days_ago=200, kind="search")
    ids = list(
        LegacyOperation.objects.filter(user=user).order_by("pk").values_list("pk", flat=True)
    )
    # when
    migrate("--execute", "--yes", *SOURCE)
    # then
    history = entries_of(user, kind=EntryKind.HISTORY)
    assert [entry.legacy_transaction_id for entry in history] == [
        f"legacy_operations:{pk}" for pk in ids
    ]
    assert {entry.amount for entry in history} == {Decimal("0.00")}
    assert [entry.metadata["kind"] for entry in history] == ["export"] * 4 + ["search"] * 3
    assert UserMigration.objects.get(user=user).historical_operations == 7
    assert entries_of(user).count() == 8


def test_users_are_independent(migrate):
    # given
    power, regular = UserFactory(), UserFactory()
    operations(power, 301)
    operations(regular, 300)
    # when
    migrate("--execute", "--yes", *SOURCE)
    # then
    assert balance_of(power.pk) == Decimal("50.00")
    assert balance_of(regular.pk) == Decimal("20.00")


def test_legacy_side_is_untouched(migrate):
    # given
    operations(UserFactory(), 5)
    operations(UserFactory(), 2, days_ago=90)
    before = table_contents(LegacyOperation)
    # when
    migrate("--execute", "--yes", *SOURCE)
    # then
    assert table_contents(LegacyOperation) == before
