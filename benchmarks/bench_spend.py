"""Spends per second: `credits.services.credit_spend` against a bare conditional UPDATE, and a
hold then its capture (`credit_hold_create` + `credit_hold_capture`) against the same.

They run side by side in one process on PostgreSQL, with the same number of threads (each its
own connection) in two scenarios: one hot account shared by every thread, and one account per
thread. Every account holds 5 lots (promotional, monthly, migration, paid, of different
expiries), so each spend reads them and draws from the first by the rule. The ratios to raw
are the figures to watch; the goals: service >= 80% of raw on the hot account and >= 60% with
an account per thread, a hold+capture pair >= 35% of raw. Nothing here asserts a time: it
prints figures. It exits 1 only if the ledger is wrong afterwards, and 2 on a usage error.

- service: `credit_spend(account=..., amount=..., idempotency_key=<unique per call>)` on the
  thread's own Django connection, entry row and all, with an account loaded once per thread.
  As deployed, each spend is one statement in its own transaction (PostgreSQL's fast path,
  credits/services/posting/postgresql.py); CREDITS_POSTGRESQL_FAST_PATH=false measures the
  portable path instead (posting/portable.py: the conditional UPDATE, then the ORM's INSERT).
- hold: one `credit_hold_create` (reserve) and one `credit_hold_capture` of all of it (the
  spend entry, drawn from lots) per operation; on PostgreSQL each is one round trip.
- raw: one conditional UPDATE through psycopg in autocommit (one statement, one transaction),
  no ledger row, psycopg's defaults (so it is prepared server-side after five runs; Django
  turns that off). It also moves `total_spent`, because the CHECK
  `balance = total_earned - total_spent` refuses an UPDATE of `balance` alone; the row and its
  constraints are the same as the service's.

Each scenario alternates the two methods over a few rounds (service, raw, then raw, service,
...) and adds the rounds up, so a drift of the machine (disk flush latency, other load) hits
both alike; the per-round ratios are printed too, to show the noise.

The raw spends have no entries, so each method gets its own accounts. After each raw round
its accounts are checked exact (balance == grant - spends x amount, no lost update) and then
given the raw spends back, so every account ends with balance == sum of its entries.

The run happens in a scratch database created and dropped the way Django's test runner does
it; the database DATABASE_URL names is never written to. Run from the project root:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
        .venv/bin/python benchmarks/bench_spend.py [--seconds 5 | --ops N] [--rounds 3]
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

from benchmarks.scratch import run_in_scratch_database  # noqa: E402

GOALS = {("hot", "service"): 0.80, ("spread", "service"): 0.60}
HOLD_GOAL = 0.35
LOTS_PER_ACCOUNT = 5
SPEND_AMOUNT = Decimal("1.00")
# Far more than any run can spend (a billion spends of 1.00), so no spend is ever refused.
GRANT_AMOUNT = Decimal("1000000000.00")
MAX_OPS = 100_000_000
BARRIER_TIMEOUT = 60.0

SCENARIOS = {
    "hot": "1 hot account, shared by all threads",
    "spread": "1 account per thread",
}
METHODS = ("service", "hold", "raw")

# The bare conditional UPDATE, plus `total_spent` (see the module docstring).
RAW_SPEND_SQL = (
    "UPDATE credits_creditaccount"
    " SET balance = balance - %s, total_spent = total_spent + %s"
    " WHERE id = %s AND balance >= %s"
)
# Django-only keys of DATABASES[...]["OPTIONS"]; the rest are libpq parameters.
DJANGO_ONLY_OPTIONS = {
    "assume_role",
    "isolation_level",
    "pool",
    "server_side_binding",
    "prepare_threshold",
    "cursor_factory",
    "context",
}

Spend = Callable[[], bool]  # one spend; False when refused for lack of credits


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Spends per second through credits.services against a raw conditional "
        "UPDATE, on PostgreSQL (DATABASE_URL), in a scratch database.",
    )
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument(
        "--seconds",
        type=float,
        default=5.0,
        help="measured seconds per method and scenario, split over the rounds (default: 5; "
        "the whole run then takes about 35 s)",
    )
    budget.add_argument(
        "--ops",
        type=int,
        help="instead of --seconds, a fixed number of spends per method and scenario, split "
        "over the rounds and the threads",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="alternate service and raw this many times per scenario, so a drift of the "
        "machine (disk flush latency, other load) hits both alike (default: 3)",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=0.5,
        help="seconds of uncounted spends before each measured round (default: 0.5)",
    )
    parser.add_argument(
        "--threads", type=int, default=8, help="threads, each its own connection (default: 8)"
    )
    args = parser.parse_args(argv)
    if args.ops is not None and not 0 < args.ops <= MAX_OPS:
        parser.error(f"--ops must be between 1 and {MAX_OPS}")
    if args.seconds <= 0 or args.warmup < 0 or args.threads < 1 or args.rounds < 1:
        parser.error("--seconds must be > 0, --warmup >= 0, --threads and --rounds >= 1")
    if args.ops is not None and args.ops < args.rounds:
        parser.error("--ops must be at least --rounds")
    return args


def share(total: int, parts: int, index: int) -> int:
    """Part `index` of `total` split as evenly as possible into `parts`."""
    return total // parts + (1 if index < total % parts else 0)


# --- measurement --------------------------------------------------------------------------


@dataclass
class Tally:
    """What one thread did; warm-up spends are kept apart from the measured ones."""

    account_pk: int
    warmup_applied: int = 0
    applied: int = 0
    refused: int = 0
    started: float = 0.0
    finished: float = 0.0
    error: BaseException | None = None


@dataclass
class Result:
    """One measured round of one method in one scenario, or the sum of several."""

    scenario: str
    method: str
    ops: int
    seconds: float
    refused: int
    # Spends that took credits, warm-up included, by account: what the ledger must show.
    applied_by_account: dict[int, int] = field(default_factory=dict)

    @property
    def ops_per_second(self) -> float:
        return self.ops / self.seconds if self.seconds else 0.0

    @classmethod
    def total(cls, rounds: list[Result]) -> Result:
        return cls(
            scenario=rounds[0].scenario,
            method=rounds[0].method,
            ops=sum(r.ops for r in rounds),
            seconds=sum(r.seconds for r in rounds),
            refused=sum(r.refused for r in rounds),
            applied_by_account=applied_by_account(rounds),
        )


def applied_by_account(results: list[Result]) -> dict[int, int]:
    """Spends that took credits, by account, over several results."""
    applied: dict[int, int] = {}
    for result in results:
        for pk, count in result.applied_by_account.items():
            applied[pk] = applied.get(pk, 0) + count
    return applied


def ratio(service: Result, raw: Result) -> float:
    return service.ops_per_second / raw.ops_per_second if raw.ops_per_second else 0.0


class Run:
    """Threads that open a session, warm up, start together, and spend until told to stop."""

    def __init__(self, *, threads: int, warmup: float, seconds: float, ops: int | None):
        self.threads = threads
        self.warmup = warmup
        self.seconds = seconds
        self.ops = ops
        self.ready = threading.Barrier(threads + 1, timeout=BARRIER_TIMEOUT)
        self.go = threading.Barrier(threads + 1, timeout=BARRIER_TIMEOUT)
        self.stopping = False  # set on Ctrl-C; a plain attribute is the cheapest check

    def quota(self, index: int) -> int | None:
        if self.ops is None:
            return None
        return share(self.ops, self.threads, index)

    def worker(self, index: int, open_session: Callable[[], tuple[Spend, Callable]], tally: Tally):
        close = None
        try:
            spend, close = open_session()
            self.ready.wait()
            warm_until = time.perf_counter() + self.warmup
            while time.perf_counter() < warm_until and not self.stopping:
                tally.warmup_applied += spend()
            self.go.wait()
            quota = self.quota(index)
            tally.started = time.perf_counter()
            if quota is None:
                deadline = tally.started + self.seconds
                while time.perf_counter() < deadline and not self.stopping:
                    if spend():
                        tally.applied += 1
                    else:
                        tally.refused += 1
            else:
                for _ in range(quota):
                    if self.stopping:
                        break
                    if spend():
                        tally.applied += 1
                    else:
                        tally.refused += 1
            tally.finished = time.perf_counter()
        except BaseException as error:
            tally.error = error
            self.ready.abort()
            self.go.abort()
        finally:
            if close is not None:
                close()

    def measure(
        self,
        *,
        scenario: str,
        method: str,
        account_pks: list[int],
        session_for: Callable[[int, int], Callable[[], tuple[Spend, Callable]]],
    ) -> Result:
        """Run one method in one scenario; thread i spends from account_pks[i % len]."""
        tallies = [Tally(account_pk=account_pks[i % len(account_pks)]) for i in range(self.threads)]
        workers = [
            threading.Thread(
                target=self.worker,
                args=(i, session_for(i, tallies[i].account_pk), tallies[i]),
                name=f"{scenario}-{method}-{i}",
            )
            for i in range(self.threads)
        ]
        for thread in workers:
            thread.start()
        try:
            self.ready.wait()
            self.go.wait()
            for thread in workers:
                thread.join()
        except threading.BrokenBarrierError:
            for thread in workers:
                thread.join()
        except BaseException:
            self.stopping = True
            self.ready.abort()
            self.go.abort()
            for thread in workers:
                thread.join()
            raise
        for tally in tallies:
            if tally.error is not None:
                raise RuntimeError(f"a {scenario}/{method} thread failed") from tally.error
        applied_by_account: dict[int, int] = {}
        for tally in tallies:
            applied_by_account[tally.account_pk] = (
                applied_by_account.get(tally.account_pk, 0) + tally.warmup_applied + tally.applied
            )
        return Result(
            scenario=scenario,
            method=method,
            ops=sum(tally.applied for tally in tallies),
            seconds=max(t.finished for t in tallies) - min(t.started for t in tallies),
            refused=sum(tally.refused for tally in tallies),
            applied_by_account=applied_by_account,
        )


# --- the two methods ----------------------------------------------------------------------


def service_sessions(run_tag: str):
    """Sessions on each thread's own Django connection, calling the service."""
    return lambda thread_index, account_pk: _service_session(run_tag, thread_index, account_pk)


