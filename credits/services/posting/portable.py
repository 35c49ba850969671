"""The portable write path: a conditional UPDATE of the account, then the ORM's INSERT of the
entry, in one transaction (a savepoint inside the caller's).

It runs on every database Django supports (SQLite here), and on PostgreSQL for the entries the
fast path does not take: partial refunds and reversals, which read what is left under the row
lock first, and every entry when CREDITS_POSTGRESQL_FAST_PATH is off.
"""

from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from credits.locks import account_lock
from credits.models import AMOUNT_PLACES, CENT, CreditAccount, CreditTransaction
from credits.services.posting import lots
from credits.services.posting.entry import MAX_AMOUNT, Entry, refuse


def write(entry: Entry) -> CreditTransaction:
    """Move the balance and insert the entry, or move nothing and raise why."""
    with transaction.atomic():
        return _write(entry)


def _write(entry: Entry) -> CreditTransaction:
    amount, earned_delta, spent_delta = entry.amount, entry.earned_delta, entry.spent_delta
    metadata = dict(entry.fields.get("metadata") or {})
    if entry.allow_partial and amount < 0:
        # Lock first so the amount left cannot shrink between reading it and taking it.
        locked = account_lock(account_id=entry.account.pk)
        available = locked.balance - locked.held
        if 0 < available < -amount:
            # Only refunds and reversals of credits received are partial: all of it is earned.
            amount = earned_delta = -available
            metadata["requested_amount"] = str(entry.requested)
            metadata["shortfall"] = str(-entry.requested - available)
    moved = _move_balance(entry.account.pk, amount, earned_delta, spent_delta)
    if moved is None:
        refuse(entry)
    balance_after, total_earned, total_spent = moved
    written = CreditTransaction.objects.create(
        account_id=entry.account.pk,
        kind=entry.kind,
        amount=amount,
        balance_before=balance_after - amount,
        balance_after=balance_after,
        idempotency_key=entry.idempotency_key,
        **{**entry.fields, "metadata": metadata},
    )
    lots.apply(written, terms=entry.lot_terms, first_lot=entry.first_lot)
    entry.account.balance = balance_after
    entry.account.total_earned = total_earned
    entry.account.total_spent = total_spent
    return written


def _move_balance(
    account_id: int, amount: Decimal, earned_delta: Decimal, spent_delta: Decimal
) -> tuple[Decimal, Decimal, Decimal] | None:
    """Apply a change unless it would take the balance below what holds reserve (zero when
    none); return the new totals, or None if refused.

    One statement is both the check and the write, and it takes the row lock until commit.
    """
    table = connection.ops.quote_name(CreditAccount._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET"  # the table name comes from the model, values are params
            f" balance = ROUND(balance + %s, {AMOUNT_PLACES}),"
            f" total_earned = ROUND(total_earned + %s, {AMOUNT_PLACES}),"
            f" total_spent = ROUND(total_spent + %s, {AMOUNT_PLACES}),"
            " updated_at = %s"
            # CAST: SQLite binds a Decimal as text, and a number compares below any text.
            # ROUND: on SQLite (binary floats) 0.30 - 0.10 is a hair below a held 0.20.
            f" WHERE id = %s AND ROUND(balance + %s, {AMOUNT_PLACES}) >= held"
            " AND balance + %s <= CAST(%s AS NUMERIC)"
            " AND total_earned + %s <= CAST(%s AS NUMERIC)"
            " AND total_spent + %s <= CAST(%s AS NUMERIC)"
            " RETURNING balance, total_earned, total_spent",
            [
                *(amount, earned_delta, spent_delta, timezone.now(), account_id, amount),
                *(amount, MAX_AMOUNT, earned_delta, MAX_AMOUNT, spent_delta, MAX_AMOUNT),
            ],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    return tuple(_decimal_from_db(value) for value in row)  # type: ignore[return-value]


def _decimal_from_db(value: Any) -> Decimal:
    # PostgreSQL returns Decimal; SQLite returns an int or a float holding a 2-place value.
    return value if isinstance(value, Decimal) else Decimal(str(value)).quantize(CENT)
