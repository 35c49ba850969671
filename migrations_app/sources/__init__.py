"""The legacy sources the migration knows, by name (`--source NAME`)."""

from migrations_app.sources.base import Context, HistoryItem, Source, UserPlan
from migrations_app.sources.rate_limit import RateLimitSource
from migrations_app.sources.usage_tiers import UsageTiersSource
from migrations_app.sources.usd_balance import UsdBalanceSource
from migrations_app.sources.user_fields import UserFieldsSource

SOURCES: dict[str, type[Source]] = {
    source.name: source
    for source in (UserFieldsSource, UsdBalanceSource, RateLimitSource, UsageTiersSource)
}


def get_source(name: str) -> Source:
    try:
        return SOURCES[name]()
    except KeyError:
        raise KeyError(f"unknown source {name!r}; known: {', '.join(SOURCES)}") from None


__all__ = ["SOURCES", "Context", "HistoryItem", "Source", "UserPlan", "get_source"]
