"""The Celery fan-out: a run split into batch tasks, each idempotent, aggregated once.

Celery is eager here, so tasks are called as workers would call them: the same batch twice,
after the run finished, or two at once on PostgreSQL. Nobody is migrated twice and the run's
figures count every user once.
"""

import io
import threading
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import Count

from billing.models import LegacyBilling
from credits.models import CreditAccount, CreditTransaction, EntryKind
from migrations_app import tasks
from migrations_app.models import (
    BatchStatus,
    MigrationBatch,
    MigrationRun,
    MigrationStatus,
    RunStatus,
    UserMigration,
)
from migrations_app.run_request import RunRequest
from migrations_app.services import (
    migration_batch_process,
    migration_run_fan_out,
    migration_run_finalize,
    migration_run_launch,
    migration_run_start,
    run_parameters,
)
from tests.factories import LegacyAccountFactory, LegacyBillingFactory
from tests.helpers import balance_of, sources_args

pytestmark = pytest.mark.django_db


def parameters(**overrides):
    values = {
        "rates": {"USD": Decimal("1.0"), "UAH": Decimal("0.024")},
        "percent": Decimal(100),
        "user_ids": None,
        "batch_size": 2,
        "keep_legacy": False,
        "notify": False,
    }
    return run_parameters(**{**values, **overrides})


def run_request(sources) -> RunRequest:
    """An execute run of these sources, in batches of 2, without emails."""
    return RunRequest(sources=sources, batch_size=2, notify=False, dry_run=False)


def planned_run(sources=("usd_balance",), **overrides) -> MigrationRun:
    """A started run split into batches, with no batch processed yet."""
    run = migration_run_start(
        sources=list(sources), mode="execute", parameters=parameters(**overrides)
    )
    migration_run_fan_out(run_id=run.pk)  # its queued tasks wait for a commit that never comes
    return run


def snapshot(run):
    run.refresh_from_db()
    return {
        "run": (run.status, run.processed, run.total, run.stats),
        "batches": list(MigrationBatch.objects.order_by("pk").values("status", "stats")),
        "entries": CreditTransaction.objects.count(),
        "balances": dict(CreditAccount.objects.values_list("user_id", "balance")),
    }


def test_a_run_is_split_into_batches_and_aggregated_from_them(
    django_capture_on_commit_callbacks,
):
    # given: five balances, batches of two
    users = [
        LegacyBillingFactory(balance_usd=Decimal(n)).user for n in ("1.10", "2", "3", "4", "5")
    ]
    overdrawn = LegacyBillingFactory(balance_usd=Decimal("-1")).user
    # when
    with django_capture_on_commit_callbacks(execute=True):
        run = migration_run_launch(request=run_request(["usd_balance"]))
    # then
    run.refresh_from_db()
    batches = MigrationBatch.objects.filter(run=run).order_by("number")
    assert [batch.user_ids for batch in batches] == [
        [users[0].pk, users[1].pk],
        [users[2].pk, users[3].pk],
        [users[4].pk, overdrawn.pk],
    ]
    assert {batch.status for batch in batches} == {BatchStatus.DONE}
    assert (run.status, run.processed, run.total) == (RunStatus.COMPLETED_WITH_ERRORS, 6, 6)
    assert run.stats["users"] == {"migrated": 5, "failed": 1}
    assert run.stats["credits"] == "15.10"
    assert run.stats["legacy_totals"] == {"USD": "15.10"}
    assert [item["user_id"] for item in run.stats["failures"]] == [overdrawn.pk]
    assert [balance_of(user.pk) for user in users] == [
        Decimal(n) for n in ("1.10", "2", "3", "4", "5")
    ]


def test_the_same_totals_as_the_command(migrate, legacy_world, django_capture_on_commit_callbacks):
    # given: what a dry run of the command says
    _, planned = migrate(
        "--dry-run", "--format", "json", *sources_args("usd_balance", "user_fields"), expect=1
    )
    # when
    with django_capture_on_commit_callbacks(execute=True):
        run = migration_run_launch(request=run_request(["usd_balance", "user_fields"]))
    # then
    run.refresh_from_db()
    for key in ("credits", "rounding_remainder", "legacy_totals", "history_entries"):
        assert run.stats[key] == planned[key], key
    assert run.stats["users"]["migrated"] == planned["users"]["migrate"]
    migrate("--verify", *sources_args("usd_balance", "user_fields"))


