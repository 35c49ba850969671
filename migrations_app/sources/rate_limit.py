"""`rate_limit`: users of the rate-limit era, known by their operations in `legacy_operations`.

Each user gets an initial grant: the base amount, or the power-user amount for users averaging
more than CREDITS_RATE_LIMIT_POWER_OPS_PER_DAY operations a day over the last
CREDITS_RATE_LIMIT_WINDOW_DAYS days; every legacy operation is recorded as a `history` entry.
The legacy side is not changed.

The grant is free credits (a `promotional` lot by default), so it may be given an end:
CREDITS_RATE_LIMIT_EXPIRY_DAYS days after the run migrates the user (unset or 0: never).
"""

from collections import defaultdict
from datetime import timedelta
from decimal import Decimal

from django.conf import settings

from billing.models import LegacyOperation
from migrations_app.sources.base import Context, HistoryItem, Source, UserPlan


class RateLimitSource(Source):
    name = "rate_limit"
    description = "operations of the rate-limit era in legacy_operations"
    candidate_model = LegacyOperation

    def load(self, user_ids, *, lock, context):
        operations = defaultdict(list)
        rows = LegacyOperation.objects.filter(user_id__any_of=user_ids).order_by("id")
        for row in rows.values_list("id", "user_id", "kind", "created_at"):
            operations[row[1]].append(row)
        return operations

    def credits_expire_at(self, context: Context):
        days = settings.CREDITS_RATE_LIMIT_EXPIRY_DAYS
        return context.now + timedelta(days=days) if days else None

    def plan(self, user_id, data, context: Context) -> UserPlan:
        window = settings.CREDITS_RATE_LIMIT_WINDOW_DAYS
        since = context.now - timedelta(days=window)
        recent = sum(1 for _, _, _, created_at in data if created_at >= since)
        per_day = Decimal(recent) / Decimal(window)
        is_power_user = per_day > settings.CREDITS_RATE_LIMIT_POWER_OPS_PER_DAY
        grant = (
            settings.CREDITS_RATE_LIMIT_POWER_GRANT
            if is_power_user
            else settings.CREDITS_RATE_LIMIT_BASE_GRANT
        )
        plan = UserPlan(user_id=user_id, source=self.name, exact=grant, credits=grant)
        plan.legacy_amounts = {"OPERATIONS": Decimal(recent)}
        plan.note = f"{'power user, ' if is_power_user else ''}{per_day:.1f} operations a day"
        plan.history = [
            HistoryItem(
                legacy_id=f"legacy_operations:{operation_id}",
                description=f"Legacy operation: {kind}"[:255],
                metadata={"kind": kind, "legacy_created_at": created_at.isoformat()},
            )
            for operation_id, _, kind, created_at in data
        ]
        return plan
