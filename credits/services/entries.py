"""The services that write one entry each: grant, spend, refund, adjust, reverse."""

from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from credits.exceptions import (
    InvalidAmount,
    NotReversible,
    ReasonRequired,
)
from credits.models import (
    CREDITING_KINDS,
    CreditAccount,
    CreditTransaction,
    EntryKind,
)
from credits.services.posting import Entry, positive_amount, post, signed_amount

# The source of entries staff write (adjustments, and staff grants and refunds).
STAFF_SOURCE = "staff"


def credit_grant(
    *,
    account: CreditAccount,
    amount: Decimal,
    idempotency_key: str,
    kind: str = EntryKind.GRANT,
    actor: AbstractBaseUser | None = None,
    reason: str = "",
    source: str = "",
    description: str = "",
    metadata: dict[str, Any] | None = None,
    stripe_event_id: str | None = None,
    migrated_from: str = "",
) -> CreditTransaction:
    """Add credits to an account (a grant, purchase, migration or monthly grant)."""
    if kind not in CREDITING_KINDS:
        raise InvalidAmount(f"{kind!r} is not a kind of entry that grants credits.")
    amount = positive_amount(amount)
    return post(
        Entry(
            account=account,
            kind=kind,
            amount=amount,
            requested=amount,
            idempotency_key=idempotency_key,
            earned_delta=amount,
            spent_delta=Decimal(0),
            fields=dict(
                actor=actor,
                reason=reason,
                source=source,
                description=description,
                metadata=metadata or {},
                stripe_event_id=stripe_event_id,
                migrated_from=migrated_from,
            ),
        )
    )


def credit_spend(
    *,
    account: CreditAccount,
    amount: Decimal,
    idempotency_key: str,
    description: str = "",
    source: str = "",
    metadata: dict[str, Any] | None = None,
) -> CreditTransaction:
    """Take credits for usage; refuse with InsufficientCredits rather than overdraw."""
    amount = positive_amount(amount)
    return post(
        Entry(
            account=account,
            kind=EntryKind.SPEND,
            amount=-amount,
            requested=-amount,
            idempotency_key=idempotency_key,
            earned_delta=Decimal(0),
            spent_delta=amount,
            fields=dict(source=source, description=description, metadata=metadata or {}),
        )
    )


def credit_refund(
    *,
    account: CreditAccount,
    amount: Decimal,
    idempotency_key: str,
    reason: str,
    actor: AbstractBaseUser | None = None,
    allow_partial: bool = False,
    source: str = "",
    description: str = "",
    metadata: dict[str, Any] | None = None,
    stripe_event_id: str | None = None,
) -> CreditTransaction:
    """Remove the credits of money given back to the customer.

    With `allow_partial`, an account holding less than `amount` loses what it holds and the
    entry's metadata records the shortfall; without it the refund is refused.
    """
    if not reason.strip():
        raise ReasonRequired("A refund needs a reason.")
    amount = positive_amount(amount)
    return post(
        Entry(
            account=account,
            kind=EntryKind.REFUND,
            amount=-amount,
            requested=-amount,
            idempotency_key=idempotency_key,
            earned_delta=-amount,
            spent_delta=Decimal(0),
            allow_partial=allow_partial,
            fields=dict(
                actor=actor,
                reason=reason,
                source=source,
                description=description,
                metadata=metadata or {},
                stripe_event_id=stripe_event_id,
            ),
        )
    )


def credit_adjust(
    *,
    account: CreditAccount,
    amount: Decimal,
    idempotency_key: str,
    actor: AbstractBaseUser,
    reason: str,
    description: str = "",
    metadata: dict[str, Any] | None = None,
) -> CreditTransaction:
    """Correct a balance by a signed amount, on a staff member's authority."""
    if actor is None or not reason.strip():
        raise ReasonRequired()
    amount = signed_amount(amount)
    return post(
        Entry(
            account=account,
            kind=EntryKind.ADJUSTMENT,
            amount=amount,
            requested=amount,
            idempotency_key=idempotency_key,
            earned_delta=amount,
            spent_delta=Decimal(0),
            fields=dict(
                actor=actor,
                reason=reason,
                source=STAFF_SOURCE,
                description=description,
                metadata=metadata or {},
            ),
        )
    )


def credit_reverse(
    *,
    entry: CreditTransaction,
    idempotency_key: str,
    actor: AbstractBaseUser | None = None,
    reason: str = "",
    allow_partial: bool = False,
    metadata: dict[str, Any] | None = None,
) -> CreditTransaction:
    """Append the opposite of an entry; an entry is reversed at most once.

    Reversing credits the account holds no more of is refused, unless `allow_partial`, which
    reverses what is left and records the shortfall in the reversal's metadata.
    """
    if entry.kind in (EntryKind.REVERSAL, EntryKind.HISTORY):
        raise NotReversible(entry_id=entry.pk)
    amount = -entry.amount
    is_spend = entry.kind == EntryKind.SPEND
    return post(
        Entry(
            account=entry.account,
            kind=EntryKind.REVERSAL,
            amount=amount,
            requested=amount,
            idempotency_key=idempotency_key,
            earned_delta=Decimal(0) if is_spend else amount,
            spent_delta=-amount if is_spend else Decimal(0),
            allow_partial=allow_partial,
            fields=dict(
                actor=actor,
                reason=reason,
                reverses=entry,
                source=entry.source,
                description=f"Reversal of entry {entry.pk}",
                metadata=metadata or {},
                migrated_from=entry.migrated_from,
            ),
        )
    )
