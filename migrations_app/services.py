"""Migration runs: started race-free, fanned out over Celery workers, finished once.

Starting an execute run is one short transaction that locks its sources' `MigrationLock` rows
(in name order) and only then looks for a live execute run of any of those sources: two starts
at once queue on the lock, and the second sees the first and is refused (`RunAlreadyActive`,
HTTP 409). A run counts as live while its process is alive (a `migrate_credits --execute` on
this host) or its heartbeat, moved by every batch, is younger than
`CREDITS_MIGRATION_STALE_AFTER`; a dead one is marked failed and no longer blocks.

An asynchronous run (the API, `migrate_credits --async`) is then split by a coordinator task
into `MigrationBatch` rows, the same keyset batches `--execute` walks, and one Celery task per
batch; any number of workers take them. A batch task runs the engine's `migrate_batch` with
hooks that lock the batch row inside the batch's transaction and mark it done there, with its
report: a redelivered, retried or concurrently processed batch finds it done and changes
nothing (and beneath that, the engine's claim of UserMigration rows migrates nobody twice).
Whichever task finishes the last batch queues the finalizer, which merges the batches'
reports into the run's stats; it may be queued twice and finishes the run once. There is no
chord: it would need a result backend, and the batch rows already hold what a chord counts.
"""

from __future__ import annotations

import os
import socket
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import F, Q
from django.utils import timezone

from migrations_app import engine
from migrations_app.authorization import (
    RETRY_PERMISSION,
    VIEW_PERMISSION,
    RollbackAuthority,
    migration_permission_check,
)
from migrations_app.engine.backup import BackupUnavailable, backup_folder, backup_write
from migrations_app.engine.execute import NO_HOOKS, BatchHooks
from migrations_app.engine.report import Outcome, Report, UserOutcome
from migrations_app.engine.rollback import ROLLBACK_REASON, rollback_rows
from migrations_app.engine.runs import run_finish, run_start
from migrations_app.exceptions import RunAlreadyActive
from migrations_app.models import (
    BatchStatus,
    MigrationBatch,
    MigrationLock,
    MigrationRun,
    MigrationStatus,
    RunMode,
    RunStatus,
    UserMigration,
)
from migrations_app.notifications import (
    notifications_queue_for_batch,
    notifications_queue_pending,
    notifications_queue_rolled_back,
)
from migrations_app.run_request import RunRequest
from migrations_app.sources import Context, get_source
from migrations_app.sources.base import default_rates
from migrations_app.task_queue import (
    DRY_RUN,
    FINALIZE_RUN,
    PLAN_RUN,
    PROCESS_BATCH,
    task_enqueue,
    task_enqueue_on_commit,
)

ACTIVE = (RunStatus.PENDING, RunStatus.RUNNING)
MAX_ID = 2**63 - 1  # a bigint primary key


def run_parameters(
    *,
    rates: dict[str, Decimal],
    percent: Decimal,
    user_ids: list[int] | None,
    batch_size: int,
    keep_legacy: bool,
    notify: bool,
    workers: int | None = None,
) -> dict[str, Any]:
    """A run's parameters as stored on MigrationRun (JSON: decimals as strings)."""
    return {
        "rates": {key: str(value) for key, value in rates.items()},
        "percent": str(percent),
        "users": user_ids,
        "batch_size": batch_size,
        "workers": workers if workers is not None else settings.CREDITS_MIGRATION_WORKERS,
        "keep_legacy": keep_legacy,
        "notify": notify,
    }


def run_context(run: MigrationRun) -> Context:
    parameters = run.parameters
    return Context(
        rates={key: Decimal(value) for key, value in parameters["rates"].items()},
        now=datetime.fromisoformat(parameters["now"]) if "now" in parameters else run.started_at,
        keep_legacy=parameters.get("keep_legacy", False),
        rounding=settings.CREDITS_ROUNDING,
    )


def run_selection(run: MigrationRun) -> engine.Selection:
    parameters = run.parameters
    user_ids = parameters.get("users")
    return engine.Selection(
        user_ids=user_ids,
        percent=Decimal(parameters.get("percent", "100")),
        batch_size=parameters.get("batch_size") or settings.CREDITS_MIGRATION_BATCH_SIZE,
        workers=parameters.get("workers") or settings.CREDITS_MIGRATION_WORKERS,
        include_rolled_back=user_ids is not None,
    )


def run_sources(run: MigrationRun) -> list[str]:
    return [name for name in run.source.split(",") if name]


