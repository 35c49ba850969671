"""Users per second migrated by the batched engine against a naive per-user ORM loop, and the
engine's peak memory at two sizes.

Three scenarios run in one go, each in a fresh scratch database seeded with
`seed_legacy --sources usd_balance` and trimmed to exactly the number of `user_billing` rows
asked for (the seed gives about 59% of its users a row; the surplus rows past the N-th user are
deleted, the surplus users stay, without legacy billing):

- naive (--naive-users, 5,000): in this process, one transaction per user through the ORM, the
  loop one would write by hand. For each `LegacyBilling` row: get or create the UserProfile and
  the CreditAccount, compute usd x rate_usd + uah x rate_uah quantized to 0.01, call
  `credits.services.credit_grant(kind="migration", ...)` with an idempotency key, zero the
  legacy row with save(), create the UserMigration row. It writes what the engine writes
  (same key, same UserMigration fields, profile marked migrated; a negative balance is a FAILED
  row and no entry; a zero balance no entry), so `migrate_credits --verify` holds it to the same
  account. Timed: the loop only.
- engine, small (--small-users, 10,000) and engine (--users, 100,000):
  `manage.py migrate_credits --execute --yes --source usd_balance --format json --backup-dir
  <tmp> --no-notify` as a child process against the scratch database (no emails: the naive
  loop sends none, and with a broker they are a worker's job, not the migration's). Timed: the
  child's wall clock, Django start-up and the CSV backup included (the MigrationRun's own span
  is printed beside it). Its peak memory is the child's ru_maxrss read with os.wait4() on that
  child alone, so one run's peak never hides in another's.

After every scenario `migrate_credits --verify --source usd_balance` runs as a child too; the
figures are printed only if every verification is clean and every user ended COMPLETED or, for
the seed's rule breakers (negative balances, 0.2%), FAILED. Otherwise it exits 1 and prints
what is wrong instead. Nothing asserts a time: the goal lines say whether a goal is met, and
the exit status stays 0 either way. It exits 2 on a usage error.

The scratch databases are created the way Django's test runner does it (`project.settings_test`,
migrations applied, then cloned from that template per scenario) and dropped at the end, also
after a failure or Ctrl-C; the database DATABASE_URL names is never written to. The children
get DATABASE_URL pointed at the scratch database, DEBUG off, and no LEGACY_DATABASE_URL (so
the legacy tables are the scratch database's, never another server's). Run from the project
root; the defaults take several minutes:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python benchmarks/bench_migrate.py [--users 100000] [--small-users 10000] \\
        [--naive-users 5000] [--seed 1] [--batch-size N]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote, urlsplit

PROJECT_ROOT = Path(__file__).resolve().parent.parent
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

from benchmarks.scratch import run_in_scratch_database  # noqa: E402

SOURCE = "usd_balance"
SPEED_GOAL = 15.0  # engine users/s >= 15 x naive users/s
MEMORY_GOAL = 1.5  # peak(--users) < 1.5 x peak(--small-users)
MAX_USERS = 10_000_000
# Share of seeded users with a user_billing row: 98% have legacy data, 60% of those are in it.
BILLING_SHARE = 0.98 * 0.60
NAIVE_DESCRIPTION = "Migrated from USD/UAH balances in user_billing"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Users per second through `migrate_credits --execute` (usd_balance) against "
        "a naive one-transaction-per-user ORM loop, and the engine's peak memory at two sizes, "
        "on PostgreSQL (DATABASE_URL), in scratch databases.",
    )
    parser.add_argument(
        "--users",
        type=int,
        default=100_000,
        help="users the main engine run migrates; its peak memory is held against "
        "--small-users' (default: 100000)",
    )
    parser.add_argument(
        "--small-users",
        type=int,
        default=10_000,
        help="users the small engine run migrates (default: 10000)",
    )
    parser.add_argument(
        "--naive-users",
        type=int,
        default=5_000,
        help="users the naive loop migrates; it is slow (default: 5000)",
    )
    parser.add_argument(
        "--seed", type=int, default=1, help="seed_legacy --seed for every scenario (default: 1)"
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        help="migrate_credits --batch-size (default: the command's, CREDITS_MIGRATION_BATCH_SIZE)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        help="migrate_credits --workers: batches in flight at once (default: the command's, "
        "CREDITS_MIGRATION_WORKERS)",
    )
    args = parser.parse_args(argv)
    for name in ("users", "small_users", "naive_users"):
        if not 0 < getattr(args, name) <= MAX_USERS:
            parser.error(f"--{name.replace('_', '-')} must be between 1 and {MAX_USERS:,}")
    if args.small_users >= args.users:
        parser.error("--small-users must be below --users (their peak memory is compared)")
    if args.seed < 0:
        parser.error("--seed must be 0 or more")
    if args.batch_size is not None and args.batch_size < 1:
        parser.error("--batch-size must be at least 1")
    if args.workers is not None and not 1 <= args.workers <= 16:
        parser.error("--workers must be between 1 and 16")
    return args


class BenchFailure(Exception):
    """A scenario did not end as a correct migration; its figures must not be reported."""


@dataclass
class Measured:
    scenario: str
    method: str  # "naive" or "engine"
    users: int
    seconds: float
    migrated: int
    failed: int
    verification: str
    run_seconds: float | None = None  # the MigrationRun's started_at .. finished_at
    cpu_seconds: float | None = None  # the child's user + system time
    peak_rss_kib: int | None = None
    seeding: dict[str, int] = field(default_factory=dict)

    @property
    def users_per_second(self) -> float:
        return self.users / self.seconds if self.seconds else 0.0


# --- scratch databases --------------------------------------------------------------------


class ScratchDatabases:
    """A migrated template database, created like the test runner's, and clones of it."""

    def __init__(self, template_name: str):
        self.template_name = template_name

    @contextmanager
    def clone(self, suffix: str) -> Iterator[str]:
        """A fresh copy of the template; the default connection points at it meanwhile."""
        from django.db import connection

        connection.creation.clone_test_db(suffix=suffix, verbosity=0, autoclobber=True)
        name = connection.creation.get_test_db_clone_settings(suffix)["NAME"]
        connection.close()
        connection.settings_dict["NAME"] = name
        try:
            yield name
        finally:
            connection.close()
            connection.settings_dict["NAME"] = self.template_name
            connection.creation.destroy_test_db(verbosity=0, suffix=suffix)


