"""Staff operations: grants, refunds and adjustments on a staff member's authority.

The plain services (`credit_grant`, `credit_refund`, `credit_adjust`) serve system callers
(Stripe webhooks, the migration, monthly grants) and check nothing about who calls them. These
wrap them with the roles, so the admin and a staff API share one set of rules:

- the actor needs the permission of the kind (`credits.grant_credits`, `credits.refund_credits`,
  `credits.adjust_credits`) and a reason;
- above `CREDITS_ADMIN_LIMIT` per action (per account) they also need `credits.adjust_unlimited`;
- nobody acts on their own account (`OwnAccount`): not a grant, refund, adjustment or approval;
- above `CREDITS_ADMIN_DAILY_LIMIT` in a rolling 24 hours (entries they wrote plus requests of
  theirs still waiting) they also need `credits.adjust_unlimited`. That sum is read after the
  actor's user row is locked (`select_for_update`), so one actor's parallel requests are checked
  one after the other and cannot together slip past it (SQLite serializes writers anyway);
- above `CREDITS_APPROVAL_THRESHOLD` nothing is written: a pending `CreditApprovalRequest` is
  stored, and only its approval by another staff member with the same rights writes the entry,
  once (the entry's key is derived from the request, and the request row is locked).

A staff grant may name its lot's category and a future expiry (checked before anything else is
written; an approval request keeps them, and its approval grants the lot so, unless the expiry
has passed meanwhile). A staff member with `credits.release_hold` may release a customer's
active hold, with a reason (not refused on their own account: a customer may release their own
holds through the API anyway).

Every refusal is raised before anything is written. Each call is its own transaction
(`durable=True`): these are entry points, never steps of a larger unit of work.
"""

from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.keys import approval_entry_key
from credits.exceptions import (
    ApprovalDecided,
    ApprovalRequired,
    IdempotencyConflict,
    InvalidAmount,
    OverDailyLimit,
    OverLimit,
    OwnAccount,
    ReasonRequired,
    SelfApproval,
    StaffPermissionDenied,
)
from credits.locks import approval_request_lock
from credits.models import (
    ApprovalStatus,
    CreditAccount,
    CreditApprovalRequest,
    CreditHold,
    CreditTransaction,
    EntryKind,
)
from credits.selectors import UNLIMITED_PERMISSION, staff_daily_allowance
from credits.services.entries import (
    STAFF_SOURCE,
    credit_adjust,
    credit_grant,
    credit_refund,
    lot_terms,
)
from credits.services.holds import credit_hold_release
from credits.services.posting import check_key, positive_amount, signed_amount

PERMISSION_FOR_KIND = {
    EntryKind.GRANT: "credits.grant_credits",
    EntryKind.REFUND: "credits.refund_credits",
    EntryKind.ADJUSTMENT: "credits.adjust_credits",
}
RELEASE_HOLD_PERMISSION = "credits.release_hold"

StaffResult = CreditTransaction | CreditApprovalRequest

GRANT_EXPIRY_IN_PAST = "A staff grant's expiry must be in the future."
GRANT_EXPIRY_PASSED = (
    "The grant's expiry has passed since it was asked for: reject the request and ask again."
)
RELEASE_REASON_REQUIRED = "Releasing a customer's hold needs a reason."


class LotChoice(NamedTuple):
    """What a staff grant asked of its lot: None leaves the default."""

    category: str | None = None
    expires_at: datetime | None = None


NO_TERMS = LotChoice()


def credit_staff_grant(
    *,
    account: CreditAccount,
    amount: Decimal,
    idempotency_key: str,
    actor: AbstractBaseUser,
    reason: str,
    category: str | None = None,
    expires_at: datetime | None = None,
) -> StaffResult:
    """Grant credits as staff: the entry, or a pending approval request above the threshold.

    The lot is of `category` (by default CREDITS_LOT_CATEGORIES' for a staff grant) and expires
    at `expires_at` (never by default), which must be in the future."""
    return _staff_operation(
        kind=EntryKind.GRANT,
        account=account,
        amount=positive_amount(amount),
        idempotency_key=idempotency_key,
        actor=actor,
        reason=reason,
        terms=LotChoice(category=category, expires_at=expires_at),
    )


def credit_staff_refund(
    *,
    account: CreditAccount,
    amount: Decimal,
    idempotency_key: str,
    actor: AbstractBaseUser,
    reason: str,
) -> StaffResult:
    """Refund credits as staff: the entry, or a pending approval request above the threshold."""
    return _staff_operation(
        kind=EntryKind.REFUND,
        account=account,
        amount=-positive_amount(amount),
        idempotency_key=idempotency_key,
        actor=actor,
        reason=reason,
    )


