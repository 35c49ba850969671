"""PostgreSQL's fast write path: each entry in one round trip, on a server-side binding
cursor that prepares its statement once per connection.

- Credits added: the conditional UPDATE of the account, the INSERT of the entry and of its lot
  in one statement.
- Credits removed in full (spends, refunds, adjustments down, expiries): one call of the
  function credits_post_debit (credits migration 0011), which updates the account, inserts
  the entry and draws its lots; a function because the lots must be read after the account's
  row lock is granted, which the sub-statements of one statement cannot do (they share its
  snapshot), and a function's statements can.

One call is atomic by itself, and it holds the row lock only for the call and the commit, so a
hot account serves as many writers as the disk allows. Reversals and partial refunds go by the
portable path (it reads what is left under the row lock first), and every entry does when
CREDITS_POSTGRESQL_FAST_PATH is off.
"""

import json
from contextlib import nullcontext
from decimal import Decimal

import psycopg
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

from credits.models import CreditAccount, CreditHold, CreditLot, CreditTransaction
from credits.services.posting import combining, lots
from credits.services.posting.entry import MAX_AMOUNT, Entry, refuse

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
_STATEMENTS: dict[tuple[str, ...], str] = {}
_ENTRY_ATTNAMES = [field.attname for field in CreditTransaction._meta.concrete_fields]


# The columns a debit may fill; a debit that fills another goes by the portable path.
_DEBIT_COLUMNS = {"source", "description", "stripe_event_id", "metadata", "actor", "reason"}


def takes(entry: Entry) -> bool:
    """Whether this path can write the entry: credits added (a new lot) or a debit in full
    (drawn from lots by a function), not a reversal or a partial refund."""
    if entry.fields.get("reverses") is not None or entry.allow_partial:
        return False
    if entry.amount > 0:
        return True
    return all(name in _DEBIT_COLUMNS for name, value in entry.fields.items() if value)


def write(entry: Entry, db: BaseDatabaseWrapper) -> CreditTransaction:
    """Write the entry in one round trip, or move nothing and raise why."""
    if entry.amount > 0:
        return _write_credit(entry, db)
    return _write_debit(entry, db)


_RULE_SQL: dict[tuple, str] = {}


def with_rule(template: str) -> str:
    """`template` with CREDITS_DRAW_DOWN_RANKS written in as the two array literals the SQL
    functions take (one statement per rule, so each call sends no arrays to encode)."""
    ranks = settings.CREDITS_DRAW_DOWN_RANKS
    cache_key = (template, tuple(ranks.items()))
    sql = _RULE_SQL.get(cache_key)
    if sql is None:
        for category in ranks:
            if not str(category).isidentifier():
                raise ValueError(f"CREDITS_DRAW_DOWN_RANKS: {category!r} is not a category name")
        categories = "{" + ",".join(str(category) for category in ranks) + "}"
        values = "{" + ",".join(str(int(value)) for value in ranks.values()) + "}"
        sql = _RULE_SQL[cache_key] = template.replace(
            "%(categories)s::varchar[]", f"'{categories}'::varchar[]"
        ).replace("%(ranks)s::integer[]", f"'{values}'::integer[]")
    return sql


_DEBIT_SQL = (
    "SELECT * FROM credits_post_debit("
    "%(account_id)s::bigint, %(kind)s::varchar, %(earned)s::numeric, %(spent)s::numeric,"
    " %(idempotency_key)s::varchar, %(created_at)s::timestamptz, %(source)s::varchar,"
    " %(description)s::varchar, %(stripe_event_id)s::varchar, %(metadata)s::jsonb,"
    " %(actor_id)s::bigint, %(reason)s::text, %(first_lot)s::bigint,"
    " %(categories)s::varchar[], %(ranks)s::integer[], %(max)s::numeric)"
)


def _write_debit(entry: Entry, db: BaseDatabaseWrapper) -> CreditTransaction:
    """A debit through credits_post_debit (credits migration 0011): the account's conditional
    UPDATE, the entry's INSERT and the draw from its lots in one call; or, when other threads
    of this process are writing debits of the same account at that moment, together with
    theirs in one call of credits_post_debits (migration 0015; posting.combining)."""
    row_values = _row_values(entry, timezone.now())
    params = debit_params(entry, row_values)
    if combining.applies(db, params):
        row = combining.write(
            db,
            entry.account.pk,
            params,
            alone=lambda one: _execute(db, with_rule(_DEBIT_SQL), one),
            together=lambda many: write_debits(db, many),
        )
    else:
        row = _execute(db, with_rule(_DEBIT_SQL), params)
    if row is None or row[0] is None:
        refuse(entry)
    return _written(db, entry, row_values, *row)


