"""Reads of the ledger."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Case, F, OuterRef, Q, QuerySet, Subquery, Sum, Value, When
from django.db.models.functions import Abs, Coalesce, Round
from django.utils import timezone

from credits.models import (
    AMOUNT_PLACES,
    CENT,
    ApprovalStatus,
    CreditAccount,
    CreditAllocation,
    CreditApprovalRequest,
    CreditHold,
    CreditLot,
    CreditTransaction,
    HoldStatus,
    SpendRefusal,
)

DAILY_WINDOW = timedelta(hours=24)
UNLIMITED_PERMISSION = "credits.adjust_unlimited"


@dataclass(frozen=True)
class DailyAllowance:
    """What a staff member has moved in the last 24 hours against CREDITS_ADMIN_DAILY_LIMIT."""

    limit: Decimal
    used: Decimal
    left: Decimal


def _exact_sum(queryset, field: str) -> Decimal:
    total = queryset.aggregate(total=Round(Sum(Abs(field)), AMOUNT_PLACES))["total"]
    # SQLite sums decimals as floats; rounding to the cent makes the sum exact again.
    return Decimal(str(total or 0)).quantize(CENT)


def staff_daily_used(*, actor: AbstractBaseUser, now: datetime | None = None) -> Decimal:
    """The absolute amounts of the entries the actor wrote and of the approval requests they
    made that still wait, in the last 24 hours (an approved request counts as its entry)."""
    since = (now or timezone.now()) - DAILY_WINDOW
    entries = CreditTransaction.objects.filter(actor_id=actor.pk, created_at__gte=since)
    pending = CreditApprovalRequest.objects.filter(
        requested_by_id=actor.pk, status=ApprovalStatus.PENDING, requested_at__gte=since
    )
    return _exact_sum(entries, "amount") + _exact_sum(pending, "amount")


def staff_daily_allowance(
    *, actor: AbstractBaseUser, now: datetime | None = None
) -> DailyAllowance | None:
    """The actor's rolling 24-hour limit, used and left; None when they have no limit."""
    if actor.has_perm(UNLIMITED_PERMISSION):
        return None
    limit = settings.CREDITS_ADMIN_DAILY_LIMIT
    used = staff_daily_used(actor=actor, now=now)
    limit = Decimal(limit).quantize(CENT)
    return DailyAllowance(limit=limit, used=used, left=max(limit - used, Decimal("0.00")))


def credit_account_for_user(*, user: AbstractBaseUser) -> CreditAccount | None:
    return CreditAccount.objects.filter(user=user).first()


def credit_history(*, account: CreditAccount) -> QuerySet[CreditTransaction]:
    """The account's entries, newest first."""
    return CreditTransaction.objects.filter(account=account).order_by("-id")


def credit_lots(*, account: CreditAccount, open_only: bool = False) -> QuerySet[CreditLot]:
    """The account's lots, newest first (with `open_only`, those with credit left)."""
    lots = CreditLot.objects.filter(account=account)
    if open_only:
        lots = lots.filter(remaining__gt=0)
    return lots.order_by("-id")


def credit_holds(*, account: CreditAccount, status: str | None = None) -> QuerySet[CreditHold]:
    """The account's holds, newest first (with `status`, only those in it)."""
    holds = CreditHold.objects.filter(account=account)
    if status is not None:
        holds = holds.filter(status=status)
    return holds.order_by("-id")


def credit_hold_of_account(*, account: CreditAccount, hold_id: int) -> CreditHold | None:
    """The account's hold with this id; None for an unknown id or another account's hold."""
    return CreditHold.objects.filter(account=account, pk=hold_id).first()


def ledger_sum(*, account: CreditAccount) -> Decimal:
    """The sum of the account's entries, exact to the cent on every database."""
    total = CreditTransaction.objects.filter(account=account).aggregate(
        total=Round(Sum("amount"), AMOUNT_PLACES)
    )["total"]
    # SQLite sums decimals as floats; the rounding above and here makes that sum exact again.
    return Decimal(str(total or 0)).quantize(CENT)


def accounts_out_of_balance() -> QuerySet[CreditAccount]:
    """Accounts whose balance differs from the sum of their entries (should be none)."""
    return CreditAccount.objects.annotate(
        ledger_total=Round(Coalesce(Sum("entries__amount"), Value(Decimal("0"))), AMOUNT_PLACES)
    ).exclude(balance=F("ledger_total"))


def _subquery_sum(model, field: str, **filters):
    """The exact sum of `field` over `model`'s rows of the outer account (or lot)."""
    link = filters.pop("link", "account")
    rows = (
        model.objects.filter(**{link: OuterRef("pk")}, **filters)
        .order_by()
        .values(link)
        .annotate(total=Sum(field))
        .values("total")
    )
    return Round(Coalesce(Subquery(rows), Value(Decimal("0"))), AMOUNT_PLACES)