def credit_staff_adjust(
    *,
    account: CreditAccount,
    amount: Decimal,
    idempotency_key: str,
    actor: AbstractBaseUser,
    reason: str,
) -> StaffResult:
    """Adjust a balance by a signed amount as staff, or ask for approval above the threshold."""
    return _staff_operation(
        kind=EntryKind.ADJUSTMENT,
        account=account,
        amount=signed_amount(amount),
        idempotency_key=idempotency_key,
        actor=actor,
        reason=reason,
    )


def credit_approval_approve(
    *, approval: CreditApprovalRequest, actor: AbstractBaseUser
) -> CreditTransaction:
    """Approve a pending request and write its entry; approving it again returns that entry."""
    _check_actor(actor, "approval")
    with transaction.atomic(durable=True):
        locked = approval_request_lock(approval_id=approval.pk)
        if locked.requested_by_id == actor.pk:
            raise SelfApproval(approval_request=locked.pk)
        if locked.status == ApprovalStatus.APPROVED:
            entry = locked.entry
            entry.replayed = True
            return entry
        if locked.status == ApprovalStatus.REJECTED:
            raise ApprovalDecided(approval_request=locked.pk, status=locked.status)
        _authorize(actor, locked.kind, locked.amount)
        _check_not_own(actor, locked.account)
        terms = LotChoice(category=locked.lot_category or None, expires_at=locked.lot_expires_at)
        if terms.expires_at is not None and terms.expires_at <= timezone.now():
            raise InvalidAmount(GRANT_EXPIRY_PASSED, expires_at=terms.expires_at.isoformat())
        entry = _write_entry(
            terms=terms,
            kind=locked.kind,
            account=locked.account,
            amount=locked.amount,
            idempotency_key=approval_entry_key(approval_id=locked.pk),
            actor=locked.requested_by,
            reason=locked.reason,
            metadata={"approval_request": locked.pk, "approved_by": actor.pk},
        )
        locked.entry = entry
        _mark_decided(locked, ApprovalStatus.APPROVED, actor, "entry")
    _copy_decision(locked, approval)
    return entry


def credit_approval_reject(
    *, approval: CreditApprovalRequest, actor: AbstractBaseUser, reason: str = ""
) -> CreditApprovalRequest:
    """Reject a pending request: nothing is written to the ledger; rejecting again is a no-op.

    The reason, when given, is kept on the request (`decision_reason`) for its requester."""
    _check_actor(actor, "rejection")
    with transaction.atomic(durable=True):
        locked = approval_request_lock(approval_id=approval.pk)
        if locked.requested_by_id == actor.pk:
            raise SelfApproval(approval_request=locked.pk)
        if locked.status == ApprovalStatus.REJECTED:
            return locked
        if locked.status == ApprovalStatus.APPROVED:
            raise ApprovalDecided(approval_request=locked.pk, status=locked.status)
        _authorize(actor, locked.kind, locked.amount)
        locked.decision_reason = reason.strip()
        _mark_decided(locked, ApprovalStatus.REJECTED, actor, "decision_reason")
    _copy_decision(locked, approval)
    return locked


def credit_staff_authorize(
    *,
    actor: AbstractBaseUser,
    account: CreditAccount,
    kind: str,
    amount: Decimal,
    reason: str,
) -> None:
    """Check a staff operation that happens at once or not at all (a refund through Stripe).

    The same rules as the operations above (permission, reason, limit per action, never on
    one's own account, the rolling daily limit), except that above the approval threshold it
    is refused (`ApprovalRequired`) rather than queued, since money that leaves through Stripe
    cannot wait for an approval. The daily limit is read here, before Stripe is asked, not
    under the actor's lock: two Stripe refunds of one staff member at the same instant may
    both pass it (each is still bounded by the limit per action and by the payment).
    """
    _check_staff(actor, kind, amount, reason)
    _check_not_own(actor, account)
    if not actor.has_perm(UNLIMITED_PERMISSION):
        _check_daily_limit(actor, amount)
    if abs(amount) > settings.CREDITS_APPROVAL_THRESHOLD:
        raise ApprovalRequired(
            threshold=str(settings.CREDITS_APPROVAL_THRESHOLD), amount=str(abs(amount))
        )


