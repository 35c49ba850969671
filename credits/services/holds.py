"""Holds: credits reserved before an operation knows its final cost, then captured (a spend of
at most the hold, the rest freed), released, or expired by the beat task.

An active hold's amount counts in its account's `held`; the database keeps
0 <= held <= balance, and every debit checks `balance - held`, so what a hold reserves cannot
be spent twice. Each operation is one transaction: creation is one conditional UPDATE of the
account (the check and the row lock) and the INSERT of the hold; capture, release and expiry
lock the hold, then the account (always in that order), so two of them on one hold queue and
the second sees what the first did. Every call is idempotent: creating with a key already
used returns that hold, capturing a captured hold with its key returns its entry, releasing a
released hold returns it.
"""

from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, connections, transaction
from django.utils import timezone

from credits.exceptions import (
    HoldNotActive,
    IdempotencyConflict,
    InsufficientCredits,
    InvalidAmount,
)
from credits.models import AMOUNT_PLACES, CreditAccount, CreditHold, CreditTransaction, HoldStatus
from credits.selectors import holds_due_to_expire
from credits.services.entries import credit_spend
from credits.services.posting import check_key, positive_amount, postgresql
from credits.services.posting.post import fast_path

# The source of the spend entries captures write.
HOLD_SOURCE = "hold"


def hold_ttl(ttl_seconds) -> int:
    """A hold's time to live in seconds, checked (1 to CREDITS_HOLD_MAX_TTL; None: default)."""
    if ttl_seconds is None:
        return settings.CREDITS_HOLD_DEFAULT_TTL
    maximum = settings.CREDITS_HOLD_MAX_TTL
    if isinstance(ttl_seconds, bool) or not isinstance(ttl_seconds, int):
        raise InvalidAmount("ttl_seconds is a whole number of seconds.")
    if not 1 <= ttl_seconds <= maximum:
        raise InvalidAmount(f"ttl_seconds is from 1 to {maximum}.", ttl_seconds=ttl_seconds)
    return ttl_seconds


def credit_hold_create(
    *,
    account: CreditAccount,
    amount: Decimal,
    idempotency_key: str,
    ttl_seconds: int | None = None,
    description: str = "",
) -> CreditHold:
    """Reserve `amount` of the account's available credits for `ttl_seconds`; refuse with
    InsufficientCredits (balance, held, available) rather than reserve what is not there."""
    check_key(idempotency_key)
    amount = positive_amount(amount)
    ttl = hold_ttl(ttl_seconds)
    # No lookup of the key first: the unique constraint decides, and a refused write is then
    # looked up and answered as a replay (as credits.services.posting does for entries).
    now = timezone.now()
    expires_at = now + timedelta(seconds=ttl)
    try:
        db = connections[DEFAULT_DB_ALIAS]
        if fast_path(db):
            hold_id = postgresql.hold_create(
                db,
                account=account,
                amount=amount,
                idempotency_key=idempotency_key,
                expires_at=expires_at,
                description=description,
                created_at=now,
            )
            if hold_id is None:
                _refuse(account, amount)
            hold = CreditHold(
                pk=hold_id,
                account=account,
                amount=amount,
                expires_at=expires_at,
                idempotency_key=idempotency_key,
                description=description,
                created_at=now,
            )
            hold._state.adding = False
        else:
            with transaction.atomic():
                if _reserve(account.pk, amount, now) is None:
                    _refuse(account, amount)
                hold = CreditHold.objects.create(
                    account=account,
                    amount=amount,
                    expires_at=expires_at,
                    idempotency_key=idempotency_key,
                    description=description,
                )
    except (IntegrityError, InsufficientCredits):
        # A concurrent call with this key got there first (its hold may have taken the credits).
        existing = _hold_with_key(idempotency_key)
        if existing is not None:
            return _replay(existing, account, amount)
        raise
    account.held += amount
    return hold


def credit_hold_capture(
    *, hold: CreditHold, idempotency_key: str, amount: Decimal | None = None
) -> CreditTransaction:
    """Spend `amount` (at most the hold; all of it by default) of an active hold and free the
    rest; the spend entry is written under `idempotency_key`, drawn from lots by the rule."""
    check_key(idempotency_key)
    if amount is not None:
        amount = positive_amount(amount)
    db = connections[DEFAULT_DB_ALIAS]
    if fast_path(db):
        try:
            entry = postgresql.hold_capture(
                db, hold=hold, amount=amount, idempotency_key=idempotency_key, source=HOLD_SOURCE
            )
        except IntegrityError:
            entry = None  # the key is taken: settled below
        if entry is not None:
            return entry
        # Not capturable as asked: the portable path below says why (or replays) under the lock.
    with transaction.atomic():
        locked = _lock(hold)
        if locked.status == HoldStatus.CAPTURED:
            entry = locked.entry
            if entry.idempotency_key == idempotency_key:
                if amount is not None and -entry.amount != amount:
                    # Its key, another amount: not a retry of this capture (invariant 4).
                    raise IdempotencyConflict(idempotency_key=idempotency_key)
                entry.replayed = True
                return entry
            raise HoldNotActive(hold_id=locked.pk, status=locked.status)
        _check_active(locked)
        amount = locked.amount if amount is None else amount
        if amount > locked.amount:
            raise InvalidAmount(
                "A capture takes at most the hold's amount.",
                amount=str(amount),
                hold_amount=str(locked.amount),
            )
        _free(locked)
        entry = credit_spend(
            account=locked.account,
            amount=amount,
            idempotency_key=idempotency_key,
            description=locked.description,
            source=HOLD_SOURCE,
            metadata={"hold_id": locked.pk},
        )
        if entry.replayed:
            # The key is another entry's: this capture is not that one.
            raise IdempotencyConflict(idempotency_key=idempotency_key)
        locked.status = HoldStatus.CAPTURED
        locked.captured = amount
        locked.entry = entry
        locked.resolved_at = timezone.now()
        locked.save(update_fields=["status", "captured", "entry", "resolved_at"])
    _copy(locked, hold)
    return entry


