"""The only writers of the ledger.

Every balance change is one conditional `UPDATE ... WHERE balance + amount >= 0 RETURNING`
on the account row followed by one INSERT of the entry, inside `transaction.atomic`. The UPDATE
takes the row lock, so concurrent writers queue on it, never lose an update and never overdraw;
it is also the whole check, so the lock is held for two statements. Every call carries an
idempotency key under a unique constraint: a replay returns the original entry and changes
nothing, the same key for a different operation raises `IdempotencyConflict`. Races between two
callers with one key are settled by that constraint, not by the pre-check.

These services are called on their own and from inside other units of work (a user's migration,
a Stripe webhook), so they use `atomic()` (a savepoint when nested) rather than `durable=True`.
Refunds give money back to a customer, so they remove credits (a negative entry).
"""

import json
from contextlib import nullcontext
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import psycopg
from django.contrib.auth.models import AbstractBaseUser
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, connections, transaction
from django.utils import timezone

from credits.exceptions import (
    AlreadyReversed,
    DuplicateReference,
    IdempotencyConflict,
    InsufficientCredits,
    InvalidAmount,
    NotReversible,
    ReasonRequired,
)
from credits.models import (
    AMOUNT_DIGITS,
    AMOUNT_PLACES,
    CENT,
    CREDITING_KINDS,
    CreditAccount,
    CreditTransaction,
    EntryKind,
)

MAX_AMOUNT = Decimal(10) ** (AMOUNT_DIGITS - AMOUNT_PLACES) - CENT
IDEMPOTENCY_KEY_MAX_LENGTH = CreditTransaction._meta.get_field("idempotency_key").max_length


