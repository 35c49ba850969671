"""Monitoring: what needs a person's attention, for `check_credits` (cron, alerting) and
GET /api/admin/billing/health. Each check has a count, whether it needs attention, and a few
examples; the whole needs attention when any check does.

It sits in ops, the top of the stack, because it reads every app (the dependency direction is
ops -> migrations_app -> billing -> credits -> core).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from djstripe.models import WebhookEventTrigger

from billing.models import StripeEventIssue
from credits.exceptions import StaffPermissionDenied
from credits.models import CENT
from credits.selectors import (
    accounts_off_their_holds,
    accounts_off_their_lots,
    accounts_out_of_balance,
    accounts_with_negative_balance,
    lots_off_their_allocations,
    spend_refusals_since,
)
from migrations_app.models import MigrationRun, MigrationStatus, RunStatus, UserMigration

EXAMPLES = 10
HEALTH_PERMISSION = "credits.view_creditaccount"
WINDOW = timedelta(hours=1)


def _money(value) -> Decimal:
    # SQLite returns annotated sums as floats; they hold 2-place values.
    return Decimal(str(value or 0)).quantize(CENT)


def _check(count: int, attention: bool | None, examples: list, meaning: str) -> dict[str, Any]:
    """One check's answer; it needs attention when `attention` says so, or (None) when it
    counted anything."""
    return {
        "count": count,
        "needs_attention": count > 0 if attention is None else attention,
        "examples": examples[:EXAMPLES],
        "meaning": meaning,
    }


def credits_health(*, actor=None, now=None) -> dict[str, Any]:
    """Every check, and `needs_attention` when any check does.

    A staff caller (`actor`, the API) needs `credits.view_creditaccount`; `check_credits`, a
    system caller run by an operator on the machine, passes none."""
    if actor is not None and not actor.has_perm(HEALTH_PERMISSION):
        raise StaffPermissionDenied(
            "You do not have the permission to view the billing health checks.",
            permission=HEALTH_PERMISSION,
        )
    now = now or timezone.now()
    since = now - WINDOW
    stale_before = now - timedelta(seconds=settings.CREDITS_MIGRATION_STALE_AFTER)

    out_of_balance = accounts_out_of_balance()
    negative = accounts_with_negative_balance()
    off_lots = accounts_off_their_lots()
    off_allocations = lots_off_their_allocations()
    off_holds = accounts_off_their_holds()
    refusals = spend_refusals_since(since=since)
    refusal_count = refusals.count()
    webhooks = WebhookEventTrigger.objects.filter(created__gte=since).filter(
        ~Q(exception="") | Q(processed=False)
    )
    issues = StripeEventIssue.objects.filter(created_at__gte=since)
    failed = UserMigration.objects.filter(status=MigrationStatus.FAILED)
    stuck = MigrationRun.objects.filter(status__in=[RunStatus.PENDING, RunStatus.RUNNING]).filter(
        Q(heartbeat_at__lt=stale_before) | Q(heartbeat_at__isnull=True, started_at__lt=stale_before)
    )
    checks = {
        "ledger_mismatches": _check(
            out_of_balance.count(),
            None,
            [
                {"account_id": a.pk, "user_id": a.user_id, "balance": str(a.balance)}
                for a in out_of_balance.order_by("pk")[:EXAMPLES]
            ],
            "accounts whose balance differs from the sum of their ledger entries",
        ),
        "negative_balances": _check(
            negative.count(),
            None,
            [{"account_id": a.pk, "balance": str(a.balance)} for a in negative[:EXAMPLES]],
            "accounts below zero (the database refuses them; checked anyway)",
        ),
        "lot_mismatches": _check(
            off_lots.count() + off_allocations.count(),
            None,
            [
                {
                    "account_id": a.pk,
                    "user_id": a.user_id,
                    "balance": str(a.balance),
                    "lots_remaining": str(_money(a.lots_total)),
                }
                for a in off_lots.order_by("pk")[:EXAMPLES]
            ]
            + [
                {
                    "account_id": lot.account_id,
                    "user_id": lot.account.user_id,
                    "lot_id": lot.pk,
                    "remaining": str(lot.remaining),
                    "amount_less_allocations": str(_money(lot.amount - _money(lot.allocated))),
                }
                for lot in off_allocations.select_related("account").order_by("pk")[:EXAMPLES]
            ],
            "accounts whose balance differs from the sum of their lots' remaining, and lots "
            "whose remaining differs from their amount less their allocations",
        ),
        "hold_mismatches": _check(
            off_holds.count(),
            None,
            [
                {
                    "account_id": a.pk,
                    "user_id": a.user_id,
                    "held": str(a.held),
                    "active_holds": str(_money(a.holds_total)),
                    "balance": str(a.balance),
                }
                for a in off_holds.order_by("pk")[:EXAMPLES]
            ],
            "accounts whose held differs from the sum of their active holds or is above "
            "their balance",
        ),
        "failed_spends_last_hour": _check(
            refusal_count,
            refusal_count > settings.CREDITS_CHECK_FAILED_SPENDS_PER_HOUR,
            [
                {"account_id": r.account_id, "amount": str(r.amount), "code": r.code}
                for r in refusals.order_by("-pk")[:EXAMPLES]
            ],
            "spends refused for too little credit in the last hour "
            f"(attention above {settings.CREDITS_CHECK_FAILED_SPENDS_PER_HOUR})",
        ),
        "failed_webhooks_last_hour": _check(
            webhooks.count() + issues.count(),
            None,
            [{"webhook_trigger_id": w.pk, "exception": w.exception} for w in webhooks[:EXAMPLES]]
            + [{"stripe_event_id": i.stripe_event_id, "issue": i.kind} for i in issues[:EXAMPLES]],
            "Stripe webhook deliveries that failed or were not processed, and Stripe event "
            "issues, in the last hour",
        ),
        "failed_migrations": _check(
            failed.count(),
            None,
            [
                {"user_id": m.user_id, "source": m.source, "error": m.error_message[:200]}
                for m in failed.order_by("pk")[:EXAMPLES]
            ],
            "users whose migration from a source is FAILED",
        ),
        "stuck_migration_runs": _check(
            stuck.count(),
            None,
            [
                {"run_id": r.pk, "source": r.source, "heartbeat_at": r.heartbeat_at}
                for r in stuck.order_by("pk")[:EXAMPLES]
            ],
            "running migration runs with no heartbeat for "
            f"{settings.CREDITS_MIGRATION_STALE_AFTER} seconds",
        ),
    }
    return {
        "needs_attention": any(check["needs_attention"] for check in checks.values()),
        "checked_at": now,
        "checks": checks,
    }
