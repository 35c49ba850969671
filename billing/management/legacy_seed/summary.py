"""What a seed holds: the summary `seed_legacy` returns, and the same counted from the database."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Count, Q

from billing.management.legacy_seed.mix import (
    BALANCE_KINDS,
    DEFAULT_BATCH_SIZE,
    PLANS,
    SOURCE_MODELS,
    SOURCES,
    TABLES,
    parse_sources,
    power_operations_threshold,
    reference_moment,
    username_prefix,
)
from billing.models import (
    LegacyAccount,
    LegacyBilling,
    LegacyCreditTransaction,
    LegacyOperation,
    LegacyPayment,
    LegacyUsage,
)


@dataclass
class SeedSummary:
    """What a seed holds: the same fields whether counted while seeding or from the database."""

    seed: int
    sources: tuple[str, ...]
    reference_day: date
    users_created: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    users_per_source: dict[str, int] = field(default_factory=dict)
    users_in_several_sources: int = 0
    users_without_rows: int = 0
    plans: dict[str, int] = field(default_factory=dict)
    balances: dict[str, int] = field(default_factory=dict)
    power_users: int = 0
    inconsistent_ledgers: int = 0
    rule_breaking_users: int = 0

    def lines(self) -> list[str]:
        """The summary as the command prints it."""
        threshold = settings.CREDITS_RATE_LIMIT_POWER_OPS_PER_DAY
        window = settings.CREDITS_RATE_LIMIT_WINDOW_DAYS
        lines = [
            f"Seed {self.seed}, reference day {self.reference_day.isoformat()}, "
            f"sources {', '.join(self.sources)}",
            f"Users created: {self.users_created}",
            "Rows per table:",
            *(f"  {table:<28} {count:>10}" for table, count in self.rows.items()),
            "Users per source:",
            *(f"  {source:<28} {count:>10}" for source, count in self.users_per_source.items()),
            f"Users in several sources: {self.users_in_several_sources}",
            f"Users with no legacy rows: {self.users_without_rows}",
        ]
        if self.plans:
            lines.append("Plans: " + ", ".join(f"{k} {v}" for k, v in self.plans.items()))
        if self.balances:
            lines.append("Balances: " + ", ".join(f"{k} {v}" for k, v in self.balances.items()))
        lines += [
            f"Power users (> {threshold} operations/day over {window} days): {self.power_users}",
            f"Inconsistent legacy ledgers: {self.inconsistent_ledgers}",
            f"Rule-breaking users (negative legacy balance): {self.rule_breaking_users}",
        ]
        return lines


def legacy_seed_summary(
    *, seed: int, sources: str | Iterable[str] = SOURCES, today: date | None = None
) -> SeedSummary:
    """Count what the database holds for `seed`, as `seed_legacy` reported it."""
    sources = parse_sources(sources)
    ref = reference_moment(today)
    user_model = get_user_model()
    user_ids = sorted(
        user_model._default_manager.filter(username__startswith=username_prefix(seed))
        .values_list("pk", flat=True)
        .iterator()
    )
    fills = {model for source in sources for model in SOURCE_MODELS[source]}
    summary = SeedSummary(
        seed=seed,
        sources=sources,
        reference_day=ref.date(),
        users_created=len(user_ids),
        rows=dict.fromkeys(TABLES, 0),
        users_per_source=dict.fromkeys(sources, 0),
        plans=dict.fromkeys(PLANS, 0) if LegacyAccount in fills else {},
        balances=dict.fromkeys((*BALANCE_KINDS, "negative"), 0) if LegacyBilling in fills else {},
    )
    since = ref - timedelta(days=settings.CREDITS_RATE_LIMIT_WINDOW_DAYS)
    threshold = power_operations_threshold()
    seeded = set(user_ids)
    billing_users, account_users, operation_users, breakers = set(), set(), set(), set()
    balances, ledger_sums = {}, {}
    for low, high in _id_ranges(user_ids):

        def rows(model, *fields, low=low, high=high):
            queryset = model._default_manager.filter(user_id__gte=low, user_id__lte=high)
            return [row for row in queryset.values_list("user_id", *fields) if row[0] in seeded]

        for user_id, usd, uah in rows(LegacyBilling, "balance_usd", "balance_uah"):
            billing_users.add(user_id)
            summary.balances[_balance_kind(usd, uah)] += 1
            if usd < 0 or uah < 0:
                breakers.add(user_id)
        for user_id, plan, balance in rows(LegacyAccount, "plan", "credits_balance"):
            account_users.add(user_id)
            summary.plans[plan] = summary.plans.get(plan, 0) + 1
            balances[user_id] = balance
            if balance < 0:
                breakers.add(user_id)
        for user_id, delta in rows(LegacyCreditTransaction, "delta"):
            ledger_sums[user_id] = ledger_sums.get(user_id, Decimal("0")) + delta
            summary.rows[LegacyCreditTransaction._meta.db_table] += 1
        summary.rows[LegacyPayment._meta.db_table] += len(rows(LegacyPayment))
        summary.rows[LegacyUsage._meta.db_table] += len(rows(LegacyUsage))
        operations = (
            LegacyOperation._default_manager.filter(user_id__gte=low, user_id__lte=high)
            .values("user_id")
            .annotate(total=Count("pk"), recent=Count("pk", filter=Q(created_at__gte=since)))
            .values_list("user_id", "total", "recent")
        )
        for user_id, total, recent in operations:
            if user_id in seeded:
                operation_users.add(user_id)
                summary.rows[LegacyOperation._meta.db_table] += total
                summary.power_users += recent > threshold
    summary.rows[LegacyBilling._meta.db_table] = len(billing_users)
    summary.rows[LegacyAccount._meta.db_table] = len(account_users)
    summary.inconsistent_ledgers = sum(
        1 for user_id, total in ledger_sums.items() if total != balances.get(user_id)
    )
    summary.rule_breaking_users = len(breakers)
    source_users = {
        "user_fields": account_users,
        "usd_balance": billing_users,
        "rate_limit": operation_users,
        "usage_tiers": account_users,
    }
    per_user = Counter()
    for source in sources:
        summary.users_per_source[source] = len(source_users[source])
        per_user.update(source_users[source])
    summary.users_in_several_sources = sum(1 for count in per_user.values() if count >= 2)
    summary.users_without_rows = len(seeded) - len(per_user)
    return summary


def _balance_kind(usd: Decimal, uah: Decimal) -> str:
    if usd < 0 or uah < 0:
        return "negative"
    if usd and uah:
        return "both"
    if usd:
        return "usd_only"
    return "uah_only" if uah else "zero"


def _id_ranges(ids: Sequence[int], size: int = DEFAULT_BATCH_SIZE):
    for offset in range(0, len(ids), size):
        chunk = ids[offset : offset + size]
        yield chunk[0], chunk[-1]
