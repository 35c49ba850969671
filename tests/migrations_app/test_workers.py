"""Two real Celery workers over Redis migrate 20,000 seeded users against PostgreSQL, and a
second run survives one of them killed with SIGKILL mid-batch.

The runs are queued by a real `migrate_credits --execute --async` (broker configured, not
eager); the workers are `celery -A project worker` processes on a queue of their own, pointed
at the test database. What each user must get comes from a dry run taken before (the plan),
so the check is that the fan-out migrated every user once, exactly as planned: per user and
source, on the ledger, in the run's totals, and by `--verify`. The killed worker's batch goes
back to the queue (acks_late, Redis visibility timeout) and the other worker does it.
"""

import io
import json
import os
import signal
import subprocess
import time
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import Count
from django.utils import timezone

from credits.models import CreditTransaction, EntryKind
from migrations_app import engine
from migrations_app.engine.report import Outcome
from migrations_app.models import (
    BatchStatus,
    MigrationBatch,
    MigrationRun,
    MigrationStatus,
    RunStatus,
    UserMigration,
)
from migrations_app.sources import Context
from tests.subprocesses import python

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ["usd_balance", "user_fields"]
USERS, MORE_USERS = 20_000, 4_000
BATCH_SIZE = 500
VISIBILITY_TIMEOUT = 10
RUN_DEADLINE = 240

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]


def database_url() -> str:
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    if db["PASSWORD"]:
        url = url.replace("@", f":{db['PASSWORD']}@", 1)
    return url


@pytest.fixture
def environment(redis_url, tmp_path):
    """The environment of the workers and of the command that queues runs: real broker, a
    queue nobody else reads, a short visibility timeout so a dead worker's task returns."""
    return {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "CELERY_BROKER_URL": redis_url,
        "CELERY_TASK_DEFAULT_QUEUE": f"credits-test-{uuid.uuid4().hex[:12]}",
        "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
        "CELERY_UNACKED_RESTORE_INTERVAL": "1",
        "CREDITS_MIGRATION_BACKUP_DIR": str(tmp_path),
        "EMAIL_URL": "dummymail://",
    }


class Workers:
    def __init__(self, environment):
        self.environment = environment
        self.processes = {}

    def start(self, name):
        args = [*python(), "-m", "celery", "-A", "project", "worker", "--pool=solo"]
        args += ["-n", f"{name}@%h", "-Q", self.environment["CELERY_TASK_DEFAULT_QUEUE"]]
        args += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
        args += ["--loglevel=WARNING"]
        self.processes[name] = subprocess.Popen(
            args,
            cwd=ROOT,
            env=self.environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )

    def kill(self, name):
        process = self.processes.pop(name)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return process

    def stop(self):
        errors = []
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            try:
                errors.append(process.communicate(timeout=30)[1])
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                errors.append(process.communicate()[1])
        self.processes = {}
        return "\n".join(errors)


@pytest.fixture
def workers(environment):
    pool = Workers(environment)
    yield pool
    pool.stop()


def queue_run(environment) -> int:
    """`migrate_credits --execute --async` in its own process: it queues on the broker."""
    args = [*python(), "manage.py", "migrate_credits", "--execute", "--async", "--yes"]
    args += ["--batch-size", str(BATCH_SIZE), "--format", "json"]
    args += [arg for name in SOURCES for arg in ("--source", name)]
    done = subprocess.run(args, cwd=ROOT, env=environment, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)["run_id"]


def wait_for(run_id, until, workers) -> MigrationRun:
    deadline = time.monotonic() + RUN_DEADLINE
    while time.monotonic() < deadline:
        run = MigrationRun.objects.get(pk=run_id)
        if until(run):
            return run
        time.sleep(0.02)
    pytest.fail(
        f"run {run_id} did not get there in time: {run.status} {run.processed}/"
        f"{run.total}\n{workers.stop()}"
    )


def finished(run):
    return run.status != RunStatus.RUNNING


def plan() -> dict:
    """What each (user, source) must get, from a dry run (read only) of the same parameters."""
    outcomes = {}

    def keep(outcome):
        outcomes[(outcome.user_id, outcome.source)] = outcome

    context = Context(rates={"USD": Decimal("1.0"), "UAH": Decimal("0.024")}, now=timezone.now())
    engine.plan_users(SOURCES, context, engine.Selection(), on_user=keep)
    return outcomes