def child_environment(database_name: str) -> dict[str, str]:
    """The environment of a manage.py child: the scratch database, DEBUG off, no legacy DB."""
    env = dict(os.environ)
    url = urlsplit(env["DATABASE_URL"])
    env["DATABASE_URL"] = url._replace(path="/" + quote(database_name)).geturl()
    env["DJANGO_SETTINGS_MODULE"] = "project.settings_test"
    env["DEBUG"] = "false"
    env.pop("LEGACY_DATABASE_URL", None)
    return env


# --- children -----------------------------------------------------------------------------


@dataclass
class Child:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    cpu_seconds: float
    peak_rss_kib: int

    def json(self) -> dict:
        try:
            return json.loads(self.stdout)
        except json.JSONDecodeError:
            raise BenchFailure(f"{self.describe()} printed no JSON report") from None

    def describe(self) -> str:
        tail = "\n".join(self.stderr.strip().splitlines()[-15:])
        command = " ".join(self.argv[1:])
        return f"`{command}` (exit {self.returncode})" + (f":\n{tail}" if tail else "")


def run_manage(arguments: list[str], env: dict[str, str]) -> Child:
    """Run manage.py in a child; its own rusage (peak RSS, CPU) comes from os.wait4()."""
    argv = [sys.executable, "manage.py", *arguments]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(
            argv, cwd=PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err
        )
        try:
            _, status, usage = os.wait4(process.pid, 0)
        except BaseException:
            process.kill()
            process.wait()
            raise
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    # Linux reports ru_maxrss in KiB, macOS in bytes.
    peak = usage.ru_maxrss // 1024 if sys.platform == "darwin" else usage.ru_maxrss
    return Child(
        argv=argv,
        returncode=process.returncode,
        stdout=stdout,
        stderr=stderr,
        seconds=seconds,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        peak_rss_kib=peak,
    )


