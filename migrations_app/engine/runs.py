"""Runs started by staff from the admin: a `MigrationRun` row around the engine's own functions.

The command adds only what a terminal needs (a progress bar, the printed summary) around the
services that use these: open the run, let the engine work (the CSV backup first, see
engine/backup.py), record its outcome.
(Retrying failed users is `migrations_app.services.migration_run_retry`: it starts its runs
behind the run lock.)
"""

from __future__ import annotations

from django.utils import timezone

from migrations_app.engine.report import Report
from migrations_app.models import MigrationRun, RunStatus


def run_start(*, sources: list[str], mode: str, parameters: dict, actor=None) -> MigrationRun:
    """Open a run, marked running, on behalf of a staff member."""
    return MigrationRun.objects.create(
        source=",".join(sources),
        mode=mode,
        parameters=parameters,
        status=RunStatus.RUNNING,
        triggered_by=actor,
        heartbeat_at=timezone.now(),
    )


def run_finish(run: MigrationRun, report: Report) -> None:
    """Record what the run did: its totals, stats and final status."""
    run.refresh_from_db(fields=["processed"])
    run.total = run.processed
    run.stats = report.as_dict()
    run.status = RunStatus.COMPLETED_WITH_ERRORS if report.failed else RunStatus.COMPLETED
    run.finished_at = timezone.now()
    run.save(update_fields=["total", "stats", "status", "finished_at"])