def credit_hold_release(
    *, hold: CreditHold, actor: AbstractBaseUser | None = None, reason: str = ""
) -> CreditHold:
    """Free an active hold's credits (a released hold is returned as it is)."""
    with transaction.atomic():
        locked = _lock(hold)
        if locked.status == HoldStatus.RELEASED:
            locked.replayed = True
            return locked
        _check_active(locked, allow_past_expiry=True)
        _free(locked)
        locked.status = HoldStatus.RELEASED
        locked.released_by = actor
        locked.reason = reason
        locked.resolved_at = timezone.now()
        locked.save(update_fields=["status", "released_by", "reason", "resolved_at"])
    _copy(locked, hold)
    return hold


def credit_holds_expire(*, now: datetime | None = None, limit: int = 1000) -> int:
    """Release (as expired) up to `limit` active holds whose time is up; return how many.

    Each hold is its own transaction, so one slow account does not hold up the rest, and a
    hold captured or released meanwhile is left as it is.
    """
    now = now or timezone.now()
    expired = 0
    due = holds_due_to_expire(now=now)
    for hold_id in list(due.values_list("pk", flat=True)[:limit]):
        with transaction.atomic():
            locked = CreditHold.objects.select_for_update(of=("self",)).get(pk=hold_id)
            if locked.status != HoldStatus.ACTIVE:
                continue
            _free(locked)
            locked.status = HoldStatus.EXPIRED
            locked.resolved_at = now
            locked.save(update_fields=["status", "resolved_at"])
            expired += 1
    return expired


def _reserve(account_id: int, amount: Decimal, now: datetime):
    """Add to the account's held unless its available credits are fewer; None if refused."""
    table = connection.ops.quote_name(CreditAccount._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET held = ROUND(held + %s, {AMOUNT_PLACES}), updated_at = %s"
            # ROUND: on SQLite (binary floats) 0.30 - 0.10 is a hair below 0.20.
            f" WHERE id = %s AND ROUND(balance - held, {AMOUNT_PLACES}) >= CAST(%s AS NUMERIC)"
            " RETURNING held",
            [amount, now, account_id, amount],
        )
        return cursor.fetchone()


def _free(locked: CreditHold) -> None:
    """Take the hold's amount off its account's held (locking the account)."""
    table = connection.ops.quote_name(CreditAccount._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET held = ROUND(held - %s, {AMOUNT_PLACES}), updated_at = %s"
            " WHERE id = %s",
            [locked.amount, timezone.now(), locked.account_id],
        )


def _refuse(account: CreditAccount, amount: Decimal):
    balance, held = CreditAccount.objects.values_list("balance", "held").get(pk=account.pk)
    raise InsufficientCredits(
        balance=str(balance), held=str(held), available=str(balance - held), requested=str(amount)
    )


def _lock(hold: CreditHold) -> CreditHold:
    return (
        CreditHold.objects.select_for_update(of=("self",)).select_related("account").get(pk=hold.pk)
    )


def _check_active(locked: CreditHold, *, allow_past_expiry: bool = False) -> None:
    if locked.status != HoldStatus.ACTIVE:
        raise HoldNotActive(hold_id=locked.pk, status=locked.status)
    if not allow_past_expiry and locked.expires_at <= timezone.now():
        # Expired by the clock; the beat task releases it.
        raise HoldNotActive(hold_id=locked.pk, status=HoldStatus.EXPIRED)


def _copy(locked: CreditHold, hold: CreditHold) -> None:
    for field in ("status", "captured", "entry_id", "released_by_id", "reason", "resolved_at"):
        setattr(hold, field, getattr(locked, field))


def _hold_with_key(key: str) -> CreditHold | None:
    return CreditHold.objects.filter(idempotency_key=key).first()


def _replay(existing: CreditHold, account: CreditAccount, amount: Decimal) -> CreditHold:
    if existing.account_id != account.pk or existing.amount != amount:
        raise IdempotencyConflict(idempotency_key=existing.idempotency_key)
    existing.replayed = True
    return existing
