"""Entries that threads of one process post at the same moment, written in one call.

On PostgreSQL, an entry posted outside a transaction is its own transaction: the conditional
UPDATE of the account, the INSERT of the entry, and a commit that waits for the disk. A busy
account therefore serves one writer per commit, and every writer pays a commit of its own. Here
a thread that finds no other write of the process under way writes its entry at once, alone
(the one-statement path); threads that arrive meanwhile queue, and the first of them writes the
whole queue in one call (credits.services._posting._write_many): one round trip and one commit
for all of them. It is PostgreSQL's group commit, one level up.

Under load the writers of one call come back together for their next entries. A thread that
starts a call just after another ended therefore waits a moment (`gather_wait` at most) for as
many writers as the last call had, so that they share a call instead of one writing alone while
the rest queue behind it. With no recent shared call nobody waits: a lone writer writes at once.

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
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from django.db import OperationalError

# More entries than this per call only lengthen the wait of the first ones.
MAX_BATCH = 64
# A shared call takes a millisecond or two; a queued writer waiting far longer than that is
# behind a call stuck on some account's lock, and writes alone instead.
QUEUE_WAIT = 0.05
# How long a new call waits for the writers of the last one to come back, at most, and how soon
# after the last call it still expects them (both far below a call's own time with a commit).
GATHER_WAIT = 0.0005
GATHER_WINDOW = 0.002
# What write_many returns for an entry it could not write without waiting (see above).
WRITE_ALONE = object()


class _Waiter:
    """One writer in the queue. It is woken exactly once: with its outcome, or to lead the
    next call. A bare lock, taken at birth and released by the waker, is the cheapest wake
    Python has (an Event builds a Condition and a lock of its own for every wait)."""

    __slots__ = ("_asleep", "entry", "error", "lead", "outcome")

    def __init__(self, entry):
        self.entry = entry
        self.lead = False
        self.outcome: Any = None
        self.error: BaseException | None = None
        self._asleep = threading.Lock()
        self._asleep.acquire()

    def wait(self, timeout: float = -1) -> bool:
        """Block until woken (True), or until `timeout` seconds have passed (False)."""
        return self._asleep.acquire(timeout=timeout)

    def wake(self) -> None:
        self._asleep.release()


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
        gather_wait: float = GATHER_WAIT,
        gather_window: float = GATHER_WINDOW,
    ):
        self._write_one = write_one
        self._write_many = write_many
        self._max_batch = max_batch
        self._max_calls = max_calls
        self._queue_wait = queue_wait
        self._lock = threading.Lock()
        self._queue: deque[_Waiter] = deque()
        self._calls = 0  # writes under way, each by the thread that leads it
        self._gather_wait = gather_wait
        self._gather_window = gather_window
        self._last_size = 0  # entries in the last call
        self._last_end = 0.0  # when it ended (time.monotonic())
        self._gate: threading.Lock | None = None  # opened when the gathering call is full
        self._gate_size = 0

    def write(self, entry):
        waiter = _Waiter(entry)
        gate = None
        with self._lock:
            if self._may_start_call():
                self._calls += 1
                waiter.lead = True
                gate = self._gate_for_new_call()
            else:
                self._queue.append(waiter)
                if self._gate is not None and len(self._queue) >= self._gate_size:
                    self._gate.release()  # the gathering call is full: it may go
                    self._gate = None
        # Woken with an outcome, or to lead the next call (then `lead` is set).
        if not waiter.lead and not waiter.wait(self._queue_wait):
            if self._leave_queue(waiter):
                return self._write_one(entry)
            waiter.wait()  # a call has taken it: its wake is on the way
        if waiter.lead:
            if gate is not None:
                gate.acquire(timeout=self._gather_wait)
                with self._lock:
                    if self._gate is gate:
                        self._gate = None
            self._lead(waiter)
        if waiter.error is not None:
            raise waiter.error
        if waiter.outcome is WRITE_ALONE:
            return self._write_one(entry)
        return waiter.outcome

    def _may_start_call(self) -> bool:
        """Under the lock: may a writer arriving now start a call of its own?

        With no call under way, yes. Beyond the first, a call starts only to share it: a
        writer that finds another queued leads the queue, one that finds none queues (the
        next arrival, or the end of a call, takes it), so a free slot is not spent on a
        single entry while others line up; and none starts while a call is gathering its
        writers, which would take them from it.
        """
        if self._calls == 0:
            return True
        return bool(self._queue) and self._gate is None and self._calls < max(1, self._max_calls())

    def _gate_for_new_call(self) -> threading.Lock | None:
        """Under the lock: a gate for the call being started to wait at, or None.

        Under load (the last call was shared and ended a moment ago) its writers are on their
        way back with their next entries: the gate opens when as many are queued, and the
        call waits at it for `gather_wait` at most. Otherwise the call goes at once.
        """
        expected = self._last_size - 1
        if (
            self._gather_wait <= 0
            or self._gate is not None
            or expected < 1
            or len(self._queue) >= expected
            or time.monotonic() - self._last_end > self._gather_window
        ):
            return None
        gate = threading.Lock()
        gate.acquire()
        self._gate, self._gate_size = gate, expected
        return gate

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
                self._last_size = len(batch)
                self._last_end = time.monotonic()
                successor = self._queue.popleft() if self._queue else None
                if successor is None:
                    self._calls -= 1
                else:
                    successor.lead = True
            for waiter in batch[1:]:
                waiter.wake()
            if successor is not None:
                successor.wake()

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
