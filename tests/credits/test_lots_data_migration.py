"""The data migration that builds lots for ledgers written before lots existed (credits 0010),
run on a populated database: back to credits 0008, entries of every kind written with the models
as they stood there, then forward, back and forward again through Django's MigrationExecutor.

After each forward pass every invariant of lots holds: an account's balance is the sum of its
lots' remaining, a lot's remaining is its amount less its allocations, every debit's
allocations add up to what it took, and the rule chose the lots (free credits before paid, a
reversal of credits added from its own lot first). The second pass builds the same lots.
"""

from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Sum

from credits.models import (
    CreditAccount,
    CreditAllocation,
    CreditLot,
    CreditTransaction,
    EntryKind,
)
from tests.factories import UserFactory
from tests.helpers import assert_ledger_consistent

# slow: four passes over the migration graph take 7-10 s on a busy 2-core machine.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

BEFORE_LOTS = [("credits", "0008_approval_decision_reason")]
CREDITS_REMOVED = (EntryKind.SPEND, EntryKind.REFUND)


def migrate(targets=None):
    """Migrate the test database to `targets` (None: every app's latest); return the apps of
    that state."""
    executor = MigrationExecutor(connection)
    targets = targets or executor.loader.graph.leaf_nodes()
    executor.migrate(targets)
    executor.loader.build_graph()
    return executor.loader.project_state(targets).apps


class OldLedger:
    """Writes entries as the services did before lots: the entry chained to the account's
    balance, the account's figures moved with it (historical models, no lots)."""

    def __init__(self, apps, user):
        self.Account = apps.get_model("credits", "CreditAccount")
        self.Entry = apps.get_model("credits", "CreditTransaction")
        self.account = self.Account.objects.create(user_id=user.pk)
        self.count = 0

    def write(self, kind, amount, *, source="", reverses=None):
        amount = Decimal(amount)
        account = self.account
        self.count += 1
        is_spend = kind == EntryKind.SPEND or (
            kind == EntryKind.REVERSAL and reverses.kind == EntryKind.SPEND
        )
        if is_spend:
            account.total_spent -= amount
        else:
            account.total_earned += amount
        before = account.balance
        account.balance = before + amount
        account.save()
        return self.Entry.objects.create(
            account=account,
            kind=kind,
            amount=amount,
            balance_before=before,
            balance_after=account.balance,
            source=source,
            idempotency_key=f"old:{account.user_id}:{self.count}",
            migrated_from=source if kind == EntryKind.MIGRATION else "",
            reverses=reverses,
        )


def write_old_ledgers(apps) -> dict[str, dict]:
    """A few accounts with entries of every kind; their entries by name."""
    ledgers = {}
    # mixed: every kind, spends across categories, reversals of a spend and of a purchase
    mixed = OldLedger(apps, UserFactory(username="mixed"))
    entries = {
        "grant": mixed.write(EntryKind.GRANT, "30.00"),
        "purchase": mixed.write(EntryKind.PURCHASE, "50.00", source="stripe"),
        "migration": mixed.write(EntryKind.MIGRATION, "20.00", source="user_fields"),
        "monthly": mixed.write(EntryKind.MONTHLY_GRANT, "10.00", source="subscription"),
    }
    entries["history"] = mixed.write(EntryKind.HISTORY, "0.00", source="user_fields")
    # 45.00: the promotional grant and the monthly lot first, then the migration lot
    entries["spend"] = mixed.write(EntryKind.SPEND, "-45.00")
    entries["small_spend"] = mixed.write(EntryKind.SPEND, "-5.00")
    entries["spend_reversal"] = mixed.write(
        EntryKind.REVERSAL, "5.00", reverses=entries["small_spend"]
    )
    entries["refund"] = mixed.write(EntryKind.REFUND, "-10.00", source="stripe")
    entries["adjust_up"] = mixed.write(EntryKind.ADJUSTMENT, "7.00", source="staff")
    entries["adjust_down"] = mixed.write(EntryKind.ADJUSTMENT, "-3.00", source="staff")
    entries["purchase_reversal"] = mixed.write(
        EntryKind.REVERSAL, "-20.00", reverses=entries["purchase"]
    )
    ledgers["mixed"] = entries
    # spent: a grant mostly spent, then partly reversed (what was left of it)
    spent = OldLedger(apps, UserFactory(username="spent"))
    grant = spent.write(EntryKind.GRANT, "20.00")
    ledgers["spent"] = {
        "grant": grant,
        "spend": spent.write(EntryKind.SPEND, "-15.00"),
        "grant_reversal": spent.write(EntryKind.REVERSAL, "-5.00", reverses=grant),
        "later_grant": spent.write(EntryKind.GRANT, "2.50"),
    }
    # emptied: a migrated balance all spent, a purchase refunded in full
    emptied = OldLedger(apps, UserFactory(username="emptied"))
    ledgers["emptied"] = {
        "migration": emptied.write(EntryKind.MIGRATION, "12.50", source="usd_balance"),
        "spend": emptied.write(EntryKind.SPEND, "-12.50"),
        "purchase": emptied.write(EntryKind.PURCHASE, "5.00", source="stripe"),
        "refund": emptied.write(EntryKind.REFUND, "-5.00", source="stripe"),
    }
    # history only, and no entries at all
    ledgers["history_only"] = {
        "history": OldLedger(apps, UserFactory(username="history_only")).write(
            EntryKind.HISTORY, "0.00", source="user_fields"
        )
    }
    OldLedger(apps, UserFactory(username="untouched"))
    return ledgers


