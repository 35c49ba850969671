"""Batches of one run migrated by several threads of the same process, each on its own
database connections.

A batch spends about half its time waiting for PostgreSQL and half in Python; two batches in
flight let one compute while the other waits, which is what `--workers` buys on one machine
(Celery workers share a run across machines). It is safe because batches are already
independent: each is its own transaction over its own users, and claims their UserMigration
rows under a lock, so no user is migrated twice whatever the interleaving.

Results come back in the order the batches were handed out, so a report and a progress bar
read the same as with one worker. At most a few batches per worker are in flight, so memory
stays flat however many users the run has. Threads are used only on PostgreSQL and outside a
transaction: SQLite takes one writer at a time, and a caller's open transaction (a test's)
would be invisible to other connections.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from typing import TypeVar

from django.db import DEFAULT_DB_ALIAS, connections

Item = TypeVar("Item")
Result = TypeVar("Result")

IN_FLIGHT_PER_WORKER = 2


def can_run_in_parallel() -> bool:
    connection = connections[DEFAULT_DB_ALIAS]
    return connection.vendor == "postgresql" and not connection.in_atomic_block


def run_in_order(
    work: Callable[[Item], Result], items: Iterable[Item], *, workers: int
) -> Iterator[Result]:
    """Yield work(item) for each item, in order, computed by up to `workers` threads."""
    if workers <= 1 or not can_run_in_parallel():
        for item in items:
            yield work(item)
        return
    tasks: queue.Queue = queue.Queue()
    stopping = threading.Event()

    def worker() -> None:
        try:
            while True:
                task = tasks.get()
                if task is None:
                    return
                future, item = task
                if stopping.is_set() or not future.set_running_or_notify_cancel():
                    continue
                try:
                    future.set_result(work(item))
                except BaseException as error:
                    future.set_exception(error)
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=worker, name=f"migrate-batch-{index}", daemon=True)
        for index in range(workers)
    ]
    for thread in threads:
        thread.start()
    pending: deque[Future] = deque()
    try:
        for item in items:
            future: Future = Future()
            tasks.put((future, item))
            pending.append(future)
            while len(pending) >= workers * IN_FLIGHT_PER_WORKER or (pending and pending[0].done()):
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        # On an error (or the consumer stopping early), batches not started are dropped: each
        # is whole or not begun, and a rerun picks up the users they held.
        stopping.set()
        for future in pending:
            future.cancel()
        for _ in threads:
            tasks.put(None)
        for thread in threads:
            thread.join()