def test_a_batch_delivered_again_changes_nothing():
    # given: a run whose every batch was processed
    for n in (1, 2, 3):
        LegacyBillingFactory(balance_usd=Decimal(n))
    run = planned_run()
    batch_ids = list(MigrationBatch.objects.filter(run=run).values_list("pk", flat=True))
    for batch_id in batch_ids:
        assert migration_batch_process(batch_id=batch_id) == "processed"
    before = snapshot(run)
    # when: each batch comes back (a redelivery, a retry, a duplicated message)
    results = [tasks.process_batch(batch_id) for batch_id in batch_ids]
    # then
    assert results == ["done already"] * len(batch_ids)
    assert snapshot(run) == before
    assert before["run"][:3] == (RunStatus.COMPLETED, 3, 3)


def test_a_batch_that_fell_back_to_one_user_at_a_time_is_recorded_once():
    # given: two users sharing a Stripe customer: the batch's writes fail, then user by user
    first = LegacyAccountFactory(credits_balance=Decimal("1.00"), stripe_customer_id="cus_dup")
    second = LegacyAccountFactory(credits_balance=Decimal("2.00"), stripe_customer_id="cus_dup")
    run = planned_run(sources=("user_fields",))
    (batch,) = MigrationBatch.objects.filter(run=run)
    # when: processed, then delivered again
    migration_batch_process(batch_id=batch.pk)
    once = snapshot(run)
    migration_batch_process(batch_id=batch.pk)
    # then
    assert snapshot(run) == once
    batch.refresh_from_db()
    assert batch.status == BatchStatus.DONE
    assert batch.stats["users"] == {"migrated": 1, "failed": 1}
    run.refresh_from_db()
    assert (run.processed, run.total, run.status) == (2, 2, RunStatus.COMPLETED_WITH_ERRORS)
    statuses = dict(UserMigration.objects.values_list("user_id", "status"))
    assert statuses == {
        first.user_id: MigrationStatus.COMPLETED,
        second.user_id: MigrationStatus.FAILED,
    }


def test_a_batch_half_recorded_user_by_user_finishes_the_rest_only():
    # given: a batch that fell back to one transaction per user, and whose worker died after
    # the first user (that user's outcome recorded on the batch, the second user untouched)
    first = LegacyAccountFactory(credits_balance=Decimal("1.00"), stripe_customer_id="cus_dup")
    second = LegacyAccountFactory(credits_balance=Decimal("2.00"), stripe_customer_id="cus_other")
    run = planned_run(sources=("user_fields",))
    (batch,) = MigrationBatch.objects.filter(run=run)
    from migrations_app.engine.execute import migrate_batch
    from migrations_app.services import FanOutHooks, run_context, run_selection
    from migrations_app.sources import get_source

    migrate_batch(
        get_source("user_fields"),
        [first.user_id],
        run_context(run),
        run_selection(run),
        run,
        FanOutHooks(batch, run),
    )
    batch.refresh_from_db()
    assert (batch.status, batch.recorded_user_ids) == (BatchStatus.PENDING, [first.user_id])
    # when: the batch comes back
    migration_batch_process(batch_id=batch.pk)
    # then: the second user is migrated, the first counted once
    batch.refresh_from_db()
    assert batch.status == BatchStatus.DONE
    assert batch.stats["users"] == {"migrated": 2}
    assert batch.stats["credits"] == "3.00"
    run.refresh_from_db()
    assert (run.processed, run.status) == (2, RunStatus.COMPLETED)
    assert CreditTransaction.objects.filter(kind=EntryKind.MIGRATION).count() == 2
    assert balance_of(second.user_id) == Decimal("2.00")


def test_finishing_twice_finishes_once():
    # given
    LegacyBillingFactory(balance_usd=Decimal("4"))
    run = planned_run()
    for batch_id in MigrationBatch.objects.filter(run=run).values_list("pk", flat=True):
        migration_batch_process(batch_id=batch_id)
    finished = snapshot(run)
    # when
    again = migration_run_finalize(run_id=run.pk)
    # then
    assert again is False
    assert snapshot(run) == finished


def test_a_run_is_not_finished_while_a_batch_is_pending():
    # given: two batches, one processed
    for n in (1, 2, 3):
        LegacyBillingFactory(balance_usd=Decimal(n))
    run = planned_run()
    first, _ = MigrationBatch.objects.filter(run=run).order_by("number")
    migration_batch_process(batch_id=first.pk)
    # when
    finished = migration_run_finalize(run_id=run.pk)
    # then
    run.refresh_from_db()
    assert finished is False
    assert (run.status, run.processed, run.total) == (RunStatus.RUNNING, 2, 3)


def test_a_planned_run_delivered_twice_plans_once():
    # given
    for n in (1, 2, 3):
        LegacyBillingFactory(balance_usd=Decimal(n))
    run = planned_run()
    batches = list(MigrationBatch.objects.filter(run=run).values_list("pk", "user_ids"))
    # when
    pending = migration_run_fan_out(run_id=run.pk)
    # then
    assert list(MigrationBatch.objects.filter(run=run).values_list("pk", "user_ids")) == batches
    assert pending == [pk for pk, _ in batches]