def debit_params(entry: Entry, row_values: dict) -> dict:
    """The parameters of credits_post_debit for this debit."""
    return {
        "account_id": row_values["account_id"],
        "kind": row_values["kind"],
        "earned": entry.earned_delta,
        "spent": entry.spent_delta,
        "idempotency_key": entry.idempotency_key,
        "created_at": row_values["created_at"],
        "source": row_values["source"],
        "description": row_values["description"],
        "stripe_event_id": row_values["stripe_event_id"],
        "metadata": (
            json.dumps(row_values["metadata"], cls=DjangoJSONEncoder)
            if row_values["metadata"]
            else "{}"
        ),
        "actor_id": row_values["actor_id"],
        "reason": row_values["reason"],
        "first_lot": entry.first_lot,
        "max": MAX_AMOUNT,
    }


def write_debits(db: BaseDatabaseWrapper, arrays: dict) -> list[tuple]:
    """One call of credits_post_debits: `arrays` holds each parameter of credits_post_debit
    as the list of the debits' values (the account's id and the bound once); its rows."""
    return _execute(db, with_rule(_DEBITS_SQL), arrays, fetch_all=True)


# Several debits of one account in one call (credits migration 0015; posting.combining).
_DEBITS_SQL = (
    "SELECT * FROM credits_post_debits("
    "%(account_id)s::bigint, %(kind)s::varchar[], %(earned)s::numeric[], %(spent)s::numeric[],"
    " %(idempotency_key)s::varchar[], %(created_at)s::timestamptz[], %(source)s::varchar[],"
    " %(description)s::varchar[], %(stripe_event_id)s::varchar[], %(metadata)s::jsonb[],"
    " %(actor_id)s::bigint[], %(reason)s::text[], %(categories)s::varchar[],"
    " %(ranks)s::integer[], %(max)s::numeric)"
)


def _execute(db: BaseDatabaseWrapper, sql: str, params: dict, *, fetch_all: bool = False):
    """Run one prepared statement on the hot cursor (in a savepoint inside a transaction, so a
    refusal leaves the caller's usable) and return its row (or all its rows)."""
    with transaction.atomic(using=db.alias) if db.in_atomic_block else nullcontext():
        db.ensure_connection()
        # Errors still come out as Django's (IntegrityError), through wrap_database_errors.
        with db.wrap_database_errors:
            cursor = _hot_cursor(db)
            cursor.execute(sql, params, prepare=True)
            return cursor.fetchall() if fetch_all else cursor.fetchone()