def verify(env: dict[str, str]) -> str:
    """`migrate_credits --verify`; a short summary if clean, BenchFailure if not."""
    child = run_manage(["migrate_credits", "--verify", "--source", SOURCE, "--format", "json"], env)
    result = child.json() if child.stdout.strip() else {}
    if child.returncode != 0 or not result.get("clean"):
        problems = [
            f"  user {item['user_id']} [{item['source']}]: {item['problem']}"
            for item in result.get("discrepancies", [])[:10]
        ]
        raise BenchFailure(f"verification is not clean: {child.describe()}\n" + "\n".join(problems))
    users = result["users"].get(SOURCE, {})
    return "clean (" + ", ".join(f"{count:,} {status}" for status, count in users.items()) + ")"


# --- seeding ------------------------------------------------------------------------------


def seed_users(count: int, seed: int) -> dict[str, int]:
    """Seed until user_billing has `count` rows, then drop the rows past the count-th user."""
    from django.db import connection
    from django.db.models import Q

    from billing.management.legacy_seed import seed_legacy
    from billing.models import LegacyBilling

    seeded, next_seed = 0, seed
    while (have := LegacyBilling.objects.count()) < count:
        # A 2% margin and a hundred: one pass is enough but for a freak draw.
        batch = math.ceil((count - have) / BILLING_SHARE * 1.02) + 100
        seed_legacy(users=batch, seed=next_seed, sources=[SOURCE])
        seeded, next_seed = seeded + batch, next_seed + 1
    cut = LegacyBilling.objects.order_by("user_id").values_list("user_id", flat=True)[count - 1]
    LegacyBilling.objects.filter(user_id__gt=cut).delete()
    negative = LegacyBilling.objects.filter(Q(balance_usd__lt=0) | Q(balance_uah__lt=0)).count()
    zero = LegacyBilling.objects.filter(balance_usd=0, balance_uah=0).count()
    # Fresh statistics and clean buffers, so the measured run neither plans on an empty table
    # nor pays for flushing what seeding wrote.
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
        cursor.execute("CHECKPOINT")
    return {"seeded": seeded, "billing": count, "negative": negative, "zero": zero}


STARTED = time.monotonic()


def progress(message: str) -> None:
    elapsed = time.monotonic() - STARTED
    print(f"bench_migrate [{elapsed:6.0f} s]: {message}", file=sys.stderr, flush=True)


# --- the two methods ----------------------------------------------------------------------


