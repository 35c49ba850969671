"""Entries that threads of one process post at the same moment, written in one call.

On PostgreSQL, an entry posted outside a transaction is its own transaction: the conditional
UPDATE of the account, the INSERT of the entry, and a commit that waits for the disk. A busy
account therefore serves one writer per commit, and every writer pays a commit of its own. Here
the first thread to arrive writes its entry at once, alone (the one-statement path); threads
that arrive meanwhile queue, and when it is done the first of them writes the whole queue in one
call of `credits_post_entries` (credits/sql/post_entries.sql): one round trip and one commit for
all of them, and per entry the same conditional UPDATE and INSERT, each in a subtransaction of
its own so that one entry's failure (a duplicate key, too little credit) is that entry's alone.
It is PostgreSQL's group commit, one level up.

Every caller returns only once the commit that holds its entry is done, with its own outcome:
what was stored for its entry, `None` for too little credit, or its own error (a duplicate key
is an IntegrityError, which the caller answers as a replay). If the call itself fails (one
entry the database cannot take at all, a broken connection), every caller of it writes its
entry alone and gets its own outcome; with idempotency keys that is safe even if the failed
call had committed. Callers inside a transaction never come here: their entry belongs to their
transaction.

One busy account must not hold up writers to others. Inside a shared call an entry waits for
its account's lock only briefly (`WRITE_ALONE` comes back when it could not get it), and a
writer that waited in the queue longer than `queue_wait` seconds (its call's writer is stuck
behind a lock) leaves the queue; both then write alone, in their own thread, waiting only for
their own account, as they would with combining off.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import OperationalError

# More entries than this per call only lengthen the wait of the first ones.
MAX_BATCH = 64
# A shared call takes a millisecond or two; a queued writer waiting far longer than that is
# behind a call stuck on some account's lock, and writes alone instead.
QUEUE_WAIT = 0.05
# What write_many returns for an entry it could not write without waiting (see above).
WRITE_ALONE = object()


@dataclass(eq=False)
class _Waiter:
    entry: Any
    ready: threading.Event = field(default_factory=threading.Event)
    lead: bool = False
    outcome: Any = None
    error: BaseException | None = None


class Combiner:
    """`write(entry)` writes alone when no other write of this process is under way, and in
    the next shared call otherwise.

    write_one(entry) -> the outcome, or raises; write_many(entries) -> one outcome or
    exception per entry, in order, or raises when nothing was written.
    """

    def __init__(
        self,
        write_one: Callable,
        write_many: Callable,
        *,
        max_batch: int = MAX_BATCH,
        max_calls: Callable[[], int] = lambda: 1,
        queue_wait: float = QUEUE_WAIT,
    ):
        self._write_one = write_one
        self._write_many = write_many
        self._max_batch = max_batch
        self._max_calls = max_calls
        self._queue_wait = queue_wait
        self._lock = threading.Lock()
        self._queue: deque[_Waiter] = deque()
        self._calls = 0  # writes under way, each by the thread that leads it

    def write(self, entry):
        waiter = _Waiter(entry)
        with self._lock:
            # At least one call, or nobody would ever write.
            if self._calls >= max(1, self._max_calls()):
                self._queue.append(waiter)
            else:
                self._calls += 1
                waiter.lead = True
        if not waiter.lead:
            # Woken with an outcome, or to lead the next call (then `lead` is set).
            if not waiter.ready.wait(self._queue_wait) and self._leave_queue(waiter):
                return self._write_one(entry)
            waiter.ready.wait()
        if waiter.lead:
            self._lead(waiter)
        if waiter.error is not None:
            raise waiter.error
        if waiter.outcome is WRITE_ALONE:
            return self._write_one(entry)
        return waiter.outcome

    def _leave_queue(self, waiter: _Waiter) -> bool:
        """Take the waiter out of the queue; False if a call has taken it already."""
        with self._lock:
            try:
                self._queue.remove(waiter)
            except ValueError:
                return False
            return True

    def _lead(self, own: _Waiter) -> None:
        batch = [own]
        try:
            with self._lock:
                while self._queue and len(batch) < self._max_batch:
                    batch.append(self._queue.popleft())
            if len(batch) == 1:
                try:
                    own.outcome = self._write_one(own.entry)
                except Exception as error:
                    own.error = error
            else:
                self._write_batch(batch)
        except BaseException as error:
            # Interrupted (KeyboardInterrupt, SystemExit) with the batch's fate unknown: the
            # others are told to retry with their keys, which cannot write twice.
            own.error = error
            for waiter in batch[1:]:
                if waiter.outcome is None and waiter.error is None:
                    waiter.error = OperationalError(
                        "the write was interrupted; retry it with the same idempotency key"
                    )
        finally:
            with self._lock:
                successor = self._queue.popleft() if self._queue else None
                if successor is None:
                    self._calls -= 1
                else:
                    successor.lead = True
            for waiter in batch[1:]:
                waiter.ready.set()
            if successor is not None:
                successor.ready.set()

    def _write_batch(self, batch: list[_Waiter]) -> None:
        try:
            outcomes = self._write_many([waiter.entry for waiter in batch])
        except Exception:
            # Nothing of the call was written (or, if the connection broke as it committed,
            # perhaps all of it: a key cannot write twice). Whose entry made it fail, if any
            # did, is not known: each writes its own alone and gets its own outcome.
            for waiter in batch:
                waiter.outcome = WRITE_ALONE
            return
        for waiter, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                waiter.error = outcome
            else:
                waiter.outcome = outcome