def _write_credit(entry: Entry, db: BaseDatabaseWrapper) -> CreditTransaction:
    """Move the balance, insert the entry and its lot in one statement, or raise why not.

    Outside a transaction it runs in autocommit (an atomic block around it would add two round
    trips and nothing else); inside one, in a savepoint, so that a refusal leaves the caller's
    transaction usable. This is the hot path of every spend, so it stays lean: no ORM query,
    one lookup of the connection, parameters only for the columns that hold a value, the
    returned entry built from the values it wrote.
    """
    row_values = _row_values(entry, timezone.now())
    terms = entry.lot_terms or lots.LotTerms()
    metadata = row_values["metadata"]
    params = {
        "account_id": row_values["account_id"],
        "kind": row_values["kind"],
        "earned": entry.earned_delta,
        "spent": entry.spent_delta,
        "idempotency_key": entry.idempotency_key,
        "created_at": row_values["created_at"],
        "lot_category": terms.category or lots.category_for(entry.kind, row_values["source"]),
        "lot_priority": terms.priority,
        "lot_expires_at": terms.expires_at,
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
    sql = _STATEMENTS.get(shape)
    if sql is None:
        sql = _STATEMENTS[shape] = _statement(db, shape)
    row = _execute(db, sql, params)
    if row is None:
        refuse(entry)
    return _written(db, entry, row_values, *row)


def _statement(db: BaseDatabaseWrapper, filled: tuple[str, ...]) -> str:
    """The statement for entries whose optional columns `filled` hold a value."""
    account_table = db.ops.quote_name(CreditAccount._meta.db_table)
    entry_table = db.ops.quote_name(CreditTransaction._meta.db_table)
    lot_table = db.ops.quote_name(CreditLot._meta.db_table)
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
            RETURNING id, amount, created_at
        ), lot AS (
            INSERT INTO {lot_table} (
                account_id, category, amount, remaining, priority, effective_at, expires_at,
                rolled_over, entry_id
            )
            SELECT moved.id, %(lot_category)s::varchar, inserted.amount, inserted.amount,
                   %(lot_priority)s::smallint, inserted.created_at,
                   %(lot_expires_at)s::timestamptz, false, inserted.id
            FROM inserted, moved
        )
        SELECT inserted.id, moved.balance, moved.total_earned, moved.total_spent
        FROM inserted, moved
    """


def _hot_cursor(db: BaseDatabaseWrapper) -> psycopg.Cursor:
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


def _written(db, entry: Entry, row_values: dict, entry_id, balance_after, earned, spent):
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


def _row_values(entry: Entry, created_at) -> dict:
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


# --- holds ----------------------------------------------------------------------------------

_HOLD_SQL = f"""
    WITH reserved AS (
        UPDATE {CreditAccount._meta.db_table}
        SET held = held + %(amount)s::numeric, updated_at = %(created_at)s::timestamptz
        WHERE id = %(account_id)s::bigint AND balance - held >= %(amount)s::numeric
        RETURNING id
    )
    INSERT INTO {CreditHold._meta.db_table} (
        account_id, amount, captured, status, expires_at, idempotency_key, description,
        entry_id, released_by_id, reason, created_at, resolved_at
    )
    SELECT reserved.id, %(amount)s::numeric, 0, 'active', %(expires_at)s::timestamptz,
           %(idempotency_key)s::varchar, %(description)s::varchar, NULL, NULL, '',
           %(created_at)s::timestamptz, NULL
    FROM reserved
    RETURNING id
"""

_CAPTURE_SQL = (
    "SELECT * FROM credits_capture_hold(%(hold_id)s::bigint, %(amount)s::numeric,"
    " %(idempotency_key)s::varchar, %(created_at)s::timestamptz, %(source)s::varchar,"
    " %(categories)s::varchar[], %(ranks)s::integer[], %(max)s::numeric)"
)


def hold_create(db, *, account, amount, idempotency_key, expires_at, description, created_at):
    """Reserve and insert a hold in one statement; its id, or None when the account's
    available credits are fewer (nothing moved). A duplicate key raises IntegrityError."""
    row = _execute(
        db,
        _HOLD_SQL,
        {
            "account_id": account.pk,
            "amount": amount,
            "expires_at": expires_at,
            "idempotency_key": idempotency_key,
            "description": description,
            "created_at": created_at,
        },
    )
    return None if row is None else row[0]


def hold_capture(db, *, hold, amount, idempotency_key, source):
    """Capture an active hold in one call of credits_capture_hold (credits migration 0011):
    the spend entry as written, or None when the hold was not capturable as asked (the caller
    then settles why under the lock)."""
    created_at = timezone.now()
    row = _execute(
        db,
        with_rule(_CAPTURE_SQL),
        {
            "hold_id": hold.pk,
            "amount": amount,
            "idempotency_key": idempotency_key,
            "created_at": created_at,
            "source": source,
            "max": MAX_AMOUNT,
        },
    )
    outcome, entry_id, captured, balance, earned, spent, held = row
    if outcome != "captured":
        return None
    # The spend as the function wrote it, built as every written entry is (not read back).
    spend = Entry(
        account=hold.account,
        kind="spend",
        amount=-captured,
        requested=-captured,
        idempotency_key=idempotency_key,
        earned_delta=Decimal(0),
        spent_delta=captured,
        fields={
            "source": source,
            "description": hold.description,
            "metadata": {"hold_id": hold.pk},
        },
    )
    entry = _written(db, spend, _row_values(spend, created_at), entry_id, balance, earned, spent)
    hold.account.held = held
    hold.status, hold.captured, hold.entry_id, hold.resolved_at = (
        "captured",
        captured,
        entry_id,
        created_at,
    )
    return entry
