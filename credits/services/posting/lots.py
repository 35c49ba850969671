"""How entries move lots: which category a new lot is, which lots a debit draws from, in what
order, and what a reversal gives back. Internal to credits.services.

The draw-down rule, one for every path (settings name the ranks):

1. category rank, CREDITS_DRAW_DOWN_RANKS (by default promotional and monthly, then migration,
   then paid: free credits go before bought ones);
2. soonest expiry, lots that never expire last;
3. priority, lower first;
4. oldest first (effective_at, then id).

A debit that names a lot to go first (a refund of a purchase takes back that purchase's lot, a
reversal of a grant its own lot, an expiry its expiring lot) takes from it before the rule.
Credits added by an entry make one new lot; a reversal of a debit gives back to the lots the
debit took from, allocation by allocation. Everything here runs under the account's row lock,
taken by the conditional UPDATE of the balance in the same transaction, so no two writers move
one account's lots at once.

`plan_draw` is pure (plain values in, plain values out): the services, the data migration that
built lots for existing ledgers, and the tests' model of the ledger share it.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db.models import Case, F, IntegerField, Value, When

from credits.models import (
    CreditAllocation,
    CreditLot,
    CreditTransaction,
    EntryKind,
    LotCategory,
)

# Ranks for a category the setting leaves out: after every ranked one.
UNRANKED = 1000


@dataclass
class OpenLot:
    """What the rule needs to know of a lot."""

    id: int
    category: str
    remaining: Decimal
    priority: int
    expires_at: datetime | None
    effective_at: datetime


def category_for(kind: str, source: str = "") -> str:
    """The category of a lot made by an entry of `kind` from `source`: CREDITS_LOT_CATEGORIES
    maps "kind:source" first, then "kind"; promotional when neither is there."""
    categories = settings.CREDITS_LOT_CATEGORIES
    return (
        categories.get(f"{kind}:{source}") or categories.get(str(kind)) or LotCategory.PROMOTIONAL
    )


def rank(category: str) -> int:
    return settings.CREDITS_DRAW_DOWN_RANKS.get(category, UNRANKED)


def sort_key(lot: OpenLot, first: int | None = None) -> tuple:
    """The draw-down rule as a sort key (the lot `first` before all)."""
    expires = lot.expires_at
    return (
        lot.id != first,
        rank(lot.category),
        expires is None,
        expires.timestamp() if expires is not None else 0,
        lot.priority,
        lot.effective_at.timestamp(),
        lot.id,
    )


def plan_draw(
    lots: Iterable[OpenLot], amount: Decimal, first: int | None = None
) -> list[tuple[int, Decimal]]:
    """(lot id, credits taken) for drawing `amount` from `lots` by the rule, the lot `first`
    before the rule. Raises ValueError when the lots hold less: the balance said they would
    not, so the books disagree, and nothing may be written."""
    plan = []
    left = amount
    for lot in sorted(
        (lot for lot in lots if lot.remaining > 0), key=lambda open_lot: sort_key(open_lot, first)
    ):
        if left <= 0:
            break
        take = min(lot.remaining, left)
        plan.append((lot.id, take))
        left -= take
    if left > 0:
        raise ValueError(f"the lots hold {amount - left} of the {amount} to draw")
    return plan


def draw_order(first: int | None = None) -> list:
    """The rule as ORM ordering, for reading lots in the order they are drawn."""
    ranks = settings.CREDITS_DRAW_DOWN_RANKS
    order = [
        Case(
            *(When(category=category, then=Value(value)) for category, value in ranks.items()),
            default=Value(UNRANKED),
            output_field=IntegerField(),
        ).asc(),
        F("expires_at").asc(nulls_last=True),
        "priority",
        "effective_at",
        "id",
    ]
    if first is not None:
        order.insert(0, Case(When(pk=first, then=Value(0)), default=Value(1)).asc())
    return order


def open_lots(account_id: int) -> list[OpenLot]:
    return [
        OpenLot(*row)
        for row in CreditLot.objects.filter(account_id=account_id, remaining__gt=0)
        .order_by()
        .values_list("id", "category", "remaining", "priority", "expires_at", "effective_at")
    ]


@dataclass(frozen=True)
class LotTerms:
    """What a crediting entry's lot is: its category (None: by kind and source), expiry and
    priority."""

    category: str | None = None
    expires_at: datetime | None = None
    priority: int = 0


def apply(written: CreditTransaction, *, terms: LotTerms | None, first_lot: int | None) -> None:
    """Move the lots for an entry just written (its account already moved, under its lock)."""
    amount = written.amount
    if written.kind == EntryKind.HISTORY:
        return
    if written.kind == EntryKind.REVERSAL:
        reversed_entry = written.reverses
        if amount > 0:
            _give_back(written, reversed_entry, amount)
            return
        if first_lot is None:
            first_lot = lot_of(reversed_entry, account_id=written.account_id)
    elif amount > 0:
        terms = terms or LotTerms()
        CreditLot.objects.create(
            account_id=written.account_id,
            category=terms.category or category_for(written.kind, written.source),
            amount=amount,
            remaining=amount,
            priority=terms.priority,
            effective_at=written.created_at,
            expires_at=terms.expires_at,
            entry=written,
        )
        return
    take(written, open_lots(written.account_id), -amount, first_lot)


def take(written: CreditTransaction, lots: Sequence[OpenLot], amount: Decimal, first) -> None:
    plan = plan_draw(lots, amount, first)
    by_id = {lot.id: lot for lot in lots}
    for lot_id, taken in plan:
        CreditLot.objects.filter(pk=lot_id).update(remaining=by_id[lot_id].remaining - taken)
    CreditAllocation.objects.bulk_create(
        CreditAllocation(entry=written, lot_id=lot_id, amount=taken) for lot_id, taken in plan
    )


def _give_back(written: CreditTransaction, reversed_entry: CreditTransaction, amount) -> None:
    """A reversal of a debit: each lot the debit took from gets its credits back."""
    allocations = list(
        CreditAllocation.objects.filter(entry=reversed_entry)
        .order_by("id")
        .values_list("lot_id", "amount")
    )
    left = amount
    back = []
    for lot_id, taken in allocations:
        if left <= 0 or taken <= 0:
            continue
        given = min(taken, left)
        back.append((lot_id, given))
        left -= given
    if left > 0:
        raise ValueError(f"entry {reversed_entry.pk} took {amount - left} from lots, not {amount}")
    # Exact values, not `remaining + given` in SQL: SQLite would add them as binary floats.
    remaining = dict(
        CreditLot.objects.filter(pk__any_of=[lot_id for lot_id, _ in back]).values_list(
            "pk", "remaining"
        )
    )
    for lot_id, given in back:
        CreditLot.objects.filter(pk=lot_id).update(remaining=remaining[lot_id] + given)
    CreditAllocation.objects.bulk_create(
        CreditAllocation(entry=written, lot_id=lot_id, amount=-given) for lot_id, given in back
    )


def lot_of(entry: CreditTransaction | None, *, account_id: int) -> int | None:
    """The id of the lot `entry` added to the account, if it added one there."""
    if entry is None:
        return None
    return (
        CreditLot.objects.filter(entry_id=entry.pk, account_id=account_id)
        .values_list("pk", flat=True)
        .first()
    )