def naive_migrate() -> tuple[int, int, float]:
    """Migrate every user_billing row one user per transaction; (migrated, failed, seconds)."""
    from django.conf import settings
    from django.db import transaction
    from django.utils import timezone

    from billing.models import LegacyBilling, UserProfile
    from credits.models import CENT, CreditAccount, EntryKind
    from credits.services import credit_grant
    from migrations_app.models import MigrationStatus, UserMigration

    rates = {"USD": settings.CREDITS_RATE_USD, "UAH": settings.CREDITS_RATE_UAH}
    migrated = failed = 0
    started = time.perf_counter()
    for row in LegacyBilling.objects.order_by("user_id").iterator(chunk_size=2000):
        with transaction.atomic():
            now = timezone.now()
            rollback_data = {
                "balance_usd": str(row.balance_usd),
                "balance_uah": str(row.balance_uah),
                "kept_legacy": False,
            }
            if row.balance_usd < 0 or row.balance_uah < 0:
                UserMigration.objects.create(
                    user_id=row.user_id,
                    source=SOURCE,
                    status=MigrationStatus.FAILED,
                    error_message=f"negative legacy balance ({row.balance_usd} USD, "
                    f"{row.balance_uah} UAH)",
                    rollback_data=rollback_data,
                    attempts=1,
                )
                failed += 1
                continue
            UserProfile.objects.get_or_create(
                user_id=row.user_id, defaults={"migration_completed_at": now}
            )
            account, _ = CreditAccount.objects.get_or_create(user_id=row.user_id)
            amounts = {
                currency: amount
                for currency, amount in (("USD", row.balance_usd), ("UAH", row.balance_uah))
                if amount
            }
            exact = sum(
                (amount * rates[currency] for currency, amount in amounts.items()), Decimal(0)
            )
            credits = exact.quantize(CENT, rounding=settings.CREDITS_ROUNDING)
            if credits > 0:
                credit_grant(
                    account=account,
                    amount=credits,
                    idempotency_key=f"migration:{SOURCE}:{row.user_id}:0",
                    kind=EntryKind.MIGRATION,
                    source="migration",
                    description=NAIVE_DESCRIPTION,
                    migrated_from=SOURCE,
                    metadata={
                        "legacy_amounts": {key: str(value) for key, value in amounts.items()},
                        "rates": {key: str(rates[key]) for key in amounts},
                        "rounding_remainder": str(exact - credits),
                    },
                )
            row.balance_usd = row.balance_uah = Decimal("0")
            row.save()
            single = len(amounts) == 1
            currency = next(iter(amounts)) if single else ("MIXED" if amounts else "")
            UserMigration.objects.create(
                user_id=row.user_id,
                source=SOURCE,
                status=MigrationStatus.COMPLETED,
                legacy_amount=amounts[currency] if single else None,
                legacy_currency=currency,
                rate=rates[currency] if single else None,
                legacy_amounts={key: str(value) for key, value in amounts.items()},
                rates={key: str(rates[key]) for key in amounts},
                initial_credits_granted=credits,
                rounding_remainder=exact - credits,
                rollback_data=rollback_data,
                attempts=1,
                migration_date=now,
            )
            migrated += 1
    return migrated, failed, time.perf_counter() - started


def engine_arguments(backup_dir: str, batch_size: int | None, workers: int | None) -> list[str]:
    arguments = ["migrate_credits", "--execute", "--yes", "--source", SOURCE]
    # The naive loop sends no emails, so neither does the engine: with a broker the emails are
    # another process's work, and eagerly (no broker) they would be timed as migration.
    arguments += ["--format", "json", "--backup-dir", backup_dir, "--no-notify"]
    if batch_size is not None:
        arguments += ["--batch-size", str(batch_size)]
    if workers is not None:
        arguments += ["--workers", str(workers)]
    return arguments


# --- scenarios ----------------------------------------------------------------------------


def check_outcome(label: str, users: int, expected_failed: int) -> tuple[int, int]:
    """Every user COMPLETED, but the seed's rule breakers FAILED; (completed, failed)."""
    from django.db.models import Count

    from migrations_app.models import MigrationStatus, UserMigration

    statuses = dict(
        UserMigration.objects.filter(source=SOURCE)
        .values("status")
        .annotate(count=Count("pk"))
        .values_list("status", "count")
    )
    completed = statuses.pop(MigrationStatus.COMPLETED, 0)
    failed = statuses.pop(MigrationStatus.FAILED, 0)
    if completed + failed != users or failed != expected_failed or statuses:
        raise BenchFailure(
            f"{label}: UserMigration rows {completed} COMPLETED, {failed} FAILED, other "
            f"{statuses or 'none'}; expected {users - expected_failed} COMPLETED and "
            f"{expected_failed} FAILED (negative legacy balances)"
        )
    return completed, failed


