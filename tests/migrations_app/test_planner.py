"""One planner for the dry run, --analyze and execute: every rule that fails a user in execute
is named, in words, by the preview ("would fail: <reason>", exit 1), never with a traceback."""

from decimal import Decimal

import pytest
from django.db import connection

from billing.models import UserProfile
from credits.models import CreditTransaction
from migrations_app.models import MigrationRun, MigrationStatus, UserMigration
from tests.factories import (
    LegacyAccountFactory,
    LegacyBillingFactory,
    LegacyUsageFactory,
)
from tests.helpers import sources_args

pytestmark = pytest.mark.django_db

TOO_MUCH = Decimal("999999999999.99")


def _preview_and_execute(migrate, user, source, reason):
    """The dry run and --analyze name the failure; execute records it, the same words."""
    sources = sources_args(source)
    for mode in ("--dry-run", "--analyze"):
        _, out = migrate(mode, *sources, expect=1)
        assert f"[{source}]: would fail: {reason}" in out, out
        assert "Traceback" not in out
        _, report = migrate(mode, "--format", "json", *sources, expect=1)
        assert [(item["user_id"], item["error"]) for item in report["failures"]] == [
            (user.pk, reason)
        ]
    assert not MigrationRun.objects.exists()
    assert not UserMigration.objects.exists()
    _, out = migrate("--execute", "--yes", *sources, expect=1)
    row = UserMigration.objects.get(user=user, source=source)
    assert row.status == MigrationStatus.FAILED
    assert row.error_message == reason
    assert not CreditTransaction.objects.filter(account__user=user).exists()


def test_an_unknown_plan_fails_in_user_fields_in_the_preview_and_in_execute(migrate):
    # given
    user = LegacyAccountFactory(plan="platinum", credits_balance=Decimal("5.00")).user
    # when / then
    _preview_and_execute(
        migrate, user, "user_fields", "unknown plan 'platinum' (not in CREDITS_PLANS)"
    )
    assert not UserProfile.objects.filter(user=user, plan="platinum").exists()


def test_an_unknown_plan_fails_in_usage_tiers_in_the_preview_and_in_execute(migrate):
    # given
    user = LegacyAccountFactory(plan="platinum").user
    LegacyUsageFactory(user=user, amount_used=Decimal("1.00"))
    # when / then
    _preview_and_execute(
        migrate, user, "usage_tiers", "unknown plan 'platinum' (not in CREDITS_PLANS)"
    )


def test_a_rate_that_overflows_the_ledger_fails_in_the_preview_as_in_execute(migrate):
    # given: 999,999,999,999.99 USD and UAH at the default rates is more than an entry holds
    user = LegacyBillingFactory(balance_usd=TOO_MUCH, balance_uah=TOO_MUCH).user
    # when / then
    _preview_and_execute(
        migrate,
        user,
        "usd_balance",
        "1023999999999.99 credits is beyond the largest amount the ledger holds "
        "(999999999999.99); check the rates",
    )


def test_the_largest_amount_the_ledger_holds_migrates(migrate):
    # given
    user = LegacyBillingFactory(balance_usd=TOO_MUCH).user
    # when
    _, out = migrate("--dry-run", *sources_args("usd_balance"))
    migrate("--execute", "--yes", *sources_args("usd_balance"))
    # then
    assert "would fail: 0" in out
    row = UserMigration.objects.get(user=user)
    assert row.status == MigrationStatus.COMPLETED
    assert row.initial_credits_granted == TOO_MUCH


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("table", "column", "source"),
    [
        ("user_billing", "balance_usd", "usd_balance"),
        ("user_billing", "balance_uah", "usd_balance"),
        ("legacy_accounts", "credits_balance", "user_fields"),
    ],
)
def test_a_nan_legacy_amount_fails_in_words(migrate, table, column, source):
    # given: PostgreSQL's numeric holds NaN, which the ORM cannot write
    if source == "usd_balance":
        user = LegacyBillingFactory(balance_usd=Decimal("1.00")).user
    else:
        user = LegacyAccountFactory(credits_balance=Decimal("1.00")).user
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET {column} = 'NaN' WHERE user_id = %s", [user.pk])
    # when / then
    _preview_and_execute(migrate, user, source, f"{column} is NaN")


@pytest.mark.postgres
def test_a_null_legacy_amount_fails_in_words(migrate):
    # given: a legacy schema whose balance column allows NULL (the test's transaction undoes
    # the change)
    user = LegacyBillingFactory(balance_usd=Decimal("1.00")).user
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE user_billing ALTER COLUMN balance_usd DROP NOT NULL")
        cursor.execute("UPDATE user_billing SET balance_usd = NULL WHERE user_id = %s", [user.pk])
    # when / then
    _preview_and_execute(migrate, user, "usd_balance", "balance_usd is NULL")