def accounts_off_their_lots() -> QuerySet[CreditAccount]:
    """Accounts whose balance differs from the sum of their lots' remaining (should be none)."""
    return CreditAccount.objects.annotate(lots_total=_subquery_sum(CreditLot, "remaining")).exclude(
        balance=F("lots_total")
    )


def lots_off_their_allocations() -> QuerySet[CreditLot]:
    """Lots whose remaining is not their amount less what their allocations took (none)."""
    return CreditLot.objects.annotate(
        allocated=_subquery_sum(CreditAllocation, "amount", link="lot")
    ).exclude(remaining=Round(F("amount") - F("allocated"), AMOUNT_PLACES))


def lots_left(*, entry_ids) -> dict[int, Decimal]:
    """What is left of the lot each of these crediting entries made, by entry id."""
    return dict(
        CreditLot.objects.filter(entry_id__any_of=list(entry_ids))
        .order_by()
        .values_list("entry_id", "remaining")
    )


def allocations_of(*, entry: CreditTransaction) -> dict[int, Decimal]:
    """What an entry took from (positive) or gave back to (negative) each lot, by lot id."""
    taken: dict[int, Decimal] = {}
    for lot_id, amount in (
        CreditAllocation.objects.filter(entry=entry).order_by().values_list("lot_id", "amount")
    ):
        taken[lot_id] = taken.get(lot_id, Decimal("0.00")) + amount
    return taken


def accounts_off_their_holds() -> QuerySet[CreditAccount]:
    """Accounts whose held is not the sum of their active holds, or is above the balance."""
    return CreditAccount.objects.annotate(
        holds_total=_subquery_sum(CreditHold, "amount", status=HoldStatus.ACTIVE)
    ).filter(~Q(held=F("holds_total")) | Q(held__gt=F("balance")))


def accounts_with_negative_balance() -> QuerySet[CreditAccount]:
    """Accounts below zero: the database CHECK makes this impossible; monitoring still looks."""
    return CreditAccount.objects.filter(balance__lt=0)


def spend_refusals_since(*, since) -> QuerySet[SpendRefusal]:
    """Spends refused (too little credit) since a moment."""
    return SpendRefusal.objects.filter(created_at__gte=since)


def approvals_pending(*, account: CreditAccount) -> QuerySet[CreditApprovalRequest]:
    """The account's approval requests still waiting for a decision, newest first."""
    return CreditApprovalRequest.objects.filter(
        account=account, status=ApprovalStatus.PENDING
    ).order_by("-pk")


def lots_due_to_expire(*, now: datetime) -> QuerySet[CreditLot]:
    """Lots with credit left whose expiry has come by `now`, soonest first (the expiry's order)."""
    return CreditLot.objects.filter(remaining__gt=0, expires_at__lte=now).order_by(
        "expires_at", "id"
    )


def holds_due_to_expire(*, now: datetime) -> QuerySet[CreditHold]:
    """Active holds whose time is up by `now`, soonest first (the expiry's order)."""
    return CreditHold.objects.filter(status=HoldStatus.ACTIVE, expires_at__lte=now).order_by(
        "expires_at", "id"
    )


def account_lots_open_first(*, account: CreditAccount) -> QuerySet[CreditLot]:
    """The account's lots for staff: those with credit left first, each group in the order
    spends draw lots (the draw-down rule), so the first row is what is spent next."""
    # The rule is defined once, by the services; imported here, not at the top, because the
    # services import this module.
    from credits.services.posting.lots import draw_order

    is_spent = Case(When(remaining__gt=0, then=Value(0)), default=Value(1))
    return (
        CreditLot.objects.filter(account=account)
        .annotate(is_spent=is_spent)
        .order_by("is_spent", *draw_order())
    )


def account_holds_active(*, account: CreditAccount) -> QuerySet[CreditHold]:
    """The account's active holds, the soonest to expire first."""
    return CreditHold.objects.filter(account=account, status=HoldStatus.ACTIVE).order_by(
        "expires_at", "id"
    )


def next_expiry(*, account_ref: OuterRef) -> tuple[Subquery, Subquery]:
    """The soonest expiry among the account's lots with credit left, as two subqueries for
    an outer query to annotate (the account's id at `account_ref`): its instant, and the
    credit left on the lots expiring at exactly that instant (not the same day: two lots a
    minute apart are two expiries). Both NULL when nothing expires. Both read the account's
    few lots through its index, inside the caller's one query (no extra round trip)."""
    expiring = CreditLot.objects.filter(
        account_id=account_ref, remaining__gt=0, expires_at__isnull=False
    ).order_by("expires_at")
    instant = Subquery(expiring.values("expires_at")[:1])
    amount = Subquery(
        expiring.values("expires_at").annotate(total=Sum("remaining")).values("total")[:1]
    )
    return instant, amount
