"""A real `migrate_credits --execute` killed with SIGKILL mid-run, then run again: every user
migrated exactly once and the totals exact (PostgreSQL: real processes, real commits)."""

import os
import signal
import subprocess
import time
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.db.models import Count, Sum

from billing.models import LegacyBilling
from credits.models import CreditTransaction, EntryKind
from migrations_app.models import MigrationStatus, UserMigration
from tests.subprocesses import python

ROOT = Path(__file__).resolve().parents[2]
USERS = 3000

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def command(tmp_path):
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    if db["PASSWORD"]:
        url = url.replace("@", f":{db['PASSWORD']}@", 1)
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "project.settings"}
    env.pop("CELERY_BROKER_URL", None)
    args = [*python(), "manage.py", "migrate_credits", "--execute", "--yes"]
    args += ["--source", "usd_balance", "--batch-size", "10", f"--backup-dir={tmp_path}"]
    return args, env


def completed():
    return UserMigration.objects.filter(status=MigrationStatus.COMPLETED).count()


def test_a_killed_execute_finishes_on_the_next_run_with_every_user_once(tmp_path):
    # given seeded legacy balances, and what they are worth
    call_command("seed_legacy", users=USERS, seed=7, sources="usd_balance", verbosity=0)
    rates = {"USD": settings.CREDITS_RATE_USD, "UAH": settings.CREDITS_RATE_UAH}
    worth = {
        row.user_id: row.balance_usd * rates["USD"] + row.balance_uah * rates["UAH"]
        for row in LegacyBilling.objects.all()
    }
    valid = {user_id for user_id, value in worth.items() if value >= 0}
    breaking = {
        row.user_id
        for row in LegacyBilling.objects.all()
        if row.balance_usd < 0 or row.balance_uah < 0
    }
    args, env = command(tmp_path)

    # when the first run is killed once a few batches have committed
    process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while completed() < 300 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done_at_kill = completed()
    assert process.returncode == -signal.SIGKILL
    assert 0 < done_at_kill < len(valid - breaking), "the run was not stopped mid-way"

    # and run again to the end
    finished = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True)

    # then: exit 1 only for the seeded rule breakers, each recorded FAILED
    assert finished.returncode == (1 if breaking else 0), finished.stdout + finished.stderr
    statuses = dict(UserMigration.objects.values_list("status").annotate(n=Count("id")).order_by())
    assert statuses == {
        MigrationStatus.COMPLETED: len(worth) - len(breaking),
        **({MigrationStatus.FAILED: len(breaking)} if breaking else {}),
    }
    # every user's migration entry written exactly once
    per_account = (
        CreditTransaction.objects.filter(kind=EntryKind.MIGRATION)
        .values("account__user_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    assert {row["n"] for row in per_account} == {1}
    granted = dict(
        CreditTransaction.objects.filter(kind=EntryKind.MIGRATION).values_list(
            "account__user_id", "amount"
        )
    )
    expected = {
        user_id: value.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
        for user_id, value in worth.items()
        if user_id not in breaking and value.quantize(Decimal("0.01")) > 0
    }
    assert granted == expected
    # totals exact to the cent, remainders included
    rows = UserMigration.objects.filter(status=MigrationStatus.COMPLETED)
    sums = rows.aggregate(granted=Sum("initial_credits_granted"), rest=Sum("rounding_remainder"))
    assert sums["granted"] + sums["rest"] == sum(worth[u] for u in worth if u not in breaking)
    assert (
        not LegacyBilling.objects.filter(user_id__in=valid - breaking)
        .exclude(balance_usd=0, balance_uah=0)
        .exists()
    )
    verify = subprocess.run(
        [*args[: args.index("migrate_credits") + 1], "--verify", "--source", "usd_balance"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