def assert_migrated_as_planned(run, planned, migrated_before=None):
    """The run did what the plan said, and everyone is migrated once, on every count."""
    migrated_before = migrated_before or {}
    to_migrate = {key: item for key, item in planned.items() if item.outcome == Outcome.MIGRATE}
    failing = {key for key, item in planned.items() if item.outcome == Outcome.FAILED}
    assert to_migrate, "the seed planned nobody"
    everyone = {**migrated_before, **to_migrate}
    # every batch done, every user and source counted once
    assert not MigrationBatch.objects.filter(run=run).exclude(status=BatchStatus.DONE).exists()
    assert (run.processed, run.total) == (len(planned), len(planned))
    assert run.status == (RunStatus.COMPLETED_WITH_ERRORS if failing else RunStatus.COMPLETED)
    # per user and source: as planned
    rows = {
        (row.user_id, row.source): row
        for row in UserMigration.objects.only(
            "user_id", "source", "status", "initial_credits_granted"
        )
    }
    completed = {key for key, row in rows.items() if row.status == MigrationStatus.COMPLETED}
    assert completed == set(everyone)
    assert {key for key, row in rows.items() if row.status == MigrationStatus.FAILED} == failing
    assert all(rows[key].initial_credits_granted == item.credits for key, item in everyone.items())
    # on the ledger: one migration entry per user and source with credits, of those credits
    entries = (
        CreditTransaction.objects.filter(kind=EntryKind.MIGRATION)
        .values("account__user_id", "migrated_from")
        .annotate(n=Count("id"))
        .order_by()
    )
    assert {row["n"] for row in entries} == {1}
    granted = {
        (user_id, source): amount
        for user_id, source, amount in CreditTransaction.objects.filter(
            kind=EntryKind.MIGRATION
        ).values_list("account__user_id", "migrated_from", "amount")
    }
    assert granted == {key: item.credits for key, item in everyone.items() if item.credits > 0}
    # in the run's totals: this run's users only
    assert Decimal(run.stats["credits"]) == sum(
        (item.credits for item in to_migrate.values()), Decimal("0.00")
    )
    assert run.stats["users"]["migrated"] == len(to_migrate)
    assert run.stats["users"].get("failed", 0) == len(failing)
    # --verify: clean
    out = io.StringIO()
    sources = [arg for name in SOURCES for arg in ("--source", name)]
    call_command("migrate_credits", "--verify", *sources, stdout=out)
    assert "Verified: no discrepancies." in out.getvalue()
    return everyone


def test_two_workers_migrate_20000_users_once_even_when_one_is_killed(environment, workers):
    # given: 20,000 seeded users and what a dry run says each must get
    call_command(
        "seed_legacy", users=USERS, seed=31, sources="usd_balance,user_fields", verbosity=0
    )
    planned = plan()
    workers.start("w1")
    workers.start("w2")

    # when: a run is queued for the two workers
    run_id = queue_run(environment)
    run = wait_for(run_id, finished, workers)

    # then
    migrated = assert_migrated_as_planned(run, planned)
    assert set(MigrationBatch.objects.filter(run=run).values_list("worker", flat=True)) == {
        f"w1@{os.uname().nodename}",
        f"w2@{os.uname().nodename}",
    }

    # given: more users, a second run, and one worker killed while it holds a batch
    call_command(
        "seed_legacy", users=MORE_USERS, seed=32, sources="usd_balance,user_fields", verbosity=0
    )
    planned = plan()
    second_id = queue_run(environment)
    w1 = f"w1@{os.uname().nodename}"

    def w1_holds_a_batch(run):
        return MigrationBatch.objects.filter(
            run=run, worker=w1, status=BatchStatus.PENDING, attempts__gte=1
        ).exists()

    wait_for(second_id, w1_holds_a_batch, workers)
    held = set(
        MigrationBatch.objects.filter(
            run_id=second_id, worker=w1, status=BatchStatus.PENDING
        ).values_list("pk", flat=True)
    )
    # when
    killed = workers.kill("w1")
    second = wait_for(second_id, finished, workers)

    # then: the run completed as planned, the batch w1 held done again by w2
    assert killed.returncode == -signal.SIGKILL
    assert_migrated_as_planned(second, planned, migrated)
    redone = MigrationBatch.objects.filter(pk__in=held)
    assert {(batch.status, batch.worker) for batch in redone} <= {
        (BatchStatus.DONE, f"w2@{os.uname().nodename}"),
        (BatchStatus.DONE, w1),  # finished by w1 in the moment before the kill
    }
