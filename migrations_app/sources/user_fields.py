"""`user_fields`: plan, credits and subscription fields kept beside the user in `legacy_accounts`.

Each user's UserProfile is synced (plan, subscription, Stripe ids, preferences, usage stats),
`credits_balance` becomes one `migration` entry, and the legacy credit ledger and PAID payments
are recorded as `history` entries. When the legacy ledger does not sum to `credits_balance`,
the user is migrated with `credits_balance` (what they were shown) and the mismatch reported.
The legacy side is not changed.
"""

from collections import defaultdict
from decimal import Decimal

from billing.models import LegacyAccount, LegacyCreditTransaction, LegacyPayment, UserProfile
from migrations_app.sources.base import (
    Context,
    HistoryItem,
    Source,
    UserPlan,
    amount_problem,
    unknown_plan_problem,
)

PROFILE_FIELDS = (
    "plan",
    "subscription_status",
    "subscription_started_at",
    "subscription_ends_at",
    "stripe_customer_id",
    "stripe_price_id",
    "preferences",
    "usage_stats",
)


class UserFieldsSource(Source):
    name = "user_fields"
    description = "credits_balance and plan fields in legacy_accounts"
    candidate_model = LegacyAccount

    def candidate_ids(self):
        return LegacyAccount.objects.order_by("user_id").values_list("user_id", flat=True)

    def load(self, user_ids, *, lock, context):
        accounts = {
            row.user_id: row
            for row in LegacyAccount.objects.filter(user_id__any_of=user_ids).order_by("user_id")
        }
        ledgers, payments = defaultdict(list), defaultdict(list)
        for row in LegacyCreditTransaction.objects.filter(user_id__any_of=user_ids).order_by("id"):
            ledgers[row.user_id].append(row)
        payments_paid = LegacyPayment.objects.filter(user_id__any_of=user_ids, status="PAID")
        for row in payments_paid.order_by("id"):
            payments[row.user_id].append(row)
        profiles = {
            row["user_id"]: row
            for row in UserProfile.objects.filter(user_id__any_of=user_ids).values(
                "user_id", *PROFILE_FIELDS
            )
        }
        return {
            user_id: (account, ledgers[user_id], payments[user_id], profiles.get(user_id))
            for user_id, account in accounts.items()
        }

    def plan(self, user_id, data, context: Context) -> UserPlan:
        account, ledger, payments, profile = data
        plan = UserPlan(user_id=user_id, source=self.name)
        problem = amount_problem("credits_balance", account.credits_balance)
        problem = problem or unknown_plan_problem(account.plan)
        if problem:
            plan.error = problem
            return plan
        if account.credits_balance < 0:
            plan.error = f"negative legacy credits_balance ({account.credits_balance})"
            return plan
        plan.legacy_amounts = (
            {"CREDITS": account.credits_balance} if account.credits_balance else {}
        )
        plan.rates = {"CREDITS": Decimal("1")} if plan.legacy_amounts else {}
        plan.exact = account.credits_balance
        plan.credits = context.quantize(plan.exact)
        plan.profile_updates = {
            "plan": account.plan,
            "subscription_status": account.subscription_status,
            "subscription_started_at": account.subscription_started_at,
            "subscription_ends_at": account.subscription_ends_at,
            "stripe_customer_id": account.stripe_customer_id or None,
            "stripe_price_id": account.stripe_price_id,
            "preferences": account.preferences,
            "usage_stats": account.usage_stats,
        }
        plan.rollback_data = {"profile": _jsonable(profile) if profile else None}
        ledger_sum = sum((row.delta for row in ledger), Decimal("0"))
        if ledger and ledger_sum != account.credits_balance:
            plan.data_mismatch = True
            plan.mismatch_detail = (
                f"legacy ledger sums to {ledger_sum}, credits_balance is {account.credits_balance}"
            )
        plan.history = [
            HistoryItem(
                legacy_id=f"legacy_credit_transactions:{row.pk}",
                description=f"Legacy credits {row.delta:+}: {row.reason}"[:255],
                metadata={
                    "delta": str(row.delta),
                    "reason": row.reason,
                    "stripe_event_id": row.stripe_event_id,
                    "legacy_created_at": row.created_at.isoformat(),
                    "legacy_metadata": row.metadata,
                },
            )
            for row in ledger
        ] + [
            HistoryItem(
                legacy_id=f"payments:{row.pk}",
                description=f"Legacy payment {row.amount / 100:.2f} {row.currency.upper()}",
                metadata={
                    "amount_cents": row.amount,
                    "currency": row.currency,
                    "stripe_payment_intent_id": row.stripe_payment_intent_id,
                    "legacy_created_at": row.created_at.isoformat(),
                },
            )
            for row in payments
        ]
        if not plan.credits:
            plan.note = "no legacy credits"
        return plan


def _jsonable(profile: dict) -> dict:
    return {
        key: value.isoformat() if hasattr(value, "isoformat") else value
        for key, value in profile.items()
        if key != "user_id"
    }
