"""The state machine's model of the ledger (tests/credits/test_ledger_properties.py): what
each call should have done to balances, held, holds and lots, and the check that the entry it
wrote drew (or gave back to) exactly the lots the rule says."""

from dataclasses import dataclass, replace
from decimal import Decimal

import pytest

from credits.models import (
    CreditAccount,
    CreditHold,
    CreditLot,
    CreditTransaction,
    EntryKind,
    HoldStatus,
)
from credits.services.posting.lots import OpenLot, category_for, plan_draw


@dataclass
class Call:
    """A call that wrote a row (an entry or a hold), to replay: the same kwargs must answer
    with row `pk` and change nothing; `tampered` kwargs (None: no amount to tamper with) must
    be refused as a conflict."""

    service: object
    kwargs: dict
    pk: int
    tampered: dict | None = None


@dataclass
class ModelHold:
    account: int
    amount: Decimal
    expires_at: object
    status: str = HoldStatus.ACTIVE


class LedgerModel:
    """Bookkeeping shared by the machine's rules (a mixin of the RuleBasedStateMachine)."""

    def __init__(self):
        super().__init__()
        self.expected: dict[int, Decimal] = {}
        self.held: dict[int, Decimal] = {}
        self.lots: dict[int, OpenLot] = {}
        self.lot_account: dict[int, int] = {}
        self.entry_lot: dict[int, int] = {}
        self.allocations: dict[int, list[tuple[int, Decimal]]] = {}
        self.holds: dict[int, ModelHold] = {}
        self.calls: list[Call] = []
        # Entries that may be reversed (every entry but reversals), and those that were.
        self.reversible: list[int] = []
        self.crediting: list[int] = []
        self.reversed: set[int] = set()

    def available(self, account_pk):
        return self.expected[account_pk] - self.held[account_pk]

    # --- the model's bookkeeping ---------------------------------------------------------

    def credited(self, entry, terms):
        """An entry that added credits: its lot, as asked, joins the model."""
        lot = CreditLot.objects.get(entry_id=entry.pk)
        category = terms.get("category") or category_for(entry.kind, entry.source)
        assert (lot.category, lot.amount, lot.remaining) == (category, entry.amount, entry.amount)
        assert (lot.expires_at, lot.priority) == (terms.get("expires_at"), terms.get("priority", 0))
        self.lots[lot.pk] = OpenLot(
            lot.pk, lot.category, lot.remaining, lot.priority, lot.expires_at, lot.effective_at
        )
        self.lot_account[lot.pk] = entry.account_id
        self.entry_lot[entry.pk] = lot.pk
        self.expected[entry.account_id] += entry.amount
        self.crediting.append(entry.pk)
        self.reversible.append(entry.pk)

    def debited(self, entry, first=None):
        """An entry that removed credits: the lots the rule says, and nothing else, paid."""
        account_lots = [
            lot for pk, lot in self.lots.items() if self.lot_account[pk] == entry.account_id
        ]
        plan = plan_draw(account_lots, -entry.amount, first)
        for lot_id, taken in plan:
            self.lots[lot_id] = replace(
                self.lots[lot_id], remaining=self.lots[lot_id].remaining - taken
            )
        assert list(entry.allocations.order_by("id").values_list("lot_id", "amount")) == plan
        self.allocations[entry.pk] = plan
        self.expected[entry.account_id] += entry.amount
        if entry.kind != EntryKind.REVERSAL:
            self.reversible.append(entry.pk)

    def given_back(self, reversal, target_pk):
        """A reversal of a debit: each lot it took from gets that back."""
        taken_by_target = self.allocations[target_pk]
        for lot_id, taken in taken_by_target:
            lot = self.lots[lot_id]
            self.lots[lot_id] = replace(lot, remaining=lot.remaining + taken)
        assert list(reversal.allocations.order_by("id").values_list("lot_id", "amount")) == [
            (lot_id, -taken) for lot_id, taken in taken_by_target
        ]
        self.expected[reversal.account_id] += reversal.amount

    def refused(self, error, service, **kwargs):
        before = self.database_state()
        with pytest.raises(error):
            service(**kwargs)
        assert self.database_state() == before

    def database_state(self):
        mine = [account.pk for account in getattr(self, "accounts", [])]
        return (
            list(
                CreditAccount.objects.filter(pk__in=mine)
                .order_by("pk")
                .values_list("pk", "balance", "held", "total_earned", "total_spent")
            ),
            CreditTransaction.objects.count(),
            list(
                CreditLot.objects.filter(account__in=mine)
                .order_by("pk")
                .values_list("pk", "remaining")
            ),
            list(
                CreditHold.objects.filter(account__in=mine)
                .order_by("pk")
                .values_list("pk", "status")
            ),
        )
