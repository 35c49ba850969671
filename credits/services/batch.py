"""Many grants and history entries at once (the migration)."""

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.utils import timezone

from credits.exceptions import (
    IdempotencyConflict,
    InvalidAmount,
)
from credits.models import (
    CREDITING_KINDS,
    CreditAccount,
    CreditTransaction,
    EntryKind,
)
from credits.services._posting import _as_decimal, _check_key, _positive_amount
from project.bulk import copy_rows, update_rows


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
    """Write many grants and history entries in four statements; return how many were new.

    Relies on the caller's transaction (a batch of the migration). The accounts are locked in
    primary-key order, keys already on the ledger are answered as replays (checked to match,
    never written twice), the new entries go in with one COPY (a bulk INSERT off PostgreSQL),
    and the accounts' new balances with one UPDATE (see project.bulk).
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
    copy_rows(CreditTransaction, new_entries)
    moved_ids = {entry.account_id for entry in new_entries if entry.amount != 0}
    update_rows(
        CreditAccount,
        [accounts[account_id] for account_id in sorted(moved_ids)],
        ["balance", "total_earned"],
    )
    return len(new_entries)