def credit_staff_release_hold(
    *, actor: AbstractBaseUser, hold: CreditHold, reason: str
) -> CreditHold:
    """Release a customer's active hold as staff, with a reason; a released hold is returned
    as it is (`.replayed`), a captured or expired one refused (`HoldNotActive`)."""
    _check_actor(actor, "release of a hold")
    if not isinstance(reason, str) or not reason.strip():
        raise ReasonRequired(RELEASE_REASON_REQUIRED)
    if not actor.has_perm(RELEASE_HOLD_PERMISSION):
        raise StaffPermissionDenied(permission=RELEASE_HOLD_PERMISSION)
    with transaction.atomic(durable=True):
        return credit_hold_release(hold=hold, actor=actor, reason=reason.strip())


def staff_can(actor: AbstractBaseUser, kind: str) -> bool:
    """Whether the actor may do this kind of staff operation at all (limits aside)."""
    return actor.has_perm(PERMISSION_FOR_KIND[kind])


def staff_limit(actor: AbstractBaseUser) -> Decimal | None:
    """The most the actor may move per action, or None when they have no limit."""
    return None if actor.has_perm(UNLIMITED_PERMISSION) else settings.CREDITS_ADMIN_LIMIT


# --- internals ----------------------------------------------------------------------------


def _check_actor(actor: AbstractBaseUser | None, what: str) -> None:
    if actor is None or not getattr(actor, "is_authenticated", False):
        raise ReasonRequired(f"A staff {what} needs the staff member who makes it.")


def _check_reason(reason: str, what: str) -> None:
    if not isinstance(reason, str) or not reason.strip():
        raise ReasonRequired(f"A staff {what} needs a reason.")


_NO_KEY = object()  # _check_staff for an operation that has no key of its own


def _check_staff(
    actor: AbstractBaseUser,
    kind: str,
    amount: Decimal,
    reason: str,
    *,
    idempotency_key: Any = _NO_KEY,
) -> None:
    """Who, why and how much: a signed-in actor, a reason, (a valid key,) the role and the
    limit, checked in that order."""
    what = str(EntryKind(kind).label).lower()
    _check_actor(actor, what)
    _check_reason(reason, what)
    if idempotency_key is not _NO_KEY:
        check_key(idempotency_key)
    _authorize(actor, kind, amount)


def _mark_decided(locked: CreditApprovalRequest, status: str, actor, *also: str) -> None:
    locked.status = status
    locked.decided_by = actor
    locked.decided_at = timezone.now()
    locked.save(update_fields=["status", "decided_by", "decided_at", *also])


def _authorize(actor: AbstractBaseUser, kind: str, amount: Decimal) -> None:
    if not staff_can(actor, kind):
        raise StaffPermissionDenied(permission=PERMISSION_FOR_KIND[kind])
    limit = staff_limit(actor)
    if limit is not None and abs(amount) > limit:
        raise OverLimit(limit=str(limit), amount=str(abs(amount)))


def _check_not_own(actor: AbstractBaseUser, account: CreditAccount) -> None:
    if account.user_id == actor.pk:
        raise OwnAccount(account=account.pk)


def _lock_actor(actor: AbstractBaseUser) -> None:
    """Lock the actor's user row for the caller's transaction: one actor's staff writes then
    read their 24-hour sum one after another (on PostgreSQL; SQLite serializes writers)."""
    get_user_model().objects.select_for_update().filter(pk=actor.pk).values_list("pk").first()


def _check_daily_limit(actor: AbstractBaseUser, amount: Decimal) -> None:
    """Refuse what would take the actor past their rolling 24-hour limit; the caller holds
    `_lock_actor` until it commits, with the write."""
    allowance = staff_daily_allowance(actor=actor)
    if allowance is not None and abs(amount) > allowance.left:
        raise OverDailyLimit(
            limit=str(allowance.limit),
            used=str(allowance.used),
            left=str(allowance.left),
            amount=str(abs(amount)),
        )


def check_grant_terms(*, category: str | None = None, expires_at: datetime | None = None) -> None:
    """Refuse (InvalidAmount) a staff grant's lot terms that `credit_staff_grant` would refuse:
    for forms that show the refusal beside the field before anything is submitted."""
    _check_terms(LotChoice(category=category, expires_at=expires_at))


def _check_terms(terms: LotChoice) -> None:
    """A known category and an aware expiry (`lot_terms`), in the future: a lot that expires
    before it is granted would be taken back by the next expiry run."""
    lot_terms(category=terms.category, expires_at=terms.expires_at)
    if terms.expires_at is not None and terms.expires_at <= timezone.now():
        raise InvalidAmount(GRANT_EXPIRY_IN_PAST, expires_at=terms.expires_at.isoformat())


