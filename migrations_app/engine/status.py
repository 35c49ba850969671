"""Where the migration stands, and what the legacy data looks like before it starts."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Count
from django.utils import timezone

from billing.models import LegacyAccount, LegacyOperation, UserProfile
from migrations_app.engine.execute import Selection, plan_users
from migrations_app.engine.report import Report
from migrations_app.engine.selection import candidate_batches
from migrations_app.models import MigrationRun, MigrationStatus, RunStatus, UserMigration
from migrations_app.sources import Context, get_source

DONE = [MigrationStatus.COMPLETED, MigrationStatus.ROLLED_BACK]
FAILURES_SHOWN = 100


def migration_status(sources: list[str] | None = None) -> dict:
    """The facts behind `--status` and GET /api/migrate/user-credits/."""
    sources = sources or list(settings.CREDITS_MIGRATION_SOURCES)
    per_source, to_migrate = {}, 0
    for name in sources:
        source = get_source(name)
        counts = dict(
            UserMigration.objects.filter(source=name)
            .values_list("status")
            .annotate(n=Count("id"))
            .order_by()
        )
        remaining = _remaining(source)
        to_migrate += remaining
        per_source[name] = {"statuses": counts, "to_migrate": remaining}
    failed = UserMigration.objects.filter(source__in=sources, status=MigrationStatus.FAILED)
    summary = {
        "users": get_user_model().objects.count(),
        "profiles": UserProfile.objects.count(),
        "pro_users": LegacyAccount.objects.filter(plan="pro").count(),
        "pro_profiles": UserProfile.objects.filter(plan="pro").count(),
        "users_to_migrate": to_migrate,
        "failed": failed.count(),
        "data_mismatches": UserMigration.objects.filter(
            source__in=sources, data_mismatch=True
        ).count(),
        "sources": per_source,
    }
    stale_after = timedelta(seconds=settings.CREDITS_MIGRATION_STALE_AFTER)
    running = MigrationRun.objects.filter(
        status=RunStatus.RUNNING, heartbeat_at__gte=timezone.now() - stale_after
    ).exists()
    if running:
        status = "in_progress"
        recommendation = "A run is in progress; wait for it, then run --verify."
    elif to_migrate:
        status = "migration_needed"
        recommendation = (
            f"{to_migrate} user-source pairs to migrate: run migrate_credits --dry-run, "
            "then --execute (perhaps --percent 5 first)."
        )
    else:
        status = "up_to_date"
        recommendation = "Nothing left to migrate; run migrate_credits --verify to confirm."
    if summary["failed"]:
        recommendation += (
            f" {summary['failed']} failed: read their errors (--status --format json), fix the"
            " data, and run --execute again to retry them."
        )
    return {
        "status": status,
        "summary": summary,
        "recommendation": recommendation,
        "failures": _failures(failed),
    }


def _failures(failed) -> list[dict]:
    """The failed users the recommendation sends the reader to (the first FAILURES_SHOWN by
    user id): who, from which source, and the error recorded."""
    rows = failed.order_by("user_id", "source").values_list(
        "user_id", "user__email", "source", "error_message"
    )
    return [
        {"user_id": user_id, "email": email or "", "source": source, "error": error}
        for user_id, email, source, error in rows[:FAILURES_SHOWN]
    ]


def _remaining(source) -> int:
    """Candidates of this source not yet COMPLETED or ROLLED_BACK, counted a chunk at a time
    (the legacy tables may be in another database, so no subquery joins them)."""
    remaining = 0
    for user_ids in candidate_batches(source, batch_size=5000):
        done = UserMigration.objects.filter(
            source=source.name, user_id__any_of=user_ids, status__in=DONE
        ).count()
        remaining += len(user_ids) - done
    return remaining


def analyze(sources: list[str], context: Context, selection: Selection) -> Report:
    """Totals before migrating: users, activity, legacy totals and what would be granted."""
    report = plan_users(sources, context, selection)
    report.mode = "analyze"
    window = settings.CREDITS_RATE_LIMIT_WINDOW_DAYS
    since = context.now - timedelta(days=window)
    recent = LegacyOperation.objects.filter(created_at__gte=since)
    operations = LegacyOperation.objects.count()
    operating_users = LegacyOperation.objects.values("user_id").distinct().count()
    threshold = settings.CREDITS_RATE_LIMIT_POWER_OPS_PER_DAY * window
    high_usage = (
        recent.values("user_id").annotate(n=Count("id")).filter(n__gt=threshold).order_by().count()
    )
    report.extra["analysis"] = {
        "users": get_user_model().objects.count(),
        "active_users_30d": recent.values("user_id").distinct().count(),
        "average_operations_per_user": str(
            (Decimal(operations) / operating_users).quantize(Decimal("0.1"))
            if operating_users
            else Decimal("0")
        ),
        "high_usage_users": high_usage,
        "data_mismatches": len(report.mismatches),
    }
    return report
