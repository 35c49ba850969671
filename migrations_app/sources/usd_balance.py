"""`usd_balance`: a USD and UAH balance per user in `user_billing`.

Each user gets one `migration` entry of usd x rate_usd + uah x rate_uah, quantized to 0.01
(the remainder kept on the UserMigration). The legacy balances are zeroed in the same
transaction unless --keep-legacy; the old values go to rollback_data first.
"""

from decimal import Decimal

from billing.models import LegacyBilling
from credits.models import CENT
from migrations_app.models import MigrationStatus
from migrations_app.sources.base import Context, Source, UserPlan, amount_problem, exact_value


class UsdBalanceSource(Source):
    name = "usd_balance"
    description = "USD/UAH balances in user_billing"
    candidate_model = LegacyBilling
    changes_legacy = True

    def candidate_ids(self):
        return LegacyBilling.objects.order_by("user_id").values_list("user_id", flat=True)

    def load(self, user_ids, *, lock, context):
        rows = LegacyBilling.objects.filter(user_id__any_of=user_ids).order_by("user_id")
        if lock:
            rows = rows.select_for_update()
        # Named tuples of the two balances: all that plan() reads, without building models.
        return {
            row.user_id: row
            for row in rows.values_list("user_id", "balance_usd", "balance_uah", named=True)
        }

    def plan(self, user_id, data, context: Context) -> UserPlan:
        plan = UserPlan(user_id=user_id, source=self.name)
        plan.rollback_data = {
            "balance_usd": str(data.balance_usd),
            "balance_uah": str(data.balance_uah),
            "kept_legacy": context.keep_legacy,
        }
        problem = amount_problem("balance_usd", data.balance_usd) or amount_problem(
            "balance_uah", data.balance_uah
        )
        if problem:
            plan.error = problem
            return plan
        if data.balance_usd < 0 or data.balance_uah < 0:
            plan.error = f"negative legacy balance ({data.balance_usd} USD, {data.balance_uah} UAH)"
            return plan
        amounts = {"USD": data.balance_usd, "UAH": data.balance_uah}
        plan.legacy_amounts = {currency: amount for currency, amount in amounts.items() if amount}
        plan.rates = {currency: context.rates[currency] for currency in plan.legacy_amounts}
        plan.exact = exact_value(plan.legacy_amounts, plan.rates)
        plan.credits = context.quantize(plan.exact)
        if not plan.legacy_amounts:
            plan.note = "zero balance"
        elif plan.credits == 0:
            plan.note = "balance worth less than 0.01 credits"
        return plan

    def apply_legacy(self, plans, context):
        if context.keep_legacy or not plans:
            return
        LegacyBilling.objects.filter(user_id__any_of=[plan.user_id for plan in plans]).update(
            balance_usd=Decimal("0"), balance_uah=Decimal("0")
        )

    def restore_legacy(self, user_id, rollback_data):
        if rollback_data.get("kept_legacy", False):
            return
        LegacyBilling.objects.filter(user_id=user_id).update(
            balance_usd=Decimal(rollback_data["balance_usd"]),
            balance_uah=Decimal(rollback_data["balance_uah"]),
        )

    def verify_legacy(self, rows):
        current = {
            user_id: (usd, uah)
            for user_id, usd, uah in LegacyBilling.objects.filter(
                user_id__any_of=[row.user_id for row in rows]
            ).values_list("user_id", "balance_usd", "balance_uah")
        }
        problems = []
        for row in rows:
            data = row.rollback_data
            if not data or data.get("kept_legacy"):
                continue
            if row.status == MigrationStatus.COMPLETED:
                expected = (Decimal("0"), Decimal("0"))
            else:
                expected = (Decimal(data["balance_usd"]), Decimal(data["balance_uah"]))
            usd, uah = current.get(row.user_id, (None, None))
            if usd is None or (_cents(usd), _cents(uah)) != expected:
                problems.append(
                    (
                        row.user_id,
                        f"user_billing holds {usd} USD, {uah} UAH; expected {expected[0]} USD,"
                        f" {expected[1]} UAH ({row.status})",
                    )
                )
        return problems

    def backup_rows(self, user_ids):
        return (
            LegacyBilling.objects.filter(user_id__any_of=user_ids)
            .order_by("user_id")
            .values("id", "user_id", "balance_usd", "balance_uah", "updated_at")
        )

    def needs_rate(self, currency):
        return currency in ("USD", "UAH")


def _cents(value) -> Decimal:
    return Decimal(str(value)).quantize(CENT)
