"""The seed's vocabulary: sources and tables, the proportions of the mix (described in the
package docstring), and the small rules every part shares."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time
from decimal import Decimal

from django.conf import settings
from django.db import connections, router
from django.utils import timezone

from billing.models import (
    LegacyAccount,
    LegacyBilling,
    LegacyCreditTransaction,
    LegacyOperation,
    LegacyPayment,
    LegacyUsage,
)

SOURCES = ("user_fields", "usd_balance", "rate_limit", "usage_tiers")
# Insertion order, and the order of every report.
MODELS = (
    LegacyBilling,
    LegacyAccount,
    LegacyPayment,
    LegacyCreditTransaction,
    LegacyOperation,
    LegacyUsage,
)
TABLES = tuple(model._meta.db_table for model in MODELS)
SOURCE_MODELS = {
    "user_fields": (LegacyAccount, LegacyPayment, LegacyCreditTransaction),
    "usd_balance": (LegacyBilling,),
    "rate_limit": (LegacyOperation,),
    "usage_tiers": (LegacyAccount, LegacyUsage),
}
DEFAULT_BATCH_SIZE = 5000

NO_LEGACY_DATA = 0.02
IN_BILLING = 0.60
IN_ACCOUNTS = 0.65
IN_OPERATIONS = 0.55
POWER_USERS = 0.03
INCONSISTENT_LEDGERS = 0.05
RULE_BREAKER_EVERY = 500
RULE_BREAKER_MIN_USERS = 100

BALANCE_KINDS = ("usd_only", "uah_only", "both", "zero")
BALANCE_WEIGHTS = (55, 15, 15, 15)
PLANS = ("free", "pro", "business")
PLAN_WEIGHTS = (82, 15, 3)
# Upper bound of credits_balance, in cents, per plan (fixed, so balances do not follow settings).
BALANCE_CAP_CENTS = {"free": 2000, "pro": 52000, "business": 200000}
# Monthly grant rows of the legacy ledger, in cents.
LEGACY_MONTHLY_GRANT_CENTS = {"free": 2000, "pro": 26000, "business": 100000}
SUBSCRIPTION_STATUSES = ("active", "past_due", "canceled")
SUBSCRIPTION_WEIGHTS = (85, 7, 8)
FORMER_SUBSCRIBERS = 0.10
PRICE_CENTS = {
    "price_pro_monthly": 2900,
    "price_pro_yearly": 29000,
    "price_business_monthly": 9900,
    "price_business_yearly": 99000,
}
TOP_UP_CENTS = (500, 1000, 2000, 5000)
PAYMENT_STATUSES = ("PAID", "FAILED", "REFUNDED")
PAYMENT_WEIGHTS = (80, 12, 8)
PURCHASE_CENTS = (500, 1000, 2500, 5000, 10000)
OPERATION_KINDS = ("request", "generate", "export", "api_call")
OPERATION_WEIGHTS = (55, 25, 5, 15)
HISTORY_DAYS = 60
LANGUAGES = ("en", "en", "en", "uk", "de", "pl")


class SeedRefused(ValueError):
    """The input is invalid or the seed was already used; nothing was written."""


def in_list_size(model) -> int:
    """Values per IN list for `model`'s database: below its bound-parameter limit, if any."""
    limit = connections[router.db_for_write(model)].features.max_query_params
    return limit - 10 if limit else 100_000


def username_prefix(seed: int) -> str:
    return f"legacy-s{seed}-"


def parse_sources(sources: str | Iterable[str]) -> tuple[str, ...]:
    """Source names in their canonical order; refuse unknown names and an empty list."""
    names = sources.split(",") if isinstance(sources, str) else list(sources)
    names = [name.strip() for name in names if name.strip()]
    unknown = sorted(set(names) - set(SOURCES))
    if unknown:
        raise SeedRefused(
            f"Unknown source(s): {', '.join(unknown)}. Known sources: {', '.join(SOURCES)}."
        )
    if not names:
        raise SeedRefused(f"No source given. Known sources: {', '.join(SOURCES)}.")
    return tuple(source for source in SOURCES if source in names)


def reference_moment(today: date | None = None) -> datetime:
    """Midnight of the reference day: `today`, or now truncated to the day."""
    if today is None:
        return timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    moment = datetime.combine(today, time.min)
    return moment.replace(tzinfo=UTC) if settings.USE_TZ else moment


def power_operations_threshold() -> Decimal:
    """Operations in the window above which a user is a power user (the settings' rule)."""
    return settings.CREDITS_RATE_LIMIT_POWER_OPS_PER_DAY * settings.CREDITS_RATE_LIMIT_WINDOW_DAYS
