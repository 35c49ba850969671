"""The services that write one entry each: grant, spend, refund, adjust, reverse."""

from datetime import datetime
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
    LotCategory,
)
from credits.services.posting import Entry, positive_amount, post, signed_amount
from credits.services.posting.lots import LotTerms, lot_of

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
    category: str | None = None,
    expires_at: datetime | None = None,
    priority: int = 0,
) -> CreditTransaction:
    """Add credits to an account (a grant, purchase, migration or monthly grant) as a new lot:
    of `category` (by default CREDITS_LOT_CATEGORIES' for the kind and source), expiring at
    `expires_at` (never by default), drawn in `priority` order among its equals."""
    if kind not in CREDITING_KINDS:
        raise InvalidAmount(f"{kind!r} is not a kind of entry that grants credits.")
    amount = positive_amount(amount)
    return post(
        Entry(
            lot_terms=lot_terms(category=category, expires_at=expires_at, priority=priority),
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
    purchase: CreditTransaction | None = None,
) -> CreditTransaction:
    """Remove the credits of money given back to the customer, from the lot of `purchase` (the
    entry that added them) first, then by the draw-down rule.

    With `allow_partial`, an account with less than `amount` available (its balance less what
    holds reserve) loses what is available and the entry's metadata records the shortfall;
    without it the refund is refused.
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
            first_lot=lot_of(purchase, account_id=account.pk),
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
    category: str | None = None,
    expires_at: datetime | None = None,
) -> CreditTransaction:
    """Correct a balance by a signed amount, on a staff member's authority: credits added are a
    new lot (`category`, `expires_at` as for a grant), credits removed are drawn by the rule."""
    if actor is None or not reason.strip():
        raise ReasonRequired()
    amount = signed_amount(amount)
    return post(
        Entry(
            lot_terms=lot_terms(category=category, expires_at=expires_at),
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
    amount: Decimal | None = None,
) -> CreditTransaction:
    """Append the opposite of an entry, or of `amount` of it; an entry is reversed at most once.

    `amount` (positive, at most the entry's) reverses part of the entry, and that reversal is
    its one reversal. A reversal of credits added takes from the entry's own lot first, then by
    the draw-down rule. Reversing credits the account holds no more of is refused, unless
    `allow_partial`, which reverses what is available and records the shortfall in the
    reversal's metadata.
    """
    if entry.kind in (EntryKind.REVERSAL, EntryKind.HISTORY):
        raise NotReversible(entry_id=entry.pk)
    whole = -entry.amount
    metadata = dict(metadata or {})
    if amount is None:
        amount = whole
    else:
        part = positive_amount(amount)
        if part > abs(whole):
            raise InvalidAmount(
                "A reversal takes at most the entry's amount.",
                amount=str(amount),
                entry_amount=str(entry.amount),
            )
        amount = part if whole > 0 else -part
        if amount != whole:
            metadata["partial_of"] = str(entry.amount)
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
                metadata=metadata,
                migrated_from=entry.migrated_from,
            ),
        )
    )


def lot_terms(
    *, category: str | None = None, expires_at: datetime | None = None, priority: int = 0
) -> LotTerms | None:
    """A new lot's terms, checked: a known category, an aware expiry, a priority of 0-32767."""
    if category is None and expires_at is None and not priority:
        return None
    if category is not None and category not in LotCategory.values:
        raise InvalidAmount(
            f"{category!r} is not a lot category ({', '.join(LotCategory.values)}).",
            category=str(category),
        )
    if expires_at is not None and (
        not isinstance(expires_at, datetime) or expires_at.tzinfo is None
    ):
        raise InvalidAmount("A lot's expiry is an aware datetime.")
    if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 32767:
        raise InvalidAmount("A lot's priority is a whole number from 0 to 32767.")
    return LotTerms(category=category, expires_at=expires_at, priority=priority)