def hold_sessions(run_tag: str):
    """Sessions on each thread's own Django connection, reserving then capturing."""
    return lambda thread_index, account_pk: _hold_session(run_tag, thread_index, account_pk)


def raw_sessions(conninfo: str):
    """Sessions on psycopg connections of their own, in autocommit."""
    return lambda thread_index, account_pk: _raw_session(conninfo, account_pk)


def _service_session(run_tag: str, thread_index: int, account_pk: int):
    def open_session() -> tuple[Spend, Callable]:
        from django.db import connection

        from credits.exceptions import InsufficientCredits
        from credits.models import CreditAccount
        from credits.services import credit_spend

        # Each thread loads its own instance, as a request would; the service updates it.
        try:
            account = CreditAccount.objects.get(pk=account_pk)
        except BaseException:
            connection.close()
            raise
        key_prefix = f"bench:{run_tag}:{thread_index}:"
        counter = itertools.count()

        def spend() -> bool:
            try:
                credit_spend(
                    account=account,
                    amount=SPEND_AMOUNT,
                    idempotency_key=f"{key_prefix}{next(counter)}",
                )
            except InsufficientCredits:
                return False
            return True

        return spend, connection.close

    return open_session


def _hold_session(run_tag: str, thread_index: int, account_pk: int):
    def open_session() -> tuple[Spend, Callable]:
        from django.db import connection

        from credits.exceptions import InsufficientCredits
        from credits.models import CreditAccount
        from credits.services import credit_hold_capture, credit_hold_create

        try:
            account = CreditAccount.objects.get(pk=account_pk)
        except BaseException:
            connection.close()
            raise
        key_prefix = f"bench:{run_tag}:{thread_index}:"
        counter = itertools.count()

        def reserve_and_capture() -> bool:
            number = next(counter)
            try:
                hold = credit_hold_create(
                    account=account, amount=SPEND_AMOUNT, idempotency_key=f"{key_prefix}h{number}"
                )
            except InsufficientCredits:
                return False
            credit_hold_capture(hold=hold, idempotency_key=f"{key_prefix}c{number}")
            return True

        return reserve_and_capture, connection.close

    return open_session


