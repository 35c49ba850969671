"""Read queries compiled once and run again with other parameters: for the few reads on every
request (the balance), where Django's per-call work costs more than the database's.

Django compiles a queryset to SQL on every evaluation (a query with a few subqueries takes a
millisecond of Python), and its PostgreSQL cursors bind on the client, so the server parses
and plans the literal query every time. A `CompiledQuery` is written as an ordinary queryset,
built once per database with a sentinel value for each parameter that changes; its SQL,
parameters and result converters are kept, and each call swaps the sentinels for the values.
On PostgreSQL it runs on a server-side binding cursor that prepares it once per connection,
as the ledger's hot statement does (credits.services.posting.postgresql), so the plan is
reused too (planning the balance's statement takes ten times as long as running it), and the
statement stands in for the connection's health check; elsewhere (SQLite) on Django's
cursor. Either way the rows come out converted as the queryset's own would (through the
compiler's converters, kept from the first compilation), and the query is logged where
Django logs queries (DEBUG, assertNumQueries), so a test counts it like any other.

Only the sentinels change between calls: the queryset must not depend on anything else that
varies (the time, settings changed at run time). Rows are what `.values()` gives.
"""

import threading
import time
from collections.abc import Callable
from typing import Any

from django.db import DEFAULT_DB_ALIAS, OperationalError, connections
from django.db.models import QuerySet


class CompiledQuery:
    def __init__(self, build: Callable[..., QuerySet], **sentinels: Any):
        """`build(**sentinels)` returns a `.values()` queryset in which each sentinel is one
        parameter of the SQL, used exactly once (pick values nothing else in it could be)."""
        self._build = build
        self._sentinels = sentinels
        self._compiled: dict[str, tuple] = {}
        self._lock = threading.Lock()

    def first(self, *, using: str = DEFAULT_DB_ALIAS, **values: Any) -> dict | None:
        """The first row for these parameter values, as a dict, or None."""
        sql, params, positions, names, compiler, converters = self._compiled_for(using)
        params = list(params)
        for name, value in values.items():
            params[positions[name]] = value
        db = connections[using]
        if db.vendor == "postgresql":
            row = _fetchone_prepared(db, sql, params)
        else:
            with db.cursor() as cursor:
                cursor.execute(sql, params)
                row = cursor.fetchone()
        if row is None:
            return None
        if converters:
            row = next(iter(compiler.apply_converters([row], converters)))
        return dict(zip(names, row, strict=True))

    def _compiled_for(self, using: str) -> tuple:
        compiled = self._compiled.get(using)
        if compiled is None:
            with self._lock:
                compiled = self._compiled.get(using) or self._compile(using)
                self._compiled[using] = compiled
        return compiled

    def _compile(self, using: str) -> tuple:
        queryset = self._build(**self._sentinels).using(using)[:1]
        query = queryset.query
        compiler = query.get_compiler(using)
        sql, params = compiler.as_sql()
        positions = {}
        for name, sentinel in self._sentinels.items():
            found = [index for index, param in enumerate(params) if param == sentinel]
            if len(found) != 1:
                raise ValueError(f"sentinel {name}={sentinel!r} is {len(found)} parameters")
            positions[name] = found[0]
        names = [*query.extra_select, *query.values_select, *query.annotation_select]
        fields = [column[0] for column in compiler.select[: compiler.col_count]]
        converters = compiler.get_converters(fields)
        return sql, tuple(params), positions, names, compiler, converters


def _fetchone_prepared(db, sql: str, params: list):
    db.ensure_connection()
    # The statement is its own connection health check: a read is safe to run twice, so on a
    # connection the server dropped while idle it is run again on a new one. The request
    # then skips the SELECT 1 that CONN_HEALTH_CHECKS sends before its first query (a round
    # trip as long as this statement's). Inside a transaction nothing is retried.
    retry = db.health_check_enabled and not db.health_check_done and not db.in_atomic_block
    started = time.monotonic()
    try:
        with db.wrap_database_errors:
            row = _execute_prepared(db, sql, params)
    except OperationalError:
        if not retry:
            raise
        db.close()
        db.ensure_connection()
        with db.wrap_database_errors:
            row = _execute_prepared(db, sql, params)
    db.health_check_done = True
    if db.queries_logged:
        duration = time.monotonic() - started
        db.queries_log.append({"sql": f"{sql} -- {params!r}", "time": f"{duration:.3f}"})
    return row


def _execute_prepared(db, sql: str, params: list):
    import psycopg

    raw = db.connection
    cursor = getattr(db, "_compiled_query_cursor", None)
    if cursor is None or cursor.closed or cursor.connection is not raw:
        cursor = db._compiled_query_cursor = psycopg.Cursor(raw)
    cursor.execute(sql, params, prepare=True)
    return cursor.fetchone()
