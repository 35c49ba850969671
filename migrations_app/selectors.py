"""Reads of migration runs: a run's progress, stats and errors while it runs and after."""

from __future__ import annotations

from typing import Any

from migrations_app.engine.report import Report
from migrations_app.models import BatchStatus, MigrationBatch, MigrationRun, RunMode, RunStatus

ERRORS_SHOWN = 100


def run_progress(*, run: MigrationRun) -> dict[str, Any]:
    """What GET /api/migrate/runs/<id>/ answers."""
    batches = MigrationBatch.objects.filter(run=run)
    batches_total = batches.count()
    batches_done = batches.filter(status=BatchStatus.DONE).count()
    stats = run.stats
    if run.mode == RunMode.EXECUTE and run.status == RunStatus.RUNNING and batches_total:
        # Live: the reports of the batches done so far.
        report = Report(mode="execute", sources=run.source.split(","), run_id=run.pk)
        for batch_stats in batches.filter(status=BatchStatus.DONE).values_list("stats", flat=True):
            report.absorb(batch_stats)
        stats = report.as_dict()
    errors = [
        {"user_id": item["user_id"], "source": item["source"], "error": item["error"]}
        for item in stats.get("failures", [])[:ERRORS_SHOWN]
    ]
    summary = {key: value for key, value in stats.items() if key not in ("failures", "parameters")}
    processed = min(run.processed, run.total) if run.total else run.processed
    return {
        "id": run.pk,
        "sources": [name for name in run.source.split(",") if name],
        "mode": run.mode,
        "status": run.status,
        "parameters": {key: value for key, value in run.parameters.items() if key != "process"},
        "progress": {
            "processed": processed,
            "total": run.total,
            "percent": round(100 * processed / run.total, 1) if run.total else None,
            "batches_done": batches_done,
            "batches_total": batches_total,
        },
        "stats": summary,
        "errors": errors,
        "failed": len(stats.get("failures", [])),
        "error": run.error,
        "triggered_by": run.triggered_by_id,
        "started_at": run.started_at,
        "heartbeat_at": run.heartbeat_at,
        "finished_at": run.finished_at,
    }
