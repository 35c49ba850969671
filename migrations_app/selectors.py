"""Reads for the migration dashboard: the engine's own status and verification, and the rows
staff look at next (failures, recent runs), plus a bar chart of statuses drawn as SVG shapes."""

from __future__ import annotations

from django.conf import settings

from migrations_app.engine.status import migration_status
from migrations_app.engine.verify import verify
from migrations_app.models import MigrationRun, MigrationStatus, UserMigration
from migrations_app.sources import SOURCES

STATUS_COLORS = {
    MigrationStatus.COMPLETED: "#417690",
    MigrationStatus.ROLLED_BACK: "#79aec8",
    MigrationStatus.IN_PROGRESS: "#f5dd5d",
    MigrationStatus.PENDING: "#cccccc",
    MigrationStatus.FAILED: "#ba2121",
}
CHART_WIDTH = 640
CHART_LABEL_WIDTH = 110
CHART_BAR_HEIGHT = 22
CHART_GAP = 10


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
                "legacy_value": totals.get("legacy_value"),
                "credits_granted": totals.get("credits_granted"),
                "rounding_remainder": totals.get("rounding_remainder"),
                "ledger_net": totals.get("ledger_net"),
                "discrepancies": sum(
                    1 for item in verification.discrepancies if item.source == name
                ),
            }
        )
    return {
        "status": status,
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


def status_chart(statuses_by_source: dict[str, dict[str, int]]) -> dict:
    """One horizontal bar per source, split by status, as rectangles with their coordinates."""
    biggest = max((sum(counts.values()) for counts in statuses_by_source.values()), default=0)
    scale = (CHART_WIDTH - CHART_LABEL_WIDTH - 60) / biggest if biggest else 0
    bars = []
    for index, (name, counts) in enumerate(statuses_by_source.items()):
        y = index * (CHART_BAR_HEIGHT + CHART_GAP)
        x = CHART_LABEL_WIDTH
        segments = []
        for status, color in STATUS_COLORS.items():
            count = counts.get(status, 0)
            if not count:
                continue
            width = max(count * scale, 1)
            segments.append(
                {
                    "x": round(x, 1),
                    "width": round(width, 1),
                    "color": color,
                    "label": f"{MigrationStatus(status).label}: {count}",
                }
            )
            x += width
        bars.append(
            {
                "source": name,
                "y": y,
                "text_y": y + CHART_BAR_HEIGHT * 0.7,
                "total": sum(counts.values()),
                "total_x": round(x + 6, 1),
                "segments": segments,
            }
        )
    height = max(len(bars) * (CHART_BAR_HEIGHT + CHART_GAP), CHART_BAR_HEIGHT + CHART_GAP)
    legend = [
        {"x": CHART_LABEL_WIDTH + i * 105, "color": color, "label": MigrationStatus(status).label}
        for i, (status, color) in enumerate(STATUS_COLORS.items())
    ]
    return {
        "width": CHART_WIDTH,
        "height": height + 30,
        "legend_y": height + 8,
        "legend_text_y": height + 19,
        "bar_height": CHART_BAR_HEIGHT,
        "bars": bars,
        "legend": legend,
    }
