"""`usage_tiers`: a plan per user (`legacy_accounts.plan`) and its usage this period
(`legacy_usage`).

Each user gets what is left of their tier's allowance this period: max(0, monthly_credits -
used), with monthly_credits from CREDITS_PLANS, and their plan is set on UserProfile. A plan
that CREDITS_PLANS does not know fails the user. The legacy side is not changed.

The allowance is this period's, so its lot (`monthly` by default) expires when the period ends,
as a monthly grant of the period would (billing's `period_end`); from the next period on the
monthly grants take over.
"""

from collections import defaultdict
from decimal import Decimal

from django.conf import settings

from billing.models import LegacyAccount, LegacyUsage, UserProfile
from billing.services import period_end
from migrations_app.sources.base import (
    Context,
    Source,
    UserPlan,
    amount_problem,
    unknown_plan_problem,
)

NEW_PROFILE_PLAN = UserProfile._meta.get_field("plan").get_default()


class UsageTiersSource(Source):
    name = "usage_tiers"
    description = "plan allowances and this period's usage in legacy_accounts and legacy_usage"
    candidate_model = LegacyAccount

    def candidate_ids(self):
        return LegacyAccount.objects.order_by("user_id").values_list("user_id", flat=True)

    def load(self, user_ids, *, lock, context):
        used = defaultdict(Decimal)
        rows = LegacyUsage.objects.filter(user_id__any_of=user_ids, period=context.period)
        for user_id, amount in rows.values_list("user_id", "amount_used"):
            # A NULL stays NULL (and NaN stays NaN) for plan() to refuse in words.
            known = used[user_id]
            used[user_id] = None if amount is None or known is None else known + amount
        profiles = dict(
            UserProfile.objects.filter(user_id__any_of=user_ids).values_list("user_id", "plan")
        )
        legacy_plans = LegacyAccount.objects.filter(user_id__any_of=user_ids).values_list(
            "user_id", "plan"
        )
        return {
            user_id: (legacy_plan, used[user_id], profiles.get(user_id))
            for user_id, legacy_plan in legacy_plans
        }

    def credits_expire_at(self, context: Context):
        return period_end(context.period)

    def plan(self, user_id, data, context: Context) -> UserPlan:
        legacy_plan, used, previous_plan = data
        plan = UserPlan(user_id=user_id, source=self.name)
        problem = unknown_plan_problem(legacy_plan) or amount_problem("amount_used", used)
        if problem:
            plan.error = problem
            return plan
        monthly = settings.CREDITS_PLANS[legacy_plan]
        plan.exact = max(Decimal("0"), monthly - used)
        plan.credits = context.quantize(plan.exact)
        plan.legacy_amounts = {"ALLOWANCE": monthly, "USED": used}
        plan.profile_updates = {"plan": legacy_plan}
        # Only the plan: without a profile before, the plan a new profile has. (None would mean
        # "reset every synced field", undoing what user_fields set on the profile too.)
        plan.rollback_data = {"profile": {"plan": previous_plan or NEW_PROFILE_PLAN}}
        if not plan.credits:
            plan.note = "allowance used up this period"
        return plan
