"""Debits of one hot account, written together (PostgreSQL's fast path).

Alone, each debit is one call of credits_post_debit in its own transaction, and it holds the
account's row lock until its commit is flushed to disk: a hot account serves one commit per
flush, however many threads spend from it, and every other writer waits in the database.
Here the debits of one account queue in the process instead. The first thread to arrive
writes the queue as it finds it in one call of credits_post_debits (credits migration 0015),
one transaction and one flush for all of them, while the others wait; it then hands what
arrived meanwhile to the next waiting thread, which does the same.

Nothing changes for a caller:

- each debit is committed when its call returns, written in the order the calls arrived, each
  checked against what the ones before it left, with the refusals and replays it would have
  had alone (an item the account cannot pay, or whose key is already in the ledger, moves
  nothing and is answered by the caller's own thread);
- a debit with no other thread of this process on its account at that moment goes alone, one
  call of credits_post_debit as before, so a quiet account pays nothing but a dictionary look;
- only debits in autocommit join (a caller's own transaction must commit by itself);
- when the combined call raises (a key that a concurrent transaction wrote meanwhile, a lost
  connection), nothing of it was written, and each thread writes its own debit alone. A debit
  whose commit may or may not have happened is safe to write again: its key makes the second
  write a replay.

Other processes and other accounts are not involved: the row lock still orders this process's
combined call with everyone else's writes, and one call holds one account's lock.
"""

import threading
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError
from django.db.backends.base.base import BaseDatabaseWrapper

# The most debits one call writes; the rest wait for the next call.
MAX_COMBINED = 64

# A debit's row as the one-item write returns it: (entry id, balance, earned, spent), or None
# when refused.
Row = tuple | None
Alone = Callable[[dict], Row]
# Runs credits_post_debits with the debits' parameters as arrays; its rows.
Together = Callable[[dict], list[tuple]]


@dataclass(eq=False, slots=True)
class _Debit:
    params: dict
    done: threading.Event | None = None
    leads: bool = False
    alone: bool = False
    duplicate: bool = False
    row: Row = None


_lock = threading.Lock()
# Per (database alias, account id): the debits waiting while one thread writes for that account.
# A key is present exactly while some thread leads for it.
_queues: dict[tuple[str, int], list[_Debit]] = {}


def applies(db: BaseDatabaseWrapper, params: dict) -> bool:
    """Whether a debit may join others: in autocommit, with the setting on, drawn by the rule
    alone (a debit that takes from a named lot first, a refund of a purchase, goes alone)."""
    return (
        not db.in_atomic_block and params["first_lot"] is None and settings.CREDITS_COMBINE_DEBITS
    )


def write(
    db: BaseDatabaseWrapper, account_id: int, params: dict, alone: Alone, together: Together
) -> Row:
    """Write one debit (the parameters of credits_post_debit), together with whatever debits
    of the same account other threads are writing now; its row, as `alone(params)` would
    return it."""
    key = (db.alias, account_id)
    debit = _Debit(params)
    with _lock:
        queue = _queues.get(key)
        if queue is None:
            _queues[key] = queue = []
            debit.leads = True
        else:
            debit.done = threading.Event()
        queue.append(debit)
    if not debit.leads:
        try:
            debit.done.wait()
        except BaseException:
            _leave(key, debit)
            raise
        if not debit.leads:
            return _outcome(debit, alone)
    return _lead(key, debit, alone, together)


def _leave(key, debit: _Debit) -> None:
    """A waiting thread interrupted (KeyboardInterrupt in the main thread, say): take its debit
    out of the queue if no call has taken it yet (a call that took it may have written it, as
    an interrupted write alone may have; its key settles a retry), and if it had just been made
    the next writer, pass that on so the queue never stalls."""
    with _lock:
        queue = _queues.get(key)
        if queue is not None and debit in queue:
            queue.remove(debit)
        handed_on = debit.leads
    if handed_on:
        _hand_on(key)


def _lead(key, debit: _Debit, alone: Alone, together: Together) -> Row:
    """Write the queue of `key` as it stands (debit first), answer its debits, hand on."""
    with _lock:
        queue = _queues[key]
        batch = queue[:MAX_COMBINED]
        del queue[:MAX_COMBINED]
    if len(batch) == 1:
        try:
            return alone(debit.params)
        finally:
            _hand_on(key)
    failure = None
    try:
        rows = _write_together(key[1], batch, together)
    except BaseException as error:
        # Nothing of the call was written: each of its debits is written alone.
        failure = error
        for other in batch:
            other.alone = True
    else:
        for other, row in zip(batch, rows, strict=True):
            other.duplicate = row[5]
            other.row = None if row[5] or row[1] is None else row[1:5]
    for other in batch:
        if other is not debit:
            other.done.set()
    _hand_on(key)
    if failure is not None and not isinstance(failure, Exception):
        raise failure  # an interrupt of this thread, not of the call's debits
    return _outcome(debit, alone)


def _hand_on(key) -> None:
    """Make the first waiting debit of `key` the next writer, or end the queue."""
    with _lock:
        queue = _queues[key]
        if queue:
            queue[0].leads = True
            queue[0].done.set()
        else:
            del _queues[key]


def _outcome(debit: _Debit, alone: Alone) -> Row:
    if debit.alone:
        return alone(debit.params)
    if debit.duplicate:
        # As the one-item write would have raised: the caller looks the key up and replays.
        raise IntegrityError(
            f"idempotency key {debit.params['idempotency_key']!r} is already in the ledger"
        )
    return debit.row


_ARRAYS = (
    "kind",
    "earned",
    "spent",
    "idempotency_key",
    "created_at",
    "source",
    "description",
    "stripe_event_id",
    "metadata",
    "actor_id",
    "reason",
)


def arrays(account_id: int, debits: list[dict]) -> dict:
    """The parameters of credits_post_debits for these debits of one account (each the
    parameters of credits_post_debit), in their order."""
    params = {name: [debit[name] for debit in debits] for name in _ARRAYS}
    params["account_id"] = account_id
    params["max"] = debits[0]["max"]
    return params


def _write_together(account_id: int, batch: list[_Debit], together: Together) -> list[tuple]:
    """The call's rows, one per debit in the batch's order (credits_post_debits answers so)."""
    rows = together(arrays(account_id, [debit.params for debit in batch]))
    if [row[0] for row in rows] != list(range(1, len(batch) + 1)):
        raise RuntimeError(f"credits_post_debits answered {len(rows)} of {len(batch)} debits")
    return rows