def naive_scenario(scratch: ScratchDatabases, args: argparse.Namespace) -> Measured:
    label = f"naive ORM loop, {args.naive_users:,} users"
    with scratch.clone("naive") as name:
        progress(f"{label}: seeding")
        seeding = seed_users(args.naive_users, args.seed)
        progress(f"{label}: migrating, one transaction per user")
        migrated, failed, seconds = naive_migrate()
        completed, _ = check_outcome(label, args.naive_users, seeding["negative"])
        if (completed, failed) != (migrated, seeding["negative"]):
            raise BenchFailure(f"{label}: the loop counted {migrated} migrated, {failed} failed")
        progress(f"{label}: verifying")
        verification = verify(child_environment(name))
    return Measured(
        scenario="naive",
        method="naive",
        users=args.naive_users,
        seconds=seconds,
        migrated=migrated,
        failed=failed,
        verification=verification,
        seeding=seeding,
    )


def engine_scenario(
    scratch: ScratchDatabases, args: argparse.Namespace, *, scenario: str, users: int
) -> Measured:
    from migrations_app.models import MigrationRun

    label = f"engine, {users:,} users"
    with scratch.clone(scenario) as name:
        progress(f"{label}: seeding")
        seeding = seed_users(users, args.seed)
        env = child_environment(name)
        backup_dir = tempfile.mkdtemp(prefix="bench_migrate_backup_")
        try:
            progress(f"{label}: migrate_credits --execute")
            child = run_manage(engine_arguments(backup_dir, args.batch_size, args.workers), env)
        finally:
            shutil.rmtree(backup_dir, ignore_errors=True)
        expected_failed = seeding["negative"]
        # Exit 1 is the command's answer to FAILED users; the seed's rule breakers are some.
        if child.returncode != (1 if expected_failed else 0):
            raise BenchFailure(f"{label}: {child.describe()}")
        report = child.json()
        outcomes = report.get("users", {})
        migrated, failed = outcomes.get("migrated", 0), outcomes.get("failed", 0)
        stray = [
            item
            for item in report.get("failures", [])
            if "negative legacy balance" not in item["error"]
        ]
        if (migrated, failed) != (users - expected_failed, expected_failed) or stray:
            raise BenchFailure(
                f"{label}: the report says {outcomes}; expected {users - expected_failed} "
                f"migrated and {expected_failed} failed"
                + (f"; unexpected failures: {stray[:5]}" if stray else "")
            )
        check_outcome(label, users, expected_failed)
        run = MigrationRun.objects.get(pk=report["run_id"])
        if run.processed != users:
            raise BenchFailure(f"{label}: run {run.pk} processed {run.processed} users")
        progress(f"{label}: verifying")
        verification = verify(env)
    return Measured(
        scenario=scenario,
        method="engine",
        users=users,
        seconds=child.seconds,
        migrated=migrated,
        failed=failed,
        verification=verification,
        run_seconds=(run.finished_at - run.started_at).total_seconds(),
        cpu_seconds=child.cpu_seconds,
        peak_rss_kib=child.peak_rss_kib,
        seeding=seeding,
    )


# --- report -------------------------------------------------------------------------------


def mib(kib: int | None) -> str:
    return f"{kib / 1024:,.1f}" if kib is not None else "-"


def print_table(results: list[Measured]) -> None:
    naive = results[0]
    header = (
        "scenario",
        "users",
        "seconds",
        "run s",
        "child CPU s",
        "users/s",
        "engine/naive",
        "peak RSS MiB",
    )
    rows = []
    for result in results:
        is_engine = result.method == "engine"
        rows.append(
            (
                f"{result.method}" + (f" ({result.scenario})" if is_engine else ""),
                f"{result.users:,}",
                f"{result.seconds:.2f}",
                f"{result.run_seconds:.2f}" if result.run_seconds is not None else "-",
                f"{result.cpu_seconds:.2f}" if result.cpu_seconds is not None else "-",
                f"{result.users_per_second:,.0f}",
                f"{result.users_per_second / naive.users_per_second:.1f}x" if is_engine else "1x",
                mib(result.peak_rss_kib),
            )
        )
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    aligns = ["<", ">", ">", ">", ">", ">", ">", ">"]

    def line(row):
        cells = zip(row, aligns, widths, strict=True)
        return "  ".join(f"{cell:{align}{width}}" for cell, align, width in cells).rstrip()

    print(line(header))
    print("  ".join("-" * width for width in widths))
    for row in rows:
        print(line(row))


