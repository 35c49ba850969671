"""Which path writes an entry, and what a refused write means: a replay, a conflict, too
little credit."""

from decimal import Decimal

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connections

from credits.exceptions import (
    AlreadyReversed,
    DuplicateReference,
    IdempotencyConflict,
    InsufficientCredits,
)
from credits.models import CreditTransaction
from credits.services.posting import portable, postgresql
from credits.services.posting.entry import BeyondColumns, Entry, check_key


def post(entry: Entry) -> CreditTransaction:
    """Write the entry, or settle why it cannot be written.

    No lookup of the key comes first: the unique constraint decides, and a refused write (a
    duplicate key, or too little credit because a concurrent call with this key got there
    first) is then looked up and answered as a replay.
    """
    check_key(entry.idempotency_key)
    reverses = entry.fields.get("reverses")
    if reverses is not None:
        existing = _entry_with_key(entry.idempotency_key)
        if existing is not None:
            return _replay(existing, entry)
        if CreditTransaction.objects.filter(reverses=reverses).exists():
            raise AlreadyReversed(entry_id=reverses.pk)
    try:
        db = connections[DEFAULT_DB_ALIAS]
        if fast_path(db) and postgresql.takes(entry):
            return postgresql.write(entry, db)
        return portable.write(entry)
    except (InsufficientCredits, BeyondColumns):
        existing = _entry_with_key(entry.idempotency_key)
        if existing is not None:
            return _replay(existing, entry)
        raise
    except IntegrityError:
        existing = _entry_with_key(entry.idempotency_key)
        if existing is not None:
            return _replay(existing, entry)
        if reverses is not None and CreditTransaction.objects.filter(reverses=reverses).exists():
            raise AlreadyReversed(entry_id=reverses.pk) from None
        for field in ("stripe_event_id", "legacy_transaction_id"):
            value = entry.fields.get(field)
            if value and CreditTransaction.objects.filter(**{field: value}).exists():
                raise DuplicateReference(**{field: value}) from None
        raise


def fast_path(db) -> bool:
    return db.vendor == "postgresql" and settings.CREDITS_POSTGRESQL_FAST_PATH


def _entry_with_key(key: str) -> CreditTransaction | None:
    return CreditTransaction.objects.filter(idempotency_key=key).order_by().first()


def _replay(existing: CreditTransaction, entry: Entry) -> CreditTransaction:
    requested = Decimal(existing.metadata.get("requested_amount", existing.amount))
    reverses = entry.fields.get("reverses")
    if (
        existing.account_id != entry.account.pk
        or existing.kind != entry.kind
        or requested != entry.requested
        or (reverses is not None and existing.reverses_id != reverses.pk)
    ):
        raise IdempotencyConflict(idempotency_key=entry.idempotency_key)
    existing.replayed = True
    return existing