def credit_account_open(*, user: AbstractBaseUser) -> CreditAccount:
    """Open the user's credit account, or return the one they have."""
    account, _ = CreditAccount.objects.get_or_create(user=user)
    return account


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
    amount = _positive_amount(amount)
    return _post(
        _Entry(
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
    amount = _positive_amount(amount)
    return _post(
        _Entry(
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
    amount = _positive_amount(amount)
    return _post(
        _Entry(
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
    metadata: dict[str, Any] | None = None,
) -> CreditTransaction:
    """Correct a balance by a signed amount, on a staff member's authority."""
    if actor is None or not reason.strip():
        raise ReasonRequired()
    amount = _signed_amount(amount)
    return _post(
        _Entry(
            account=account,
            kind=EntryKind.ADJUSTMENT,
            amount=amount,
            requested=amount,
            idempotency_key=idempotency_key,
            earned_delta=amount,
            spent_delta=Decimal(0),
            fields=dict(actor=actor, reason=reason, source="staff", metadata=metadata or {}),
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
    return _post(
        _Entry(
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


# --- internals ----------------------------------------------------------------------------


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
        if connection.vendor == "postgresql" and not entry.allow_partial:
            return _write_in_one_statement(entry)
        with transaction.atomic():
            return _write(entry)
    except InsufficientCredits:
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


_ENTRY_COLUMNS = (
    ("account_id", "bigint"),
    ("kind", "varchar"),
    ("amount", "numeric"),
    ("source", "varchar"),
    ("description", "varchar"),
    ("idempotency_key", "varchar"),
    ("stripe_event_id", "varchar"),
    ("legacy_transaction_id", "varchar"),
    ("migrated_from", "varchar"),
    ("metadata", "jsonb"),
    ("actor_id", "bigint"),
    ("reason", "text"),
    ("reverses_id", "bigint"),
    ("created_at", "timestamptz"),
)


def _one_statement_sql() -> str:
    account_table = connection.ops.quote_name(CreditAccount._meta.db_table)
    entry_table = connection.ops.quote_name(CreditTransaction._meta.db_table)
    columns = ", ".join(name for name, _ in _ENTRY_COLUMNS)
    values = ", ".join(f"%({name})s::{sql_type}" for name, sql_type in _ENTRY_COLUMNS)
    return f"""
        WITH moved AS (
            UPDATE {account_table}
            SET balance = balance + %(amount)s::numeric,
                total_earned = total_earned + %(earned_delta)s::numeric,
                total_spent = total_spent + %(spent_delta)s::numeric,
                updated_at = %(created_at)s::timestamptz
            WHERE id = %(account_id)s::bigint AND balance + %(amount)s::numeric >= 0
            RETURNING balance, total_earned, total_spent
        ), inserted AS (
            INSERT INTO {entry_table} ({columns}, balance_before, balance_after)
            SELECT {values}, moved.balance - %(amount)s::numeric, moved.balance FROM moved
            RETURNING id
        )
        SELECT inserted.id, moved.balance, moved.total_earned, moved.total_spent
        FROM inserted, moved
    """


_ONE_STATEMENT_SQL: str | None = None
_ENTRY_ATTNAMES = [field.attname for field in CreditTransaction._meta.concrete_fields]


def _write_in_one_statement(entry: _Entry) -> CreditTransaction:
    """PostgreSQL: move the balance and insert the entry in one statement.

    One statement is atomic by itself, and its UPDATE holds the row lock only for that
    statement and the commit, so a hot account serves as many writers as the disk allows.
    Outside a transaction it runs in autocommit (an atomic block around it would add two round
    trips and nothing else); inside one, in a savepoint, so that a refusal leaves the caller's
    transaction usable. This is the hot path of every spend, so it stays lean: no ORM query,
    one lookup of the connection, the returned entry built from the values it wrote.
    """
    global _ONE_STATEMENT_SQL
    if _ONE_STATEMENT_SQL is None:
        _ONE_STATEMENT_SQL = _one_statement_sql()
    db = connections[DEFAULT_DB_ALIAS]
    fields = entry.fields
    actor, reverses = fields.get("actor"), fields.get("reverses")
    metadata = fields.get("metadata") or {}
    row_values = {
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
        "metadata": metadata,
        "actor_id": actor.pk if actor is not None else None,
        "reason": fields.get("reason", ""),
        "reverses_id": reverses.pk if reverses is not None else None,
        "created_at": timezone.now(),
    }
    params = {
        **row_values,
        "metadata": json.dumps(metadata, cls=DjangoJSONEncoder) if metadata else "{}",
        "earned_delta": entry.earned_delta,
        "spent_delta": entry.spent_delta,
    }
    with transaction.atomic(using=db.alias) if db.in_atomic_block else nullcontext():
        db.ensure_connection()
        # A server-side binding cursor, so PostgreSQL prepares this hot statement once per
        # connection instead of parsing and planning a literal query on every spend; Django's
        # own cursors bind on the client. Errors still come out as Django's (IntegrityError).
        with db.wrap_database_errors, psycopg.Cursor(db.connection) as cursor:
            cursor.execute(_ONE_STATEMENT_SQL, params, prepare=True)
            row = cursor.fetchone()
    if row is None:
        raise InsufficientCredits(
            balance=str(_balance_of(entry.account.pk)), requested=str(-entry.amount)
        )
    row_values["id"], balance_after, total_earned, total_spent = row
    row_values["balance_before"] = balance_after - entry.amount
    row_values["balance_after"] = balance_after
    written = CreditTransaction.from_db(
        db.alias, _ENTRY_ATTNAMES, [row_values[name] for name in _ENTRY_ATTNAMES]
    )
    written.account = entry.account
    entry.account.balance = balance_after
    entry.account.total_earned = total_earned
    entry.account.total_spent = total_spent
    return written


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
        raise InsufficientCredits(
            balance=str(_balance_of(entry.account.pk)), requested=str(-entry.amount)
        )
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
            " WHERE id = %s AND balance + %s >= 0"
            " RETURNING balance, total_earned, total_spent",
            [amount, earned_delta, spent_delta, timezone.now(), account_id, amount],
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


# --- many entries at once (the migration) -------------------------------------------------


@dataclass(frozen=True)
class BatchEntry:
    """One entry of `credit_post_batch`: a crediting kind with a positive amount, or history."""

    account_id: int
    kind: str
    amount: Decimal
    idempotency_key: str
    source: str = ""
    description: str = ""
    migrated_from: str = ""
    legacy_transaction_id: str | None = None
    metadata: dict[str, Any] | None = None


def credit_post_batch(*, entries: list[BatchEntry]) -> int:
    """Write many grants and history entries in three statements; return how many were new.

    Relies on the caller's transaction (a batch of the migration). The accounts are locked in
    primary-key order, keys already on the ledger are answered as replays (checked to match,
    never written twice), the new entries go in with one bulk INSERT, and the accounts' new
    balances with one UPDATE.
    """
    if not entries:
        return 0
    for entry in entries:
        _check_key(entry.idempotency_key)
        if entry.kind == EntryKind.HISTORY:
            if entry.amount != 0:
                raise InvalidAmount("History entries record no amount.")
        elif entry.kind in CREDITING_KINDS:
            _positive_amount(entry.amount)
        else:
            raise InvalidAmount(f"{entry.kind!r} entries are not written in batches.")
    accounts = {
        account.pk: account
        for account in CreditAccount.objects.select_for_update()
        .filter(pk__in={entry.account_id for entry in entries})
        .order_by("pk")
    }
    existing = {
        key: (account_id, kind, amount)
        for key, account_id, kind, amount in CreditTransaction.objects.filter(
            idempotency_key__in=[entry.idempotency_key for entry in entries]
        )
        .order_by()
        .values_list("idempotency_key", "account_id", "kind", "amount")
    }
    now = timezone.now()
    new_entries, seen = [], set()
    for entry in entries:
        intent = (entry.account_id, str(entry.kind), _as_decimal(entry.amount))
        if entry.idempotency_key in existing or entry.idempotency_key in seen:
            if existing.get(entry.idempotency_key, intent) != intent:
                raise IdempotencyConflict(idempotency_key=entry.idempotency_key)
            continue
        seen.add(entry.idempotency_key)
        account = accounts[entry.account_id]
        amount = intent[2]
        balance_before = account.balance
        account.balance = balance_before + amount
        account.total_earned += amount
        new_entries.append(
            CreditTransaction(
                account_id=entry.account_id,
                kind=entry.kind,
                amount=amount,
                balance_before=balance_before,
                balance_after=account.balance,
                idempotency_key=entry.idempotency_key,
                source=entry.source,
                description=entry.description,
                migrated_from=entry.migrated_from,
                legacy_transaction_id=entry.legacy_transaction_id,
                metadata=entry.metadata or {},
                created_at=now,
            )
        )
    if not new_entries:
        return 0
    CreditTransaction.objects.bulk_create(new_entries, batch_size=1000)
    moved_ids = {entry.account_id for entry in new_entries if entry.amount != 0}
    moved = [accounts[account_id] for account_id in sorted(moved_ids)]
    for account in moved:
        account.updated_at = now
    if moved:
        # One statement: INSERT ... ON CONFLICT (id) DO UPDATE, which every row hits. Django's
        # bulk_update would build a CASE per row and field, slow to compile for a big batch.
        CreditAccount.objects.bulk_create(
            moved,
            update_conflicts=True,
            unique_fields=["pk"],
            update_fields=["balance", "total_earned", "updated_at"],
        )
    return len(new_entries)
