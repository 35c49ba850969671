"""Many grants and history entries at once (the migration)."""

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.utils import timezone

from core.bulk import copy_columns, update_columns
from credits.exceptions import (
    IdempotencyConflict,
    InvalidAmount,
)
from credits.locks import accounts_lock
from credits.models import (
    CREDITING_KINDS,
    CreditAccount,
    CreditLot,
    CreditTransaction,
    EntryKind,
)
from credits.services.entries import lot_terms
from credits.services.posting import as_decimal, check_key, positive_amount
from credits.services.posting.lots import category_for


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
    # The lot a crediting entry makes (None: CREDITS_LOT_CATEGORIES' category for the kind and
    # source), and when it expires (never by default).
    category: str | None = None
    expires_at: datetime | None = None


def credit_post_batch(*, entries: list[BatchEntry]) -> int:
    """Write many grants (each a new lot) and history entries in six statements; return how
    many were new.

    Relies on the caller's transaction (a batch of the migration). The accounts are locked in
    primary-key order, keys already on the ledger are answered as replays (checked to match,
    never written twice), the new entries go in with one COPY (a bulk INSERT off PostgreSQL),
    and the accounts' new balances with one UPDATE (see core.bulk).
    """
    if not entries:
        return 0
    for entry in entries:
        check_key(entry.idempotency_key)
        if entry.kind == EntryKind.HISTORY:
            if entry.amount != 0:
                raise InvalidAmount("History entries record no amount.")
        elif entry.kind in CREDITING_KINDS:
            positive_amount(entry.amount)
            lot_terms(category=entry.category, expires_at=entry.expires_at)
        else:
            raise InvalidAmount(f"{entry.kind!r} entries are not written in batches.")
    # Plain values, not instances: at hundreds of entries a batch, building models is a
    # good part of the cost.
    accounts = {
        pk: [balance, earned]
        for pk, balance, earned in accounts_lock(
            account_ids={entry.account_id for entry in entries}
        ).values_list("pk", "balance", "total_earned")
    }
    existing = {
        key: (account_id, kind, amount)
        for key, account_id, kind, amount in CreditTransaction.objects.filter(
            idempotency_key__any_of=[entry.idempotency_key for entry in entries]
        )
        .order_by()
        .values_list("idempotency_key", "account_id", "kind", "amount")
    }
    new = _unwritten(entries, existing)
    if not new:
        return 0
    missing = {entry.account_id for entry in new} - accounts.keys()
    if missing:
        raise CreditAccount.DoesNotExist(f"no credit accounts {sorted(missing)}")
    before, after, moved = [], [], set()
    for entry in new:
        account = accounts[entry.account_id]
        before.append(account[0])
        if entry.amount:
            account[0] += entry.amount
            account[1] += entry.amount
            moved.add(entry.account_id)
        after.append(account[0])
    now = timezone.now()
    copy_columns(
        CreditTransaction,
        {
            "account_id": [entry.account_id for entry in new],
            "kind": [entry.kind for entry in new],
            "amount": [entry.amount for entry in new],
            "balance_before": before,
            "balance_after": after,
            "idempotency_key": [entry.idempotency_key for entry in new],
            "source": [entry.source for entry in new],
            "description": [entry.description for entry in new],
            "migrated_from": [entry.migrated_from for entry in new],
            "legacy_transaction_id": [entry.legacy_transaction_id for entry in new],
            "metadata": [entry.metadata or {} for entry in new],
            "created_at": [now] * len(new),
        },
    )
    _add_lots([entry for entry in new if entry.amount], now)
    ids = sorted(moved)
    update_columns(
        CreditAccount,
        ids,
        {
            "balance": [accounts[pk][0] for pk in ids],
            "total_earned": [accounts[pk][1] for pk in ids],
        },
    )
    return len(new)


def _add_lots(crediting: list[BatchEntry], now: datetime) -> None:
    """One lot per crediting entry just copied in (their ids read back by key)."""
    if not crediting:
        return
    ids = dict(
        CreditTransaction.objects.filter(
            idempotency_key__any_of=[entry.idempotency_key for entry in crediting]
        )
        .order_by()
        .values_list("idempotency_key", "pk")
    )
    copy_columns(
        CreditLot,
        {
            "account_id": [entry.account_id for entry in crediting],
            "category": [
                entry.category or category_for(entry.kind, entry.source) for entry in crediting
            ],
            "amount": [entry.amount for entry in crediting],
            "remaining": [entry.amount for entry in crediting],
            "priority": [0] * len(crediting),
            "effective_at": [now] * len(crediting),
            "expires_at": [entry.expires_at for entry in crediting],
            "rolled_over": [False] * len(crediting),
            "entry_id": [ids[entry.idempotency_key] for entry in crediting],
        },
    )


def _unwritten(entries: list[BatchEntry], existing: dict) -> list[BatchEntry]:
    """The entries whose keys are not on the ledger yet (first of each key), amounts checked;
    a key already there, or twice in the batch, must carry the same intent."""
    new, intents = [], {}
    for entry in entries:
        key = entry.idempotency_key
        intent = (entry.account_id, str(entry.kind), as_decimal(entry.amount))
        if key in existing or key in intents:
            if existing.get(key, intents.get(key)) != intent:
                raise IdempotencyConflict(idempotency_key=key)
            continue
        intents[key] = intent
        new.append(replace(entry, amount=intent[2]) if entry.amount != intent[2] else entry)
    return new