def _staff_operation(
    *,
    kind: str,
    account: CreditAccount,
    amount: Decimal,
    idempotency_key: str,
    actor: AbstractBaseUser,
    reason: str,
    terms: LotChoice = NO_TERMS,
) -> StaffResult:
    _check_staff(actor, kind, amount, reason, idempotency_key=idempotency_key)
    _check_terms(terms)
    _check_not_own(actor, account)
    with transaction.atomic(durable=True):
        limited = not actor.has_perm(UNLIMITED_PERMISSION)
        if limited:
            # Before the replay check below, so a replay racing its original sees it.
            _lock_actor(actor)
        above = abs(amount) > settings.CREDITS_APPROVAL_THRESHOLD
        # One key names one thing: an entry written at once, or a request for approval. The
        # same key on the other side of the threshold (which may have moved) is a conflict.
        same_side, other_side = (
            (CreditApprovalRequest, CreditTransaction)
            if above
            else (CreditTransaction, CreditApprovalRequest)
        )
        if other_side.objects.filter(idempotency_key=idempotency_key).exists():
            raise IdempotencyConflict(idempotency_key=idempotency_key)
        if limited and not same_side.objects.filter(idempotency_key=idempotency_key).exists():
            # A replay is answered below as before; only a new write counts against the day.
            _check_daily_limit(actor, amount)
        if above:
            return _request_approval(
                kind=kind,
                account=account,
                amount=amount,
                idempotency_key=idempotency_key,
                actor=actor,
                reason=reason,
                terms=terms,
            )
        return _write_entry(
            terms=terms,
            kind=kind,
            account=account,
            amount=amount,
            idempotency_key=idempotency_key,
            actor=actor,
            reason=reason,
            metadata={},
        )


def _request_approval(*, kind, account, amount, idempotency_key, actor, reason, terms):
    existing = CreditApprovalRequest.objects.filter(idempotency_key=idempotency_key).first()
    if existing is None:
        try:
            with transaction.atomic():
                return CreditApprovalRequest.objects.create(
                    account=account,
                    kind=kind,
                    amount=amount,
                    reason=reason,
                    idempotency_key=idempotency_key,
                    requested_by=actor,
                    lot_category=terms.category or "",
                    lot_expires_at=terms.expires_at,
                )
        except IntegrityError:
            # Another submission with this key got there first: answer as its replay.
            existing = CreditApprovalRequest.objects.get(idempotency_key=idempotency_key)
    asked = (existing.account_id, existing.kind, existing.amount, existing.lot_category)
    if asked != (account.pk, kind, amount, terms.category or "") or (
        existing.lot_expires_at != terms.expires_at
    ):
        raise IdempotencyConflict(idempotency_key=idempotency_key)
    existing.replayed = True
    return existing


# What the customer sees on their history for a staff entry (the reason stays for staff).
STAFF_DESCRIPTIONS = {
    EntryKind.GRANT: "Credits granted by support",
    EntryKind.REFUND: "Credits refunded by support",
    EntryKind.ADJUSTMENT: "Balance adjusted by support",
}


def _write_entry(
    *, kind, account, amount, idempotency_key, actor, reason, metadata, terms=NO_TERMS
):
    description = STAFF_DESCRIPTIONS[kind]
    if kind == EntryKind.GRANT:
        return credit_grant(
            account=account,
            amount=amount,
            idempotency_key=idempotency_key,
            actor=actor,
            reason=reason,
            source=STAFF_SOURCE,
            description=description,
            metadata=metadata,
            category=terms.category,
            expires_at=terms.expires_at,
        )
    if kind == EntryKind.REFUND:
        return credit_refund(
            account=account,
            amount=-amount,
            idempotency_key=idempotency_key,
            actor=actor,
            reason=reason,
            source=STAFF_SOURCE,
            description=description,
            metadata=metadata,
        )
    return credit_adjust(
        account=account,
        amount=amount,
        idempotency_key=idempotency_key,
        actor=actor,
        reason=reason,
        description=description,
        metadata=metadata,
    )


def _copy_decision(locked: CreditApprovalRequest, approval: CreditApprovalRequest) -> None:
    for name in ("status", "decided_by_id", "decided_at", "decision_reason", "entry_id"):
        setattr(approval, name, getattr(locked, name))
