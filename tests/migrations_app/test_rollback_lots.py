"""--rollback with lots: it reverses what is left of the migration's own lot, whatever else
the account holds; what the user spent of it stays spent (recorded) unless --force takes it from
their other credits, as far as they go (recorded on the reversal and the run). Active holds on
the migration's credits refuse it without --force."""

from decimal import Decimal

import pytest

from credits.models import CreditAccount, CreditLot, CreditTransaction, EntryKind
from credits.services import credit_grant, credit_hold_create, credit_spend
from migrations_app.models import MigrationRun, MigrationStatus, RunMode, UserMigration
from tests.factories import LegacyBillingFactory
from tests.helpers import assert_ledger_consistent, entries_of, sources_args, table_contents

pytestmark = pytest.mark.django_db

USD = sources_args("usd_balance")


@pytest.fixture
def migrated(migrate):
    """A user migrated from usd_balance with 10.50 credits (a paid lot)."""
    legacy = LegacyBillingFactory(balance_usd=Decimal("10.50"))
    migrate("--execute", "--yes", *USD)
    return legacy.user


def account_of(user) -> CreditAccount:
    return CreditAccount.objects.get(user=user)


def figures(user) -> dict:
    return UserMigration.objects.get(user=user).rollback_data["rollback"]


def test_credits_spent_from_other_lots_leave_the_migration_whole(migrate, migrated):
    # given: a promotional grant after the migration, spent first by the draw-down rule
    account = account_of(migrated)
    credit_grant(account=account, amount=Decimal("5.00"), idempotency_key="promo")
    credit_spend(account=account, amount=Decimal("4.00"), idempotency_key="used")
    # when
    migrate("--rollback", "--yes", "--all", *USD)
    # then: the migration's lot is reversed in full; the grant keeps what is left of it
    reversal = entries_of(migrated, kind=EntryKind.REVERSAL).get()
    assert reversal.amount == Decimal("-10.50")
    account.refresh_from_db()
    assert account.balance == Decimal("1.00")
    assert CreditLot.objects.get(entry__idempotency_key="promo").remaining == Decimal("1.00")
    assert (figures(migrated)["spent_before_rollback"], figures(migrated)["shortfall"]) == (
        "0.00",
        "0.00",
    )
    assert_ledger_consistent()
    migrate("--verify", *USD)


def test_force_takes_what_was_spent_from_the_accounts_other_credits(migrate, migrated):
    # given: 4.00 of the migration spent, then 3.00 bought (a paid lot drawn after it)
    account = account_of(migrated)
    credit_spend(account=account, amount=Decimal("4.00"), idempotency_key="used")
    credit_grant(
        account=account,
        amount=Decimal("3.00"),
        idempotency_key="bought",
        kind=EntryKind.PURCHASE,
    )
    # when
    _, out = migrate("--rollback", "--yes", "--force", "--all", *USD)
    # then: 6.50 left of the migration and 3.00 of the purchase reversed; 1.00 short
    reversal = entries_of(migrated, kind=EntryKind.REVERSAL).get()
    assert reversal.amount == Decimal("-9.50")
    assert reversal.metadata["spent_before_rollback"] == "4.00"
    assert reversal.metadata["taken_from_account"] == "3.00"
    assert reversal.metadata["shortfall"] == "1.00"
    account.refresh_from_db()
    assert account.balance == Decimal("0.00")
    assert CreditLot.objects.get(entry__idempotency_key="bought").remaining == Decimal("0.00")
    assert figures(migrated) | {"at": None, "actor_id": None} == {
        "reversed": "9.50",
        "spent_before_rollback": "4.00",
        "taken_from_account": "3.00",
        "shortfall": "1.00",
        "forced": True,
        "at": None,
        "actor_id": None,
    }
    run = MigrationRun.objects.get(mode=RunMode.ROLLBACK)
    assert (run.stats["spent_before_rollback"], run.stats["taken_from_account"]) == (
        "4.00",
        "3.00",
    )
    assert run.stats["shortfall"] == "1.00"
    assert "  taken by --force from the users' other credits: 3.00" in out
    assert_ledger_consistent()
    migrate("--verify", *USD)


def test_active_holds_on_the_migration_refuse_it_without_force(migrate, migrated):
    # given: a hold reserving 4.00 of the 10.50
    hold = credit_hold_create(
        account=account_of(migrated), amount=Decimal("4.00"), idempotency_key="job"
    )
    before = table_contents(CreditAccount, CreditTransaction, CreditLot, UserMigration)
    # when
    _, out = migrate("--rollback", "--yes", "--all", *USD, expect=1)
    # then
    assert "active holds reserve 4.00 of the 10.50 credits" in out
    assert table_contents(CreditAccount, CreditTransaction, CreditLot, UserMigration) == before
    # when: forced, what the hold leaves is reversed and the rest recorded
    migrate("--rollback", "--yes", "--force", "--all", *USD)
    # then
    row = UserMigration.objects.get(user=migrated)
    assert row.status == MigrationStatus.ROLLED_BACK
    assert (figures(migrated)["reversed"], figures(migrated)["shortfall"]) == ("6.50", "4.00")
    account = account_of(migrated)
    assert (account.balance, account.held) == (hold.amount, hold.amount)
    assert_ledger_consistent()
    migrate("--verify", *USD)
