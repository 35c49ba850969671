"""Reads for the migration dashboard: the engine's own status and verification, and the rows
staff look at next (failures, recent runs), plus a bar chart of statuses (its geometry, SVG
shapes with their coordinates, is `core.charts`'); and a run's progress as the API shows it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import QuerySet

from core.charts import stacked_bar_chart
from credits.models import CENT
from migrations_app.engine.report import Report
from migrations_app.engine.status import migration_status
from migrations_app.engine.verify import verify
from migrations_app.models import (
    BatchStatus,
    MigrationBatch,
    MigrationRun,
    MigrationStatus,
    RunMode,
    RunStatus,
    UserMigration,
)
from migrations_app.sources import SOURCES

STATUS_COLORS = {
    MigrationStatus.COMPLETED: "#417690",
    MigrationStatus.ROLLED_BACK: "#79aec8",
    MigrationStatus.IN_PROGRESS: "#f5dd5d",
    MigrationStatus.PENDING: "#cccccc",
    MigrationStatus.FAILED: "#ba2121",
}
STATUS_LABELS = {
    "migration_needed": "Migration needed",
    "in_progress": "In progress",
    "up_to_date": "Up to date",
}


def dashboard_sources() -> list[str]:
    """The configured sources, then any other source that has migrated someone."""
    used = UserMigration.objects.order_by().values_list("source", flat=True).distinct()
    names = [*settings.CREDITS_MIGRATION_SOURCES, *sorted(used)]
    return [name for name in dict.fromkeys(names) if name in SOURCES]


def migration_dashboard(*, failures: int = 20, runs: int = 10) -> dict:
    """Everything the dashboard shows, from the engine's status and verification."""
    sources = dashboard_sources()
    status = migration_status(sources)
    verification = verify(sources)
    rows = []
    for name in sources:
        facts = status["summary"]["sources"][name]
        totals = verification.totals.get(name, {})
        rows.append(
            {
                "source": name,
                "statuses": [
                    (label, facts["statuses"].get(value, 0))
                    for value, label in MigrationStatus.choices
                ],
                "to_migrate": facts["to_migrate"],
                "legacy": sorted(
                    (key.removeprefix("legacy_"), value)
                    for key, value in totals.items()
                    if key.startswith("legacy_") and key != "legacy_value"
                ),
                "legacy_value": _plain(totals.get("legacy_value")),
                "credits_granted": _plain(totals.get("credits_granted", Decimal(0))),
                "rounding_remainder": _plain(totals.get("rounding_remainder", Decimal(0))),
                "ledger_net": _plain(totals.get("ledger_net", Decimal(0))),
                "discrepancies": sum(
                    1 for item in verification.discrepancies if item.source == name
                ),
            }
        )
    return {
        "status": status,
        "status_label": STATUS_LABELS.get(status["status"], status["status"]),
        "advice": staff_advice(status),
        "sources": rows,
        "discrepancies": verification.discrepancies[:failures],
        "discrepancy_count": len(verification.discrepancies),
        "failures": list(
            UserMigration.objects.filter(source__in=sources, status=MigrationStatus.FAILED)
            .select_related("user")
            .order_by("-updated_at", "-pk")[:failures]
        ),
        "runs": list(MigrationRun.objects.select_related("triggered_by").order_by("-pk")[:runs]),
        "chart": status_chart(
            {name: status["summary"]["sources"][name]["statuses"] for name in sources}
        ),
    }


def staff_advice(status: dict) -> str:
    """The status's recommendation in the words of the admin (the command's recommendation
    names its flags, which mean nothing on a web page)."""
    summary = status["summary"]
    if status["status"] == "in_progress":
        advice = "A migration run is in progress; check the figures again when it has finished."
    elif status["status"] == "migration_needed":
        advice = (
            f"{summary['users_to_migrate']:,} user-source pairs are left to migrate: an operator "
            "previews them with a dry run, then migrates them (a small share first)."
        )
    else:
        advice = "Nothing is left to migrate; the figures below should agree."
    if summary["failed"]:
        advice += (
            f" {summary['failed']:,} failed: their errors are listed below; once the data is "
            "fixed, select them in User migrations and use Retry failed."
        )
    return advice


def _plain(value: Decimal | None) -> Decimal | None:
    """An exact figure with at least two places and no trailing zeros beyond them."""
    if value is None:
        return None
    normalized = value.normalize()
    return normalized if normalized.as_tuple().exponent < -2 else value.quantize(CENT)


def status_chart(statuses_by_source: dict[str, dict[str, int]]) -> dict:
    """One horizontal bar per source, split by status (the geometry: `core.charts`)."""
    return stacked_bar_chart(
        statuses_by_source,
        colors=STATUS_COLORS,
        labels={status: MigrationStatus(status).label for status in STATUS_COLORS},
    )


def user_migrations(*, user) -> QuerySet[UserMigration]:
    """The user's migration from each source, by source name."""
    return UserMigration.objects.filter(user=user).order_by("source")


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
