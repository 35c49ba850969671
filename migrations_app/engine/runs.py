"""Runs started by staff from the admin: a `MigrationRun` row around the engine's own functions.

The command keeps its own run handling (progress bar, CSV backup, printed summary); these are
the same steps without the terminal: open the run, let the engine work, record its outcome.
Retrying re-runs `execute` for the users whose migration FAILED, with the rates and options of
the run that failed them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal

from django.conf import settings
from django.utils import timezone

from migrations_app.engine.execute import OnUser, Selection, execute
from migrations_app.engine.report import Report
from migrations_app.models import MigrationRun, MigrationStatus, RunMode, RunStatus, UserMigration
from migrations_app.sources import Context
from migrations_app.sources.base import default_rates


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


def retry_failed(
    *,
    pks: list[int],
    actor=None,
    on_user: OnUser | None = None,
    start: Callable[..., MigrationRun] = run_start,
) -> Report:
    """Migrate again the users of these UserMigration rows that are FAILED (others are left).

    `start` opens the run (run_start's arguments); `migrations_app.services` passes one that
    refuses while another execute run of the same sources is live."""
    rows = (
        UserMigration.objects.filter(pk__in=pks, status=MigrationStatus.FAILED)
        .select_related("run")
        .order_by("source", "user_id")
    )
    groups: dict[tuple, list[int]] = defaultdict(list)
    for row in rows:
        rates, keep_legacy = _options_of(row.run)
        groups[(row.source, tuple(sorted(rates.items())), keep_legacy)].append(row.user_id)
    sources = sorted({source for source, _, _ in groups})
    report = Report(mode="execute", sources=sources)
    if not groups:
        return report
    run = start(
        sources=sources,
        mode=RunMode.EXECUTE,
        parameters={
            "retry": True,
            "users": sorted({user_id for ids in groups.values() for user_id in ids}),
        },
        actor=actor,
    )
    report.run_id = run.pk
    now = timezone.now()
    for (source, rates, keep_legacy), user_ids in groups.items():
        context = Context(
            rates=dict(rates), now=now, keep_legacy=keep_legacy, rounding=settings.CREDITS_ROUNDING
        )

        def record(outcome):
            report.add(outcome)
            if on_user:
                on_user(outcome)

        execute([source], context, Selection(user_ids=user_ids), run, on_user=record)
    run_finish(run, report)
    return report


def _options_of(run: MigrationRun | None) -> tuple[dict[str, Decimal], bool]:
    rates = default_rates()
    parameters = run.parameters if run is not None else {}
    for currency, rate in (parameters.get("rates") or {}).items():
        rates[currency] = Decimal(rate)
    return rates, bool(parameters.get("keep_legacy", False))