def taken(entry_id: int) -> dict[str, Decimal]:
    """What an entry took from each lot, by the key of the entry that made the lot."""
    return {
        lot_key: amount
        for lot_key, amount in CreditAllocation.objects.filter(entry_id=entry_id).values_list(
            "lot__entry__idempotency_key", "amount"
        )
    }


def assert_lots_hold(ledgers):
    for account in CreditAccount.objects.all():
        lots = CreditLot.objects.filter(account=account)
        remaining = sum(lots.values_list("remaining", flat=True), Decimal("0.00"))
        assert account.balance == remaining, account.user.username
        for lot in lots:
            allocated = lot.allocations.aggregate(total=Sum("amount"))["total"] or 0
            assert lot.remaining == lot.amount - Decimal(str(allocated)).quantize(Decimal("0.01"))
    for entry in CreditTransaction.objects.exclude(kind=EntryKind.HISTORY):
        total = sum(taken(entry.pk).values(), Decimal("0.00"))
        if entry.amount < 0:
            assert total == -entry.amount, entry.idempotency_key
        elif entry.kind == EntryKind.REVERSAL:
            assert total == -entry.amount, entry.idempotency_key  # given back
        else:
            assert (total, entry.lot.amount) == (Decimal("0.00"), entry.amount)
    # the rule's choices, entry by entry
    mixed, spent, emptied = ledgers["mixed"], ledgers["spent"], ledgers["emptied"]
    key = {name: entry.idempotency_key for name, entry in mixed.items()}
    assert taken(mixed["spend"].pk) == {
        key["grant"]: Decimal("30.00"),
        key["monthly"]: Decimal("10.00"),
        key["migration"]: Decimal("5.00"),
    }
    assert taken(mixed["spend_reversal"].pk) == {key["migration"]: Decimal("-5.00")}
    assert taken(mixed["refund"].pk) == {key["migration"]: Decimal("10.00")}
    assert taken(mixed["adjust_down"].pk) == {key["adjust_up"]: Decimal("3.00")}
    assert taken(mixed["purchase_reversal"].pk) == {key["purchase"]: Decimal("20.00")}
    assert taken(spent["grant_reversal"].pk) == {spent["grant"].idempotency_key: Decimal("5.00")}
    assert taken(emptied["refund"].pk) == {emptied["purchase"].idempotency_key: Decimal("5.00")}
    assert not CreditLot.objects.filter(account__user__username="history_only").exists()
    assert_ledger_consistent()


def lots_as_built() -> list[tuple]:
    return sorted(
        CreditLot.objects.values_list(
            "entry__idempotency_key", "category", "amount", "remaining", "effective_at"
        )
    ) + sorted(
        CreditAllocation.objects.values_list(
            "entry__idempotency_key", "lot__entry__idempotency_key", "amount"
        )
    )


def test_lots_are_built_for_old_ledgers_forward_back_and_forward_again():
    try:
        # given: a database from before lots, with ledgers of every kind of entry
        old_apps = migrate(BEFORE_LOTS)
        written = write_old_ledgers(old_apps)
        # when
        migrate()
        # then
        ledgers = {
            name: {
                entry_name: CreditTransaction.objects.get(pk=entry.pk)
                for entry_name, entry in entries.items()
            }
            for name, entries in written.items()
        }
        assert {lot.category for lot in CreditLot.objects.all()} == {
            "promotional",
            "paid",
            "migration",
            "monthly",
        }
        assert_lots_hold(ledgers)
        first = lots_as_built()
        # when: back to before lots, and forward again
        migrate(BEFORE_LOTS)
        assert CreditTransaction.objects.count() == sum(map(len, written.values()))
        migrate()
        # then: the same lots, drawn the same way
        assert_lots_hold(ledgers)
        assert lots_as_built() == first
    finally:
        # Whatever failed, the next test finds every migration applied.
        migrate()