def print_goals(naive: Measured, small: Measured, large: Measured) -> None:
    print()
    print(f"goal: engine >= {SPEED_GOAL:g}x naive")
    for engine in (large, small):
        speedup = engine.users_per_second / naive.users_per_second
        verdict = "meets the goal" if speedup >= SPEED_GOAL else "BELOW the goal"
        print(
            f"  engine, {engine.users:,} users: {engine.users_per_second:,.0f} users/s = "
            f"{speedup:.1f}x naive ({naive.users_per_second:,.0f} users/s), {verdict}"
        )
    print(f"goal: peak({large.users:,}) < {MEMORY_GOAL:g} x peak({small.users:,})")
    growth = large.peak_rss_kib / small.peak_rss_kib
    verdict = "meets the goal" if growth < MEMORY_GOAL else "BEYOND the goal"
    print(
        f"  peak RSS {mib(large.peak_rss_kib)} MiB against {mib(small.peak_rss_kib)} MiB: "
        f"{growth:.2f}x, {verdict}"
    )


def print_checks(results: list[Measured]) -> None:
    print()
    print("checks (figures are printed only when all hold):")
    for result in results:
        seeding = result.seeding
        print(
            f"  {result.method} ({result.scenario}): {result.migrated:,} migrated, "
            f"{result.failed:,} failed (negative legacy balances: {seeding['negative']:,}); "
            f"zero balances {seeding['zero']:,}; users seeded {seeding['seeded']:,} for "
            f"{seeding['billing']:,} user_billing rows; verify {result.verification}"
        )


def run(args: argparse.Namespace, scratch: ScratchDatabases) -> int:
    import django
    from django.conf import settings
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        (server_version,) = cursor.fetchone()
        cursor.execute("SHOW synchronous_commit")
        (synchronous_commit,) = cursor.fetchone()
    batch_size = args.batch_size or settings.CREDITS_MIGRATION_BATCH_SIZE
    workers = args.workers or settings.CREDITS_MIGRATION_WORKERS
    print(
        f"bench_migrate: source {SOURCE}; engine batch size {batch_size}, {workers} batch "
        f"worker{'s' if workers > 1 else ''} (connections); rates USD="
        f"{settings.CREDITS_RATE_USD}, UAH={settings.CREDITS_RATE_UAH} "
        f"({settings.CREDITS_ROUNDING}); seed {args.seed}"
    )
    print(
        f"  naive: {args.naive_users:,} users, in this process, one transaction per user; "
        "timed: the loop"
    )
    print(
        f"  engine: {args.small_users:,} and {args.users:,} users, each `manage.py "
        f"{' '.join(engine_arguments('<tmp>', args.batch_size, args.workers))}` in a child; "
        "timed: the child's wall clock (start-up and CSV backup included; 'run s' is the "
        "MigrationRun's own span); peak RSS: the child's ru_maxrss (os.wait4)"
    )
    print(
        f"PostgreSQL {server_version} (synchronous_commit {synchronous_commit}), a fresh "
        f"scratch database per scenario ({scratch.template_name}_*), Python "
        f"{sys.version.split()[0]}, Django {django.get_version()}, {os.cpu_count()} CPUs"
    )
    print(flush=True)

    try:
        naive = naive_scenario(scratch, args)
        small = engine_scenario(scratch, args, scenario="small", users=args.small_users)
        large = engine_scenario(scratch, args, scenario="main", users=args.users)
    except BenchFailure as failure:
        print(f"migration: BROKEN, so no figures are reported.\n  {failure}")
        return 1
    results = [naive, small, large]
    print_table(results)
    print_goals(naive, small, large)
    print_checks(results)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_in_scratch_database(
        "bench_migrate", lambda scratch: run(args, ScratchDatabases(scratch))
    )


if __name__ == "__main__":
    sys.exit(main())