def _raw_session(conninfo: str, account_pk: int):
    # One statement per spend, and autocommit makes it its own transaction.
    def open_session() -> tuple[Spend, Callable]:
        import psycopg

        raw = psycopg.connect(conninfo, autocommit=True)
        cursor = raw.cursor()
        params = (SPEND_AMOUNT, SPEND_AMOUNT, account_pk, SPEND_AMOUNT)

        def spend() -> bool:
            cursor.execute(RAW_SPEND_SQL, params)
            return cursor.rowcount == 1

        return spend, raw.close

    return open_session


def raw_conninfo() -> str:
    """libpq parameters of the (test) database Django is connected to."""
    from django.db import connection
    from psycopg.conninfo import make_conninfo

    settings_dict = connection.settings_dict
    params = {
        key: value
        for key, value in settings_dict["OPTIONS"].items()
        if key not in DJANGO_ONLY_OPTIONS
    }
    params["dbname"] = settings_dict["NAME"]
    for key, setting in (("user", "USER"), ("password", "PASSWORD"), ("host", "HOST")):
        if settings_dict[setting]:
            params[key] = settings_dict[setting]
    if settings_dict["PORT"]:
        params["port"] = str(settings_dict["PORT"])
    return make_conninfo(**params)


# --- setup and checks ---------------------------------------------------------------------


