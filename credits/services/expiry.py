"""Lots that reach their expiry: one `expiry` entry per lot with credit left, the balance and
the lot moving together (the entry draws from that lot alone).

An expiry takes what the lot has left, but never what holds reserve: when the account's
available credits are fewer, it takes those and the rest waits for the next run (after the
hold is captured or released). A monthly lot, once, keeps up to CREDITS_MONTHLY_ROLLOVER_CAP
of what it has left into the next period (its expiry moves a month on once the rest has
gone).

Each lot is its own transaction, under its account's lock; the entry's key (per lot and per
earlier expiry of it) makes a second run, or two runs at once, write nothing twice.
"""

from datetime import datetime
from decimal import Decimal

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from core.keys import lot_expiry_key
from credits.locks import account_lock
from credits.models import CreditAllocation, CreditLot, CreditTransaction, EntryKind, LotCategory
from credits.services.posting import Entry, post

EXPIRY_SOURCE = "expiry"


def credit_lots_expire(
    *, now: datetime | None = None, limit: int = 1000
) -> list[CreditTransaction]:
    """Write the expiry entries of up to `limit` lots whose expiry has come; return them."""
    now = now or timezone.now()
    due = (
        CreditLot.objects.filter(remaining__gt=0, expires_at__lte=now)
        # Not lots of accounts whose holds reserve all: they would fill every run's `limit`
        # and write nothing, while lots behind them never expired.
        .exclude(account__held__gte=F("account__balance"))
        .order_by("expires_at", "id")
        .values_list("pk", "account_id")[:limit]
    )
    written = []
    for lot_id, account_id in list(due):
        entry = _expire(lot_id, account_id, now)
        if entry is not None:
            written.append(entry)
    return written


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
        due = lot.remaining - kept
        amount = min(due, account.balance - account.held)
        if rolls_over and amount >= due:
            # Only once all past the cap goes: while holds reserve some of it, the lot keeps
            # its expiry, so the rest goes at a later run and no more than the cap rolls over.
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