def test_migrate_credits_async_queues_the_run_and_says_how_to_watch_it(
    django_capture_on_commit_callbacks, tmp_path
):
    # given
    user = LegacyBillingFactory(balance_usd=Decimal("8.00")).user
    out = io.StringIO()
    # when
    with django_capture_on_commit_callbacks(execute=True):
        call_command(
            "migrate_credits",
            "--execute",
            "--async",
            "--yes",
            "--source",
            "usd_balance",
            "--no-notify",
            f"--backup-dir={tmp_path}",
            stdout=out,
        )
    # then
    run = MigrationRun.objects.get()
    text = out.getvalue()
    assert f"Run {run.pk} queued" in text
    assert f"/api/migrate/runs/{run.pk}/" in text
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED
    assert run.parameters["notify"] is False
    assert balance_of(user.pk) == Decimal("8.00")


def test_migrate_credits_refuses_a_second_run_of_a_live_source(migrate):
    # given: a live run of the source (its process: this one)
    LegacyBillingFactory(balance_usd=Decimal("8.00"))
    migration_run_start(
        sources=["usd_balance"], mode="execute", parameters=parameters(), in_this_process=True
    )
    # when / then
    _, output = migrate("--execute", "--yes", *sources_args("usd_balance"), expect=2)
    assert "already running" in output
    assert not UserMigration.objects.exists()


def test_a_run_left_by_a_dead_command_does_not_block_the_next(migrate):
    # given: a run whose process is gone (a killed migrate_credits)
    LegacyBillingFactory(balance_usd=Decimal("8.00"))
    dead = migration_run_start(
        sources=["usd_balance"], mode="execute", parameters=parameters(), in_this_process=True
    )
    dead.parameters["process"]["pid"] = 2**22 + 12345  # no such process
    MigrationRun.objects.filter(pk=dead.pk).update(parameters=dead.parameters)
    # when
    migrate("--execute", "--yes", *sources_args("usd_balance"))
    # then
    dead.refresh_from_db()
    assert dead.status == RunStatus.FAILED
    assert UserMigration.objects.get().status == MigrationStatus.COMPLETED


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_on_the_same_batches_at_once_migrate_everyone_once():
    # given: 40 users in 4 batches, each batch taken by two workers at the same moment
    for n in range(40):
        LegacyBillingFactory(balance_usd=Decimal(n + 1))
    run = migration_run_start(
        sources=["usd_balance"], mode="execute", parameters=parameters(batch_size=10)
    )
    migration_run_fan_out(run_id=run.pk)
    batch_ids = list(MigrationBatch.objects.filter(run=run).values_list("pk", flat=True))
    barrier = threading.Barrier(2 * len(batch_ids))
    errors = []

    def worker(batch_id):
        try:
            barrier.wait()
            migration_batch_process(batch_id=batch_id)
        except Exception as error:  # reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(pk,)) for pk in batch_ids * 2]
    # when
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then
    assert errors == []
    run.refresh_from_db()
    assert (run.status, run.processed, run.total) == (RunStatus.COMPLETED, 40, 40)
    assert run.stats["users"] == {"migrated": 40}
    assert run.stats["credits"] == "820.00"
    per_account = (
        CreditTransaction.objects.filter(kind=EntryKind.MIGRATION)
        .values("account_id")
        .annotate(n=Count("id"))
    )
    assert sorted(row["n"] for row in per_account) == [1] * 40
    assert not LegacyBilling.objects.exclude(balance_usd=0).exists()


@pytest.mark.parametrize("mode", [(), ("--dry-run",), ("--verify",), ("--status",)])
def test_async_goes_with_execute_only(migrate, mode):
    # given
    LegacyBillingFactory(balance_usd=Decimal("8.00"))
    # when
    _, output = migrate(*mode, "--async", "--yes", *sources_args("usd_balance"), expect=2)
    # then
    assert "--async goes with --execute" in output
    assert not MigrationRun.objects.exists()


def test_a_run_that_cannot_be_planned_is_failed_with_the_reason():
    # given: a run of a source that no longer exists (renamed between start and planning)
    run = migration_run_start(sources=["usd_balance"], mode="execute", parameters=parameters())
    MigrationRun.objects.filter(pk=run.pk).update(source="retired_source")
    # when
    with pytest.raises(KeyError):
        migration_run_fan_out(run_id=run.pk)
    # then
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert "retired_source" in run.error
    assert not MigrationBatch.objects.filter(run=run).exists()