def open_accounts(label: str, count: int) -> list[int]:
    """Open `count` accounts, each granted GRANT_AMOUNT through the service in 5 lots: one of
    each category, expiring at different times (the first drawn is the promotional one that
    expires soonest)."""
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from credits.models import EntryKind
    from credits.services import credit_account_open, credit_grant

    now = timezone.now()
    lots = [
        (EntryKind.GRANT, "promotional", timedelta(days=30)),
        (EntryKind.MONTHLY_GRANT, "monthly", timedelta(days=60)),
        (EntryKind.GRANT, "promotional", None),
        (EntryKind.MIGRATION, "migration", None),
        (EntryKind.PURCHASE, "paid", None),
    ]
    pks = []
    for index in range(count):
        user = get_user_model().objects.create_user(username=f"bench-{label}-{index}")
        account = credit_account_open(user=user)
        for number, (kind, category, expires_in) in enumerate(lots):
            credit_grant(
                account=account,
                amount=GRANT_AMOUNT / LOTS_PER_ACCOUNT,
                kind=kind,
                category=category,
                expires_at=now + expires_in if expires_in else None,
                idempotency_key=f"bench:grant:{label}:{index}:{number}",
                reason="benchmark",
            )
        pks.append(account.pk)
    return pks


def settle_raw_accounts(result: Result) -> list[str]:
    """Check the raw accounts lost no update, then give the off-ledger spends back."""
    from django.db import connection, transaction

    from credits.models import CreditAccount

    problems = []
    with transaction.atomic():
        for pk, applied in result.applied_by_account.items():
            spent = SPEND_AMOUNT * applied
            account = CreditAccount.objects.select_for_update().get(pk=pk)
            if account.balance != GRANT_AMOUNT - spent or account.total_spent != spent:
                problems.append(
                    f"raw account {pk}: balance {account.balance}, total_spent "
                    f"{account.total_spent} after {applied} spends of {SPEND_AMOUNT} "
                    f"(expected {GRANT_AMOUNT - spent} and {spent})"
                )
            with connection.cursor() as cursor:
                cursor.execute(
                    "UPDATE credits_creditaccount"
                    " SET balance = balance + %s, total_spent = total_spent - %s WHERE id = %s",
                    [spent, spent, pk],
                )
    return problems


