"""Lots that reach their expiry: one `expiry` entry per lot with credit left, the balance and
the lot moving together (the entry draws from that lot alone).

An expiry takes what the lot has left, but never what holds reserve: when the account's
available credits are fewer, it takes those and the rest waits for the next run (after the
hold is captured or released). A monthly lot, once, keeps up to CREDITS_MONTHLY_ROLLOVER_CAP
of what it has left into the next period (its expiry moves a month on); it rolls over only in
the run that expires all the rest, so a hold cannot stretch the rest's life by a month.

Each lot is its own transaction, under its account's lock; the entry's key (per lot and per
earlier expiry of it) makes a second run, or two runs at once, write nothing twice. Due lots
are walked in (expires_at, id) order a page at a time, past the ones a hold keeps for now, so
those never stand in front of the rest.

`credit_expiry_run` is what the beat task and `manage.py expire_credits` run: the holds first
(what they free may then expire), then the lots, batch after batch until none is left or a
bound is reached.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core.keys import lot_expiry_key
from credits.locks import account_lock
from credits.models import CreditAllocation, CreditLot, CreditTransaction, EntryKind, LotCategory
from credits.selectors import lots_due_to_expire
from credits.services.holds import credit_holds_expire
from credits.services.posting import Entry, post

EXPIRY_SOURCE = "expiry"


def credit_lots_expire(
    *, now: datetime | None = None, limit: int = 1000
) -> list[CreditTransaction]:
    """Write the expiry entries of up to `limit` lots whose expiry has come; return them."""
    now = now or timezone.now()
    written: list[CreditTransaction] = []
    after = None
    while len(written) < limit:
        page = _due_page(now, after, limit)
        for lot_id, account_id, expires_at in page:
            after = (expires_at, lot_id)
            entry = _expire(lot_id, account_id, now)
            if entry is not None and not getattr(entry, "replayed", False):
                written.append(entry)
                if len(written) == limit:
                    break
        if len(page) < limit:
            break
    return written


def _due_page(now: datetime, after: tuple[datetime, int] | None, size: int) -> list:
    """The next `size` due lots after `after` (expires_at, id), as (id, account id, expiry)."""
    due = lots_due_to_expire(now=now)
    if after is not None:
        expires_at, lot_id = after
        due = due.filter(Q(expires_at__gt=expires_at) | Q(expires_at=expires_at, pk__gt=lot_id))
    return list(due.values_list("pk", "account_id", "expires_at")[:size])


@dataclass(frozen=True)
class ExpiryRun:
    """What one run of the expiry wrote."""

    holds_expired: int
    lots_expired: int
    credits_expired: Decimal
    # Whether the bound stopped it with more perhaps left (the next run goes on).
    bounded: bool


def credit_expiry_run(
    *, now: datetime | None = None, batch_size: int = 1000, max_batches: int = 50
) -> ExpiryRun:
    """Release the holds and expire the lots whose time has come, `batch_size` at a time, for
    at most `max_batches` batches of each; return the counts."""
    now = now or timezone.now()
    holds, bounded = 0, False
    for _batch in range(max_batches):
        expired = credit_holds_expire(now=now, limit=batch_size)
        holds += expired
        if expired < batch_size:
            break
    else:
        bounded = True
    entries: list[CreditTransaction] = []
    for _batch in range(max_batches):
        written = credit_lots_expire(now=now, limit=batch_size)
        entries += written
        if len(written) < batch_size:
            break
    else:
        bounded = True
    return ExpiryRun(
        holds_expired=holds,
        lots_expired=len(entries),
        credits_expired=-sum((entry.amount for entry in entries), Decimal("0.00")),
        bounded=bounded,
    )


def _expire(lot_id: int, account_id: int, now: datetime) -> CreditTransaction | None:
    with transaction.atomic():
        account = account_lock(account_id=account_id)
        lot = CreditLot.objects.get(pk=lot_id)
        if lot.remaining <= 0 or lot.expires_at is None or lot.expires_at > now:
            return None
        expired_at = lot.expires_at
        kept = Decimal(0)
        cap = settings.CREDITS_MONTHLY_ROLLOVER_CAP
        rolls_over = lot.category == LotCategory.MONTHLY and cap > 0 and not lot.rolled_over
        if rolls_over:
            kept = min(lot.remaining, cap)
        to_expire = lot.remaining - kept
        amount = min(to_expire, account.balance - account.held)
        if rolls_over and amount == to_expire:
            lot.expires_at += relativedelta(months=1)
            lot.rolled_over = True
            lot.save(update_fields=["expires_at", "rolled_over"])
        if amount <= 0:
            return None
        sequence = CreditAllocation.objects.filter(
            lot_id=lot_id, entry__kind=EntryKind.EXPIRY
        ).count()
        return post(
            Entry(
                account=account,
                kind=EntryKind.EXPIRY,
                amount=-amount,
                requested=-amount,
                idempotency_key=lot_expiry_key(lot_id=lot_id, sequence=sequence),
                earned_delta=-amount,
                spent_delta=Decimal(0),
                first_lot=lot_id,
                fields=dict(
                    source=EXPIRY_SOURCE,
                    description=f"Expiry of lot {lot_id}",
                    metadata={"lot_id": lot_id, "expired_at": expired_at.isoformat()},
                ),
            )
        )
