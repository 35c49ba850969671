"""How one entry is written: validation, the one-statement PostgreSQL path, the portable
path, and replays. Private to credits.services."""

import json
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

import psycopg
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

from credits.exceptions import (
    AlreadyReversed,
    DuplicateReference,
    IdempotencyConflict,
    InsufficientCredits,
    InvalidAmount,
)
from credits.models import (
    AMOUNT_DIGITS,
    AMOUNT_PLACES,
    CENT,
    CreditAccount,
    CreditTransaction,
)
from credits.services._combining import WRITE_ALONE, Combiner

MAX_AMOUNT = Decimal(10) ** (AMOUNT_DIGITS - AMOUNT_PLACES) - CENT
IDEMPOTENCY_KEY_MAX_LENGTH = CreditTransaction._meta.get_field("idempotency_key").max_length


@dataclass
class _Entry:
    account: CreditAccount
    kind: str
    amount: Decimal
    requested: Decimal
    idempotency_key: str
    earned_delta: Decimal
    spent_delta: Decimal
    fields: dict[str, Any]
    allow_partial: bool = False


def _as_decimal(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise InvalidAmount(f"Amounts are Decimal or int, not {type(value).__name__}.")
    try:
        amount = Decimal(value)
        if not amount.is_finite() or amount != amount.quantize(CENT):
            raise InvalidAmount(amount=str(value))
    except InvalidOperation as error:
        raise InvalidAmount(amount=str(value)) from error
    if abs(amount) > MAX_AMOUNT:
        raise InvalidAmount(f"The amount must be at most {MAX_AMOUNT}.", amount=str(value))
    return amount.quantize(CENT)


def _positive_amount(value: Any) -> Decimal:
    amount = _as_decimal(value)
    if amount <= 0:
        raise InvalidAmount("The amount must be greater than zero.", amount=str(value))
    return amount


def _signed_amount(value: Any) -> Decimal:
    amount = _as_decimal(value)
    if amount == 0:
        raise InvalidAmount("The amount must not be zero.", amount=str(value))
    return amount


def _check_key(key: str) -> None:
    if not isinstance(key, str) or not key.strip() or len(key) > IDEMPOTENCY_KEY_MAX_LENGTH:
        raise InvalidAmount(
            f"An idempotency key is a non-empty string of at most "
            f"{IDEMPOTENCY_KEY_MAX_LENGTH} characters.",
        )


def _post(entry: _Entry) -> CreditTransaction:
    """Write the entry, or settle why it cannot be written.

    No lookup of the key comes first: the unique constraint decides, and a refused write (a
    duplicate key, or too little credit because a concurrent call with this key got there
    first) is then looked up and answered as a replay.
    """
    _check_key(entry.idempotency_key)
    reverses = entry.fields.get("reverses")
    if reverses is not None:
        existing = _entry_with_key(entry.idempotency_key)
        if existing is not None:
            return _replay(existing, entry)
        if CreditTransaction.objects.filter(reverses=reverses).exists():
            raise AlreadyReversed(entry_id=reverses.pk)
    try:
        db = connections[DEFAULT_DB_ALIAS]
        if db.vendor == "postgresql" and not entry.allow_partial:
            if _combinable(db, entry):
                return _finish(db, entry, _COMBINER.write(entry))
            return _write_in_one_statement(entry, db)
        with transaction.atomic():
            return _write(entry)
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


# The entry's columns that a caller may leave empty, with the SQL type of their parameter and
# the literal written when they are empty. Each combination of filled columns ("shape") gets
# its own statement, so a plain spend sends 6 parameters instead of 17.
_OPTIONAL_COLUMNS = {
    "source": ("varchar", "''"),
    "description": ("varchar", "''"),
    "stripe_event_id": ("varchar", "NULL"),
    "legacy_transaction_id": ("varchar", "NULL"),
    "migrated_from": ("varchar", "''"),
    "metadata": ("jsonb", "'{}'::jsonb"),
    "actor_id": ("bigint", "NULL"),
    "reason": ("text", "''"),
    "reverses_id": ("bigint", "NULL"),
}
_ONE_STATEMENT_SQL: dict[tuple[str, ...], str] = {}
_ENTRY_ATTNAMES = [field.attname for field in CreditTransaction._meta.concrete_fields]


def _one_statement_sql(filled: tuple[str, ...]) -> str:
    """The statement for entries whose optional columns `filled` hold a value."""
    account_table = connection.ops.quote_name(CreditAccount._meta.db_table)
    entry_table = connection.ops.quote_name(CreditTransaction._meta.db_table)
    columns = ", ".join(_OPTIONAL_COLUMNS)
    values = ", ".join(
        f"%({name})s::{sql_type}" if name in filled else empty
        for name, (sql_type, empty) in _OPTIONAL_COLUMNS.items()
    )
    # amount = earned - spent always (the account's CHECK balance = earned - spent says so),
    # so the amount is not sent a third time.
    return f"""
        WITH moved AS (
            UPDATE {account_table}
            SET balance = balance + %(earned)s::numeric - %(spent)s::numeric,
                total_earned = total_earned + %(earned)s::numeric,
                total_spent = total_spent + %(spent)s::numeric,
                updated_at = %(created_at)s::timestamptz
            WHERE id = %(account_id)s::bigint
              AND balance + %(earned)s::numeric - %(spent)s::numeric >= 0
              AND balance + %(earned)s::numeric - %(spent)s::numeric <= {MAX_AMOUNT}
              AND total_earned + %(earned)s::numeric <= {MAX_AMOUNT}
              AND total_spent + %(spent)s::numeric <= {MAX_AMOUNT}
            RETURNING id, balance, total_earned, total_spent, updated_at
        ), inserted AS (
            INSERT INTO {entry_table} (
                account_id, kind, amount, idempotency_key, created_at, {columns},
                balance_before, balance_after
            )
            SELECT moved.id, %(kind)s::varchar, %(earned)s::numeric - %(spent)s::numeric,
                   %(idempotency_key)s::varchar, moved.updated_at, {values},
                   moved.balance - %(earned)s::numeric + %(spent)s::numeric, moved.balance
            FROM moved
            RETURNING id
        )
        SELECT inserted.id, moved.balance, moved.total_earned, moved.total_spent
        FROM inserted, moved
    """


def _hot_cursor(db) -> psycopg.Cursor:
    """The connection's cursor for the hot statement: a server-side binding one.

    Django's own cursors bind on the client, so PostgreSQL would parse and plan a literal
    query on every spend; this one sends parameters apart and, with the connection's
    `prepare_threshold` set (project settings), prepares each statement once per connection.
    It is reused rather than made per call, which saves a few microseconds of every spend. It
    lives on Django's connection wrapper, so it goes with the psycopg connection it belongs to.
    """
    raw = db.connection
    cursor = getattr(db, "_credits_hot_cursor", None)
    if cursor is None or cursor.closed or cursor.connection is not raw:
        cursor = db._credits_hot_cursor = psycopg.Cursor(raw)
    return cursor


def _write_in_one_statement(entry: _Entry, db: BaseDatabaseWrapper | None = None):
    """PostgreSQL: move the balance and insert the entry in one statement.

    One statement is atomic by itself, and its UPDATE holds the row lock only for that
    statement and the commit, so a hot account serves as many writers as the disk allows.
    Outside a transaction it runs in autocommit (an atomic block around it would add two round
    trips and nothing else); inside one, in a savepoint, so that a refusal leaves the caller's
    transaction usable. This is the hot path of every spend, so it stays lean: no ORM query,
    one lookup of the connection, parameters only for the columns that hold a value, the
    returned entry built from the values it wrote.
    """
    if db is None:
        db = connections[DEFAULT_DB_ALIAS]
    row_values = _row_values(entry, timezone.now())
    metadata = row_values["metadata"]
    params = {
        "account_id": row_values["account_id"],
        "kind": row_values["kind"],
        "earned": entry.earned_delta,
        "spent": entry.spent_delta,
        "idempotency_key": entry.idempotency_key,
        "created_at": row_values["created_at"],
    }
    filled = []
    for name in _OPTIONAL_COLUMNS:
        value = row_values[name]
        if value:
            filled.append(name)
            params[name] = value
    if metadata:
        params["metadata"] = json.dumps(metadata, cls=DjangoJSONEncoder)
    shape = tuple(filled)
    sql = _ONE_STATEMENT_SQL.get(shape)
    if sql is None:
        sql = _ONE_STATEMENT_SQL[shape] = _one_statement_sql(shape)
    with transaction.atomic(using=db.alias) if db.in_atomic_block else nullcontext():
        db.ensure_connection()
        # Errors still come out as Django's (IntegrityError), through wrap_database_errors.
        with db.wrap_database_errors:
            cursor = _hot_cursor(db)
            cursor.execute(sql, params, prepare=True)
            row = cursor.fetchone()
    if row is None:
        _refuse(entry)
    return _written(db, entry, row_values, *row)


def _written(db, entry: _Entry, row_values: dict, entry_id, balance_after, earned, spent):
    """The entry as written (built from its values, not read back); the caller's account
    instance takes the totals the write returned."""
    row_values["id"] = entry_id
    row_values["balance_before"] = balance_after - entry.amount
    row_values["balance_after"] = balance_after
    written = CreditTransaction.from_db(
        db.alias, _ENTRY_ATTNAMES, [row_values[name] for name in _ENTRY_ATTNAMES]
    )
    written.account = entry.account
    entry.account.balance = balance_after
    entry.account.total_earned = earned
    entry.account.total_spent = spent
    return written


def _row_values(entry: _Entry, created_at) -> dict:
    """The entry's column values by attname, as the write will store them (the id and the
    balances are filled in from what it returns)."""
    fields = entry.fields
    actor, reverses = fields.get("actor"), fields.get("reverses")
    return {
        "id": None,
        "account_id": entry.account.pk,
        "kind": str(entry.kind),
        "amount": entry.amount,
        "balance_before": None,
        "balance_after": None,
        "source": fields.get("source", ""),
        "description": fields.get("description", ""),
        "idempotency_key": entry.idempotency_key,
        "stripe_event_id": fields.get("stripe_event_id"),
        "legacy_transaction_id": fields.get("legacy_transaction_id"),
        "migrated_from": fields.get("migrated_from", ""),
        "metadata": fields.get("metadata") or {},
        "actor_id": actor.pk if actor is not None else None,
        "reason": fields.get("reason", ""),
        "reverses_id": reverses.pk if reverses is not None else None,
        "created_at": created_at,
    }


def _refuse(entry: _Entry):
    """Why the conditional write moved nothing: too little credit, or a balance or total that
    would go beyond the columns (numeric(14, 2)), which the write refuses before the database
    would raise (PostgreSQL) or store an out-of-range value (SQLite)."""
    balance, earned, spent = CreditAccount.objects.values_list(
        "balance", "total_earned", "total_spent"
    ).get(pk=entry.account.pk)
    if (
        balance + entry.amount > MAX_AMOUNT
        or earned + entry.earned_delta > MAX_AMOUNT
        or spent + entry.spent_delta > MAX_AMOUNT
    ):
        raise BeyondColumns(
            f"The account's balance and totals stay at most {MAX_AMOUNT}; this entry would "
            "take them beyond it.",
            balance=str(balance),
            amount=str(entry.amount),
        )
    raise InsufficientCredits(balance=str(balance), requested=str(-entry.amount))


class BeyondColumns(InvalidAmount):
    """invalid_amount: the entry would take the balance or a total beyond the columns."""


# --- entries of several threads in one call (see _combining) --------------------------------

# Entries whose other optional columns are empty can share a call: what credit_spend and
# credit_grant write. The rest (staff entries, reversals, Stripe events) are written alone.
_COMBINABLE_FIELDS = frozenset({"source", "description", "metadata"})
# A shared call whose entries name distinct accounts (spends of different users at the same
# moment, the common case), written as a set in one statement: its accounts locked in
# ascending id order (after the lock wait is set for this transaction), one UPDATE moving every
# balance that stays >= 0, one INSERT of their entries, and a row per entry in input order.
# Were two entries ever to name one account, no account would be locked and nothing written
# (the UPDATE ... FROM would move the account once for both). If the statement fails (a
# duplicate key, a broken constraint, an account locked elsewhere for longer than the lock
# wait), nothing of it is kept and the entries go through credits_post_entries one at a time.
_SET_SQL = """
    WITH entries AS MATERIALIZED (
        SELECT entry.*, set_config('lock_timeout', %(lock_wait)s::text, true) AS lock_wait
        FROM ROWS FROM (json_to_recordset(%(entries)s::json) AS (
            account bigint, kind varchar, earned numeric, spent numeric, key varchar,
            source varchar, description varchar, metadata jsonb
        )) WITH ORDINALITY AS entry(account, kind, earned, spent, key, source, description,
                                    metadata, ord)
    ), locked AS MATERIALIZED (
        SELECT account.id
        FROM credits_creditaccount AS account
        WHERE account.id = ANY (ARRAY(SELECT entries.account FROM entries))
          AND (SELECT count(DISTINCT entries.account) = count(*) FROM entries)
        ORDER BY account.id
        FOR NO KEY UPDATE
    ), moved AS (
        UPDATE credits_creditaccount AS account
        SET balance = account.balance + entries.earned - entries.spent,
            total_earned = account.total_earned + entries.earned,
            total_spent = account.total_spent + entries.spent,
            updated_at = %(created_at)s::timestamptz
        FROM entries JOIN locked ON locked.id = entries.account
        WHERE account.id = entries.account
          AND account.balance + entries.earned - entries.spent >= 0
          AND account.balance + entries.earned - entries.spent <= %(max_amount)s::numeric
          AND account.total_earned + entries.earned <= %(max_amount)s::numeric
          AND account.total_spent + entries.spent <= %(max_amount)s::numeric
        RETURNING account.id, account.balance, account.total_earned, account.total_spent
    ), inserted AS (
        INSERT INTO credits_credittransaction (
            account_id, kind, amount, idempotency_key, created_at, source, description,
            stripe_event_id, legacy_transaction_id, migrated_from, metadata, actor_id, reason,
            reverses_id, balance_before, balance_after
        )
        SELECT entries.account, entries.kind, entries.earned - entries.spent, entries.key,
               %(created_at)s::timestamptz, entries.source, entries.description, NULL, NULL,
               '', entries.metadata, NULL, '', NULL,
               moved.balance - entries.earned + entries.spent, moved.balance
        FROM moved JOIN entries ON entries.account = moved.id
        RETURNING id, account_id
    )
    SELECT inserted.id, moved.balance, moved.total_earned, moved.total_spent,
           NULL::text, NULL::text
    FROM entries
    LEFT JOIN moved ON moved.id = entries.account
    LEFT JOIN inserted ON inserted.account_id = entries.account
    ORDER BY entries.ord
"""
# The columns' maximum, as a literal (a constant of the statement, not a parameter).
_SET_SQL = _SET_SQL.replace("%(max_amount)s", str(MAX_AMOUNT))
# Any shared call, one entry at a time (credits/sql/post_entries_json.sql).
_ONE_BY_ONE_SQL = (
    "SELECT o_entry, o_balance, o_earned, o_spent, o_sqlstate, o_message"
    " FROM credits_post_entries(%(entries)s::json, %(created_at)s::timestamptz,"
    " %(lock_wait)s::text)"
)
# How long an entry in a shared call waits for its account's lock before it is handed back
# to its caller to write alone (a normal call holds its locks for a millisecond or two).
_SHARED_LOCK_WAIT = "20ms"
_LOCK_NOT_AVAILABLE = "55P03"
_NUMERIC_OUT_OF_RANGE = "22003"


class _Stored(NamedTuple):
    """What a shared call wrote for one entry; its caller builds its entry from it."""

    created_at: datetime
    entry_id: int
    balance_after: Decimal
    total_earned: Decimal
    total_spent: Decimal


def _combinable(db, entry: _Entry) -> bool:
    return (
        settings.CREDITS_COMBINE_WRITES
        and not db.in_atomic_block
        and not any(value for name, value in entry.fields.items() if name not in _COMBINABLE_FIELDS)
    )


def _finish(db, entry: _Entry, outcome) -> CreditTransaction:
    """The caller's entry from what the combiner gave back: an entry it wrote alone, what a
    shared call stored, or None for too little credit. Built in the caller's thread, so the
    thread that led the call is free for the next one sooner."""
    if outcome is None:
        _refuse(entry)
    if isinstance(outcome, _Stored):
        return _written(db, entry, _row_values(entry, outcome.created_at), *outcome[1:])
    return outcome


def _write_many(entries: list[_Entry]) -> list:
    """Write these entries in one call: per entry, what was stored (`_Stored`), None for too
    little credit, WRITE_ALONE when its account stayed locked by another transaction, or the
    database error that refused it. Entries that name distinct accounts go as one set
    (_SET_SQL); the rest, and a set that failed, one at a time (credits_post_entries). The
    accounts are locked in ascending order (entries of one account keep theirs), as every
    batch writer here locks them, so two calls never deadlock."""
    db = connections[DEFAULT_DB_ALIAS]
    order = sorted(range(len(entries)), key=lambda index: entries[index].account.pk)
    now = timezone.now()
    params = {
        "entries": json.dumps(
            [_shared_values(entries[index]) for index in order], cls=DjangoJSONEncoder
        ),
        "created_at": now,
        "lock_wait": _SHARED_LOCK_WAIT,
    }
    distinct = len({entry.account.pk for entry in entries}) == len(entries)
    db.ensure_connection()
    with db.wrap_database_errors:
        cursor = _hot_cursor(db)
        rows = _write_as_set(cursor, params) if distinct else None
        if rows is None:
            cursor.execute(_ONE_BY_ONE_SQL, params, prepare=True)
            rows = cursor.fetchall()
    outcomes: list = [None] * len(entries)
    for index, row in zip(order, rows, strict=True):
        entry_id, balance_after, earned, spent, sqlstate, message = row
        if sqlstate == _LOCK_NOT_AVAILABLE:
            outcomes[index] = WRITE_ALONE
        elif sqlstate == _NUMERIC_OUT_OF_RANGE:
            outcomes[index] = None  # beyond the columns: _refuse says so
        elif sqlstate:
            outcomes[index] = _database_error(db, sqlstate, message)
        elif entry_id is not None:
            outcomes[index] = _Stored(now, entry_id, balance_after, earned, spent)
    return outcomes


def _write_as_set(cursor: psycopg.Cursor, params: dict) -> list | None:
    """The rows of _SET_SQL, or None when it failed and wrote nothing (the connection still
    usable: autocommit rolled the statement back) so the entries go one at a time."""
    try:
        cursor.execute(_SET_SQL, params, prepare=True)
        return cursor.fetchall()
    except psycopg.DatabaseError:
        connection = cursor.connection
        if connection.closed or connection.broken:
            raise
        return None


def _shared_values(entry: _Entry) -> dict:
    """One entry of a shared call, as _SET_SQL and credits_post_entries read it; amounts as
    strings, so they stay exact."""
    fields = entry.fields
    return {
        "account": entry.account.pk,
        "kind": str(entry.kind),
        "earned": str(entry.earned_delta),
        "spent": str(entry.spent_delta),
        "key": entry.idempotency_key,
        "source": fields.get("source", ""),
        "description": fields.get("description", ""),
        "metadata": fields.get("metadata") or {},
    }


def _database_error(db, sqlstate: str, message: str) -> Exception:
    """Django's exception for an error the call reported for one entry (IntegrityError for
    a duplicate key or a broken constraint), as if that entry's own statement had raised it."""
    try:
        error_class = psycopg.errors.lookup(sqlstate)
    except KeyError:
        error_class = psycopg.DatabaseError
    try:
        with db.wrap_database_errors:
            raise error_class(message)
    except Exception as wrapped:
        return wrapped
    raise AssertionError("unreachable")  # pragma: no cover


_COMBINER = Combiner(
    _write_in_one_statement,
    _write_many,
    max_calls=lambda: settings.CREDITS_COMBINE_WRITES_CALLS,
)


def _write(entry: _Entry) -> CreditTransaction:
    """Move the balance and insert the entry; relies on the caller's transaction."""
    amount, earned_delta, spent_delta = entry.amount, entry.earned_delta, entry.spent_delta
    metadata = dict(entry.fields.get("metadata") or {})
    if entry.allow_partial and amount < 0:
        # Lock first so the amount left cannot shrink between reading it and taking it.
        held = (
            CreditAccount.objects.select_for_update()
            .values_list("balance", flat=True)
            .get(pk=entry.account.pk)
        )
        if 0 < held < -amount:
            # Only refunds and reversals of credits received are partial: all of it is earned.
            amount = earned_delta = -held
            metadata["requested_amount"] = str(entry.requested)
            metadata["shortfall"] = str(-entry.requested - held)
    moved = _move_balance(entry.account.pk, amount, earned_delta, spent_delta)
    if moved is None:
        _refuse(entry)
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
    entry.account.balance = balance_after
    entry.account.total_earned = total_earned
    entry.account.total_spent = total_spent
    return written


def _move_balance(
    account_id: int, amount: Decimal, earned_delta: Decimal, spent_delta: Decimal
) -> tuple[Decimal, Decimal, Decimal] | None:
    """Apply a change unless it would overdraw; return the new totals, or None if refused.

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
            " WHERE id = %s AND balance + %s >= 0 AND balance + %s <= CAST(%s AS NUMERIC)"
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


def _balance_of(account_id: int) -> Decimal:
    return CreditAccount.objects.values_list("balance", flat=True).get(pk=account_id)


def _entry_with_key(key: str) -> CreditTransaction | None:
    return CreditTransaction.objects.filter(idempotency_key=key).order_by().first()


def _replay(existing: CreditTransaction, entry: _Entry) -> CreditTransaction:
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