def check_ledger(service_results: list[Result], raw_results: list[Result]) -> list[str]:
    """Every account used: balance == sum of entries, exact; service spends all booked."""
    from django.db import connection
    from django.db.models import Count, Q

    from credits.models import CreditAccount, EntryKind
    from credits.selectors import (
        accounts_off_their_holds,
        accounts_off_their_lots,
        accounts_out_of_balance,
        ledger_sum,
        lots_off_their_allocations,
    )

    problems = []
    expected_spends = applied_by_account(service_results)
    all_pks = set(expected_spends) | set(applied_by_account(raw_results))

    for account in CreditAccount.objects.filter(pk__in=all_pks).order_by("pk"):
        total = ledger_sum(account=account)
        if account.balance != total:
            problems.append(f"account {account.pk}: balance {account.balance} != entries {total}")
        if account.balance != account.total_earned - account.total_spent:
            problems.append(f"account {account.pk}: balance != total_earned - total_spent")
    for name, selector in (
        ("accounts_out_of_balance", accounts_out_of_balance),
        ("accounts_off_their_lots", accounts_off_their_lots),
        ("lots_off_their_allocations", lots_off_their_allocations),
        ("accounts_off_their_holds", accounts_off_their_holds),
    ):
        off = list(selector().values_list("pk", flat=True))
        if off:
            problems.append(f"{name}(): {off}")

    spends = dict(
        CreditAccount.objects.filter(pk__in=expected_spends)
        .annotate(spends=Count("entries", filter=Q(entries__kind=EntryKind.SPEND)))
        .values_list("pk", "spends")
    )
    for pk, applied in expected_spends.items():
        if spends.get(pk) != applied:
            problems.append(f"account {pk}: {spends.get(pk)} spend entries, {applied} spends")
        expected_balance = GRANT_AMOUNT - SPEND_AMOUNT * applied
        balance = CreditAccount.objects.values_list("balance", flat=True).get(pk=pk)
        if balance != expected_balance:
            problems.append(f"account {pk}: balance {balance}, expected {expected_balance}")

    # Entries of one account are written under its row lock, so in id order each one starts
    # where the previous one ended; a gap would be a lost or interleaved update.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM ("
            "  SELECT balance_before,"
            "         lag(balance_after) OVER (PARTITION BY account_id ORDER BY id) AS previous"
            "  FROM credits_credittransaction WHERE account_id = ANY(%s)"
            ") AS chain WHERE previous IS NOT NULL AND previous <> balance_before",
            [sorted(all_pks)],
        )
        (breaks,) = cursor.fetchone()
    if breaks:
        problems.append(f"{breaks} entries whose balance_before is not the previous balance_after")
    return problems


# --- report -------------------------------------------------------------------------------


def goal(scenario: str, method: str) -> float:
    return HOLD_GOAL if method == "hold" else GOALS[(scenario, method)]


def print_table(totals: dict[tuple[str, str], Result], rounds: list[Result]) -> None:
    header = ("scenario", "method", "ops", "seconds", "ops/s", "of raw", "goal")
    rows = []
    for scenario in SCENARIOS:
        raw = totals[(scenario, "raw")]
        for method in METHODS:
            result = totals[(scenario, method)]
            rows.append(
                (
                    scenario,
                    method,
                    f"{result.ops:,}",
                    f"{result.seconds:.2f}",
                    f"{result.ops_per_second:,.0f}",
                    "" if method == "raw" else f"{ratio(result, raw):.1%}",
                    "" if method == "raw" else f"{goal(scenario, method):.0%}",
                )
            )
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    aligns = ["<", "<", ">", ">", ">", ">", ">"]

    def line(row):
        cells = zip(row, aligns, widths, strict=True)
        return "  ".join(f"{cell:{align}{width}}" for cell, align, width in cells).rstrip()

    print(line(header))
    print("  ".join("-" * width for width in widths))
    for row in rows:
        print(line(row))
    print()
    print("hold = one hold and its capture (two calls) per op, against one raw spend")
    for scenario, description in SCENARIOS.items():
        raw_rounds = [x for x in rounds if (x.scenario, x.method) == (scenario, "raw")]
        for method in ("service", "hold"):
            result, raw = totals[(scenario, method)], totals[(scenario, "raw")]
            target = goal(scenario, method)
            verdict = "meets the goal" if ratio(result, raw) >= target else "BELOW the goal"
            per_round = [
                ratio(s, r)
                for s, r in zip(
                    [x for x in rounds if (x.scenario, x.method) == (scenario, method)],
                    raw_rounds,
                    strict=True,
                )
            ]
            spread = f"{min(per_round):.0%}-{max(per_round):.0%}"
            print(
                f"  {scenario:<6} ({description}): {method}/raw = {ratio(result, raw):.1%} "
                f"(goal {target:.0%}), {verdict}; rounds {', '.join(f'{x:.0%}' for x in per_round)}"
                f" (spread {spread})"
            )
    for result in totals.values():
        if result.refused:
            print(f"  note: {result.scenario}/{result.method}: {result.refused:,} spends refused")