# --- starting -----------------------------------------------------------------------------


def migration_run_start(
    *,
    sources: list[str],
    mode: str,
    parameters: dict[str, Any],
    triggered_by=None,
    now: datetime | None = None,
    in_this_process: bool = False,
) -> MigrationRun:
    """Create a running run; refuse an execute run while another of its sources is live.

    `now` is the moment every batch of the run computes against (usage periods, activity
    windows). `in_this_process`: the caller runs it itself (the command), so its liveness is
    this process's, not only its heartbeat."""
    parameters = {**parameters, "now": (now or timezone.now()).isoformat()}
    if in_this_process:
        parameters = {**parameters, "process": {"host": socket.gethostname(), "pid": os.getpid()}}
    with transaction.atomic(durable=True):
        if mode == RunMode.EXECUTE:
            _lock_sources(sources)
            for other in MigrationRun.objects.filter(mode=RunMode.EXECUTE, status__in=ACTIVE):
                if not set(run_sources(other)) & set(sources):
                    continue
                if _is_live(other):
                    raise RunAlreadyActive(run_id=other.pk, sources=run_sources(other))
                _mark_abandoned(other)
        return run_start(sources=sources, mode=mode, parameters=parameters, actor=triggered_by)


def migration_run_retry(*, pks: list[int], actor=None, on_user=None) -> Report:
    """Migrate again the FAILED users of these UserMigration rows (the admin's "Retry
    failed"; others are left), with the rates and `keep_legacy` of the run that failed them.

    Users are grouped by those options, and each group is a run of its own, started like any
    execute run (refused with RunAlreadyActive while another execute run of its sources is
    live) and holding its options, so a user who fails again is retried with them again."""
    migration_permission_check(actor, RETRY_PERMISSION)
    rows = (
        UserMigration.objects.filter(pk__in=pks, status=MigrationStatus.FAILED)
        .select_related("run")
        .order_by("source", "user_id")
    )
    groups: dict[tuple, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        rates, keep_legacy = _options_of(row.run)
        groups[(tuple(sorted(rates.items())), keep_legacy)][row.source].append(row.user_id)
    # The rates of the runs that failed them are checked as any new run's are (a rate above
    # CREDITS_MIGRATION_RATE_MAX needs this actor to hold credits.adjust_unlimited), before
    # anything is written.
    for (rates, keep_legacy), users_by_source in groups.items():
        RunRequest(
            sources=sorted(users_by_source),
            rates=dict(rates),
            user_ids=sorted(user for users in users_by_source.values() for user in users),
            keep_legacy=keep_legacy,
            dry_run=False,
        ).validate(actor, permission=RETRY_PERMISSION)
    report = Report(mode="execute", sources=sorted({s for group in groups.values() for s in group}))

    def record(outcome: UserOutcome) -> None:
        report.add(outcome)
        if on_user:
            on_user(outcome)

    for (rates, keep_legacy), users_by_source in groups.items():
        run = migration_run_start(
            sources=sorted(users_by_source),
            mode=RunMode.EXECUTE,
            parameters={
                "retry": True,
                "users": sorted(user for users in users_by_source.values() for user in users),
                "rates": {currency: str(rate) for currency, rate in rates},
                "keep_legacy": keep_legacy,
            },
            triggered_by=actor,
        )
        report.run_id = run.pk
        run_report = Report(mode="execute", sources=sorted(users_by_source))
        context = run_context(run)

        def each(outcome: UserOutcome, run_report=run_report) -> None:
            run_report.add(outcome)
            record(outcome)

        for source, user_ids in users_by_source.items():
            engine.execute(
                [source], context, engine.Selection(user_ids=user_ids), run, on_user=each
            )
        run_finish(run, run_report)
    return report


def _options_of(run: MigrationRun | None) -> tuple[dict[str, Decimal], bool]:
    """The rates (the defaults, overridden by the run's) and keep_legacy a run migrated with."""
    rates = default_rates()
    parameters = run.parameters if run is not None else {}
    for currency, rate in (parameters.get("rates") or {}).items():
        rates[currency] = Decimal(rate)
    return rates, bool(parameters.get("keep_legacy", False))


def _lock_sources(sources: list[str]) -> None:
    MigrationLock.objects.bulk_create(
        [MigrationLock(source=name) for name in sources], ignore_conflicts=True
    )
    list(MigrationLock.objects.select_for_update().filter(source__in=sources).order_by("source"))


def _is_live(run: MigrationRun) -> bool:
    process = run.parameters.get("process")
    if process and process.get("host") == socket.gethostname():
        return _process_alive(process["pid"])
    beat = run.heartbeat_at or run.started_at
    return beat >= timezone.now() - timedelta(seconds=settings.CREDITS_MIGRATION_STALE_AFTER)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _mark_abandoned(run: MigrationRun) -> None:
    run.status = RunStatus.FAILED
    run.error = f"Abandoned: no sign of life since {run.heartbeat_at or run.started_at}."
    run.finished_at = timezone.now()
    run.save(update_fields=["status", "error", "finished_at"])


def migration_run_launch(
    *,
    request: RunRequest,
    actor=None,
    now: datetime | None = None,
) -> MigrationRun:
    """Start a run and queue it on Celery (inline when Celery is eager), after the commit.

    Refused before anything is written when `actor` may not (`migrations_app.run_migration`
    to execute, `migrations_app.preview_migration` for a dry run) or the request is out of
    bounds; `actor=None` is an operator at the shell (`migrate_credits --async`)."""
    request.validate(actor)
    dry_run = request.dry_run
    mode = RunMode.DRY_RUN if dry_run else RunMode.EXECUTE
    run = migration_run_start(
        sources=request.sources,
        mode=mode,
        parameters=request.parameters(),
        triggered_by=actor,
        now=now,
    )
    task_enqueue_on_commit(DRY_RUN if dry_run else PLAN_RUN, run.pk)
    return run


def migration_execute_start(
    *,
    sources: list[str],
    context: Context,
    selection: engine.Selection,
    parameters: dict[str, Any],
    backup_dir: str | Path,
) -> tuple[MigrationRun, list[Path]]:
    """Start an execute run in this process (`migrate_credits --execute`) and write the CSV
    backup of the legacy rows it will change, before anyone is migrated; return the run and
    the backup's files.

    An unusable backup folder is refused (`BackupUnavailable`) before the run is started; a
    backup that cannot be written fails the run and is refused too, nothing migrated. A live
    execute run of these sources refuses the start (`RunAlreadyActive`)."""
    folder = backup_folder(backup_dir=backup_dir, sources=sources, context=context)
    run = migration_run_start(
        sources=sources,
        mode=RunMode.EXECUTE,
        parameters=parameters,
        now=context.now,
        in_this_process=True,
    )
    try:
        paths = backup_write(
            folder=folder, sources=sources, selection=selection, context=context, run=run
        )
    except OSError as error:
        migration_run_fail(run=run, error=f"The backup could not be written: {error}")
        raise BackupUnavailable(
            folder,
            f"the backup could not be written ({error.strerror or error}); nothing was migrated",
        ) from None
    return run, paths


def migration_execute(
    *,
    run: MigrationRun,
    sources: list[str],
    context: Context,
    selection: engine.Selection,
    notify: bool,
    on_user: Callable[[UserOutcome], None] | None = None,
) -> Report:
    """Migrate a started run's users here, a batch per transaction (the caller finishes the
    run with `migration_run_finish`); the users are told by email, queued in each batch's
    transaction, unless `notify` is false."""
    return engine.execute(
        sources,
        context,
        selection,
        run,
        on_user=on_user,
        hooks=NotifyHooks(run) if notify else NO_HOOKS,
    )


def migration_run_finish(*, run: MigrationRun, report: Report) -> None:
    """Record what a run the caller started did (its totals, stats and final status)."""
    run_finish(run, report)


def migration_run_fail(*, run: MigrationRun, error: str) -> None:
    """Close a run as failed, with the reason (a backup not written, a run interrupted)."""
    run.status = RunStatus.FAILED
    run.error = error[:2000]
    run.finished_at = timezone.now()
    run.save(update_fields=["status", "error", "finished_at"])


# --- reading ------------------------------------------------------------------------------


def migration_status_read(*, actor, sources: list[str] | None = None) -> dict[str, Any]:
    """Where the migration stands (`migrations_app.view_migrationrun`)."""
    migration_permission_check(actor, VIEW_PERMISSION)
    return engine.migration_status(sources) if sources else engine.migration_status()


def migration_run_read(*, actor, run_id: int) -> MigrationRun | None:
    """One run (`migrations_app.view_migrationrun`); None when there is no such run."""
    migration_permission_check(actor, VIEW_PERMISSION)
    if run_id > MAX_ID:  # beyond a bigint: no such run (and no database error)
        return None
    return MigrationRun.objects.filter(pk=run_id).first()


# --- rollback -----------------------------------------------------------------------------


def migration_rollback(
    *,
    actor,
    force: bool = False,
    notify: bool = True,
    pks: list[int] | None = None,
    sources: list[str] | None = None,
    user_ids: list[int] | None = None,
    run: MigrationRun | None = None,
    reason: str = ROLLBACK_REASON,
    on_user=None,
) -> Report:
    """Roll back users' migrations: the admin's selection (`pks`), or the users of `sources`
    (default: CREDITS_MIGRATION_SOURCES; `user_ids` None: everyone), under `run` when the
    caller started one (the command, to show its number first, and finish it with its
    report), else under a rollback run started and finished here (the API).

    Needs `migrations_app.rollback_migration`, and `credits.adjust_unlimited` to `force` (take
    migrated credits already spent from the users' other credits); refused before anything is
    written. The rolled-back users are told by email unless `notify` is false."""
    authority = RollbackAuthority(actor=actor, force=force)
    rolled_back: list[int] = []

    def each(outcome: UserOutcome) -> None:
        if outcome.outcome == Outcome.ROLLED_BACK:
            rolled_back.append(outcome.user_id)
        if on_user:
            on_user(outcome)

    if pks is not None:
        report = rollback_rows(pks, authority=authority, reason=reason, on_user=each)
        run = MigrationRun.objects.get(pk=report.run_id)
    else:
        if sources is None:
            sources = list(settings.CREDITS_MIGRATION_SOURCES)
        started_here = run is None
        if started_here:
            run = run_start(
                sources=sources,
                mode=RunMode.ROLLBACK,
                parameters={
                    "users": user_ids,
                    "force": force,
                    "notify": notify,
                    "reason": reason,
                },
                actor=actor,
            )
        report = engine.rollback(
            sources=sources,
            user_ids=user_ids,
            run=run,
            authority=authority,
            reason=reason,
            on_user=each,
        )
        if started_here:
            run_finish(run, report)
    if notify and rolled_back:
        notifications_queue_rolled_back(run=run, user_ids=rolled_back)
    return report


# --- dry run ------------------------------------------------------------------------------


def migration_run_dry(*, run_id: int) -> None:
    """Plan the run's users and keep the report on the run row: the only row it writes."""
    run = MigrationRun.objects.get(pk=run_id)
    if run.status != RunStatus.RUNNING:
        return
    try:
        report = engine.plan_users(run_sources(run), run_context(run), run_selection(run))
    except Exception as error:
        _fail(run, error)
        raise
    report.parameters = run.parameters
    count = sum(report.counts.values())
    MigrationRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(
        stats=report.as_dict(),
        processed=count,
        total=count,
        status=RunStatus.COMPLETED,
        finished_at=timezone.now(),
    )


def _fail(run: MigrationRun, error: BaseException) -> None:
    MigrationRun.objects.filter(pk=run.pk).update(
        status=RunStatus.FAILED,
        error=f"{type(error).__name__}: {error}"[:2000],
        finished_at=timezone.now(),
    )


# --- fan-out ------------------------------------------------------------------------------


def migration_run_fan_out(*, run_id: int) -> list[int]:
    """Split the run into batch rows (once) and queue a task for each batch not done."""
    try:
        with transaction.atomic():
            return _fan_out(run_id)
    except (OperationalError, InterfaceError):
        raise  # the database went away: the task retries, the run stays running
    except Exception as error:
        _fail(MigrationRun(pk=run_id), error)
        raise


def _fan_out(run_id: int) -> list[int]:
    run = MigrationRun.objects.select_for_update().get(pk=run_id)
    if run.status != RunStatus.RUNNING:
        return []
    if not run.batches.exists():
        _plan_batches(run)
    pending = list(
        run.batches.filter(status=BatchStatus.PENDING)
        .order_by("number")
        .values_list("pk", flat=True)
    )
    if pending:

        def queue_batches():
            for batch_id in pending:
                task_enqueue(PROCESS_BATCH, batch_id)

        transaction.on_commit(queue_batches)
    else:
        task_enqueue_on_commit(FINALIZE_RUN, run.pk)
    return pending


def _plan_batches(run: MigrationRun) -> None:
    selection = run_selection(run)
    number, total, rows = 0, 0, []
    for name in run_sources(run):
        for user_ids in selection.batches(get_source(name)):
            rows.append(
                MigrationBatch(
                    run=run, source=name, number=number, user_ids=user_ids, size=len(user_ids)
                )
            )
            number += 1
            total += len(user_ids)
            if len(rows) >= 500:
                MigrationBatch.objects.bulk_create(rows)
                rows = []
    MigrationBatch.objects.bulk_create(rows)
    run.total = total
    run.heartbeat_at = timezone.now()
    run.save(update_fields=["total", "heartbeat_at"])


class FanOutHooks(BatchHooks):
    """Record one batch of a fanned-out run in the batch's own transaction."""

    def __init__(self, batch: MigrationBatch, run: MigrationRun):
        self.batch_id = batch.pk
        self.run = run
        self.notify = run.parameters.get("notify", True)
        self._locked: MigrationBatch | None = None  # by begin(), for record() in its transaction

    def begin(self, user_ids: list[int]) -> list[int]:
        batch = self._locked = MigrationBatch.objects.select_for_update().get(pk=self.batch_id)
        if batch.status == BatchStatus.DONE:
            return []
        recorded = set(batch.recorded_user_ids)
        return [user_id for user_id in user_ids if user_id not in recorded]

    def record(self, outcomes: list[UserOutcome]) -> None:
        batch = self._locked  # locked by begin(), earlier in this same transaction
        report = Report(mode="execute", sources=[batch.source])
        report.absorb(batch.stats)
        for outcome in outcomes:
            report.add(outcome)
        recorded = set(batch.recorded_user_ids) | {outcome.user_id for outcome in outcomes}
        batch.stats = report.as_dict()
        if recorded >= set(batch.user_ids):
            batch.status = BatchStatus.DONE
            batch.finished_at = timezone.now()
            batch.recorded_user_ids = []
        else:  # the batch fell back to a transaction per user: some are still to do
            batch.recorded_user_ids = sorted(recorded)
        batch.save(update_fields=["stats", "status", "finished_at", "recorded_user_ids"])
        if self.notify:
            notifications_queue_for_batch(run=self.run, outcomes=outcomes)


class NotifyHooks(BatchHooks):
    """For `migrate_credits --execute`: notifications queued in each batch's transaction."""

    def __init__(self, run: MigrationRun):
        self.run = run

    def record(self, outcomes: list[UserOutcome]) -> None:
        notifications_queue_for_batch(run=self.run, outcomes=outcomes)


def migration_batch_process(*, batch_id: int, worker: str = "") -> str:
    """Migrate one batch of a run (a no-op when it is done); finish the run after its last."""
    batch = MigrationBatch.objects.select_related("run").filter(pk=batch_id).first()
    if batch is None:
        return "missing"
    run = batch.run
    if batch.status == BatchStatus.DONE:
        _finalize_when_done(run)
        return "done already"
    if run.status != RunStatus.RUNNING:
        return f"run {run.status}"
    MigrationBatch.objects.filter(pk=batch_id).update(attempts=F("attempts") + 1, worker=worker)
    engine.migrate_batch(
        get_source(batch.source),
        batch.user_ids,
        run_context(run),
        run_selection(run),
        run,
        FanOutHooks(batch, run),
    )
    _finalize_when_done(run)
    return "processed"


def _finalize_when_done(run: MigrationRun) -> None:
    if not MigrationBatch.objects.filter(run=run).exclude(status=BatchStatus.DONE).exists():
        task_enqueue(FINALIZE_RUN, run.pk)


def migration_run_finalize(*, run_id: int) -> bool:
    """Merge the batches' reports into the run's stats and finish it, once."""
    with transaction.atomic():
        run = MigrationRun.objects.select_for_update().get(pk=run_id)
        if run.status != RunStatus.RUNNING or run.mode != RunMode.EXECUTE:
            return False
        batches = MigrationBatch.objects.filter(run=run)
        if batches.filter(~Q(status=BatchStatus.DONE)).exists():
            return False
        report = Report(mode="execute", sources=run_sources(run), run_id=run.pk)
        for stats in batches.order_by("number").values_list("stats", flat=True):
            report.absorb(stats)
        report.parameters = run.parameters
        run.stats = report.as_dict()
        run.status = RunStatus.COMPLETED_WITH_ERRORS if report.failed else RunStatus.COMPLETED
        run.finished_at = timezone.now()
        run.save(update_fields=["stats", "status", "finished_at"])
        if run.parameters.get("notify", True):
            notifications_queue_pending(run=run)
    return True