def run(args: argparse.Namespace) -> int:
    from django.conf import settings
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        (server_version,) = cursor.fetchone()
    budget = f"{args.ops:,} spends" if args.ops is not None else f"{args.seconds:g} s"
    print(
        f"bench_spend: {args.threads} threads, each its own connection; {budget} per method "
        f"and scenario in {args.rounds} alternating rounds, each after {args.warmup:g} s of "
        f"warm-up; spends of {SPEND_AMOUNT}"
    )
    print(
        f"PostgreSQL {server_version}, scratch database {connection.settings_dict['NAME']}, "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs"
    )
    path = (
        "the one-round-trip fast path"
        if settings.CREDITS_POSTGRESQL_FAST_PATH
        else "the portable path (UPDATE, then the ORM's INSERT)"
    )
    print(f"service spends: {path} (CREDITS_POSTGRESQL_FAST_PATH)")
    print()

    conninfo = raw_conninfo()
    accounts = {
        (scenario, method): open_accounts(
            f"{scenario}-{method}", 1 if scenario == "hot" else args.threads
        )
        for scenario in SCENARIOS
        for method in METHODS
    }
    run_tag = f"{os.getpid()}-{time.time_ns()}"
    rounds: list[Result] = []
    raw_problems: list[str] = []
    for scenario in SCENARIOS:
        for round_index in range(args.rounds):
            # service, hold, raw, then raw, hold, service: a steady drift favours none.
            order = METHODS if round_index % 2 == 0 else METHODS[::-1]
            for method in order:
                print(
                    f"measuring {scenario} / {method}, round {round_index + 1}/{args.rounds}",
                    file=sys.stderr,
                    flush=True,
                )
                if method == "service":
                    session_for = service_sessions(f"{run_tag}-{scenario}-{round_index}")
                elif method == "hold":
                    session_for = hold_sessions(f"{run_tag}-{scenario}-{round_index}")
                else:
                    session_for = raw_sessions(conninfo)
                bench = Run(
                    threads=args.threads,
                    warmup=args.warmup,
                    seconds=args.seconds / args.rounds,
                    ops=None if args.ops is None else share(args.ops, args.rounds, round_index),
                )
                result = bench.measure(
                    scenario=scenario,
                    method=method,
                    account_pks=accounts[(scenario, method)],
                    session_for=session_for,
                )
                rounds.append(result)
                if method == "raw":
                    raw_problems += settle_raw_accounts(result)

    totals = {
        (scenario, method): Result.total(
            [r for r in rounds if (r.scenario, r.method) == (scenario, method)]
        )
        for scenario in SCENARIOS
        for method in METHODS
    }
    print_table(totals, rounds)
    print()
    service_results = [r for r in rounds if r.method != "raw"]
    raw_results = [r for r in rounds if r.method == "raw"]
    problems = raw_problems + check_ledger(service_results, raw_results)
    used = sum(len(pks) for pks in accounts.values())
    booked = sum(sum(r.applied_by_account.values()) for r in service_results)
    off_ledger = sum(sum(r.applied_by_account.values()) for r in raw_results)
    if problems:
        print("ledger: INCONSISTENT")
        for problem in problems:
            print(f"  {problem}")
        return 1
    print(
        f"ledger: consistent. {used} accounts used, each balance == sum of its entries "
        "(exact Decimal) == total_earned - total_spent."
    )
    print(
        f"  service: {booked:,} spends (warm-up included), one spend entry each; balances "
        "exact; balance_before/balance_after chain unbroken."
    )
    print(
        f"  raw: {off_ledger:,} off-ledger spends; balances exact (no lost update), then "
        "given back, so the ledger matches."
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_in_scratch_database("bench_spend", lambda scratch: run(args))


if __name__ == "__main__":
    sys.exit(main())
