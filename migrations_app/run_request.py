"""A run's parameters, validated once, whichever door they came in by.

The command parses its text options, the API its JSON body, the admin's Retry and Roll back
their selection; each builds a `RunRequest` and calls `validate(actor)` (the services call it
again: it is cheap and it is where the rule lives). The bounds are the same for all: rates above
0, finite, at most 6 places (cents times a rate must fit the 8 places of
`UserMigration.rounding_remainder`), within the `rate` column, and at most
`CREDITS_MIGRATION_RATE_MAX` unless the caller holds `credits.adjust_unlimited` (an operator at
the shell says `--allow-high-rate`); a percent in (0, 100]; known sources; existing users.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model

from migrations_app.authorization import (
    PREVIEW_PERMISSION,
    RUN_PERMISSION,
    UNLIMITED_PERMISSION,
    is_allowed,
    migration_permission_check,
)
from migrations_app.exceptions import InvalidRunRequest
from migrations_app.sources import SOURCES
from migrations_app.sources.base import default_rates

RATE_PLACES = 6
# UserMigration.rate: 18 digits, 6 places.
RATE_COLUMN_MAX = Decimal("999999999999.999999")
MAX_WORKERS = 16
MAX_BATCH_SIZE = 10_000


@dataclass
class RunRequest:
    """What a migration run is asked to do. `rates` holds only what the caller set; the
    configured rates fill the rest (`all_rates`)."""

    sources: list[str] = field(default_factory=lambda: list(settings.CREDITS_MIGRATION_SOURCES))
    rates: dict[str, Decimal] = field(default_factory=dict)
    percent: Decimal = Decimal("100")
    user_ids: list[int] | None = None
    batch_size: int = field(default_factory=lambda: settings.CREDITS_MIGRATION_BATCH_SIZE)
    workers: int = field(default_factory=lambda: settings.CREDITS_MIGRATION_WORKERS)
    keep_legacy: bool = False
    notify: bool = True
    dry_run: bool = True
    # An operator's explicit "yes, above CREDITS_MIGRATION_RATE_MAX" (the command's flag);
    # staff need the permission instead.
    allow_high_rate: bool = False

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> RunRequest:
        """From the API's parsed body (its serializer has checked the types)."""
        return cls(
            sources=list(dict.fromkeys(data.get("sources") or settings.CREDITS_MIGRATION_SOURCES)),
            rates=dict(data.get("rates") or {}),
            percent=data.get("percent", Decimal("100")),
            user_ids=data.get("users"),
            batch_size=data.get("batch_size") or settings.CREDITS_MIGRATION_BATCH_SIZE,
            keep_legacy=data.get("keep_legacy", False),
            notify=data.get("notify", True),
            dry_run=data.get("dry_run", True),
        )

    @property
    def all_rates(self) -> dict[str, Decimal]:
        rates = default_rates()
        rates.update(self.rates)
        return rates

    def validate(self, actor, *, permission: str = "") -> RunRequest:
        """Refuse (InvalidRunRequest, MigrationPermissionDenied) what this actor may not run;
        `actor=None` is an operator at the shell. `permission`: the one the operation needs
        when it is not a plain run (a retry). Returns self."""
        if not permission:
            permission = PREVIEW_PERMISSION if self.dry_run else RUN_PERMISSION
        migration_permission_check(actor, permission)
        if not self.sources:
            raise InvalidRunRequest("sources", "name at least one source.")
        unknown = [name for name in self.sources if name not in SOURCES]
        if unknown:
            raise InvalidRunRequest(
                "sources",
                f"unknown source {', '.join(unknown)}; known sources: {', '.join(SOURCES)}.",
            )
        for currency, rate in self.rates.items():
            problem = self._rate_problem(currency, rate, actor)
            if problem:
                raise InvalidRunRequest("rates", problem, key=currency)
        if not isinstance(self.percent, Decimal) or not (
            self.percent.is_finite() and 0 < self.percent <= 100
        ):
            raise InvalidRunRequest("percent", "must be above 0 and at most 100.")
        if not 1 <= self.batch_size <= MAX_BATCH_SIZE:
            raise InvalidRunRequest("batch_size", f"must be between 1 and {MAX_BATCH_SIZE}.")
        if not 1 <= self.workers <= MAX_WORKERS:
            raise InvalidRunRequest("workers", f"must be between 1 and {MAX_WORKERS}.")
        if self.user_ids is not None:
            if not self.user_ids:
                raise InvalidRunRequest("users", "name at least one user.")
            found = set(
                get_user_model().objects.filter(pk__in=self.user_ids).values_list("pk", flat=True)
            )
            missing = sorted(set(self.user_ids) - found)
            if missing:
                raise InvalidRunRequest("users", f"no such users: {missing[:20]}.")
        return self

    def _rate_problem(self, currency: str, rate, actor) -> str:
        if currency not in default_rates():
            return f"unknown currency {currency} (USD or UAH)."
        if not isinstance(rate, Decimal) or not rate.is_finite() or rate <= 0:
            return "a rate must be a number above 0."
        if rate.normalize().as_tuple().exponent < -RATE_PLACES:
            return f"at most {RATE_PLACES} decimal places."
        if rate > RATE_COLUMN_MAX:
            return f"a rate must be at most {RATE_COLUMN_MAX.normalize():f}."
        limit = settings.CREDITS_MIGRATION_RATE_MAX
        if rate > limit:
            if actor is None and not self.allow_high_rate:
                return (
                    f"above CREDITS_MIGRATION_RATE_MAX ({limit}); pass --allow-high-rate "
                    "if it is meant."
                )
            if actor is not None and not is_allowed(actor, UNLIMITED_PERMISSION):
                return (
                    f"above CREDITS_MIGRATION_RATE_MAX ({limit}); a higher rate needs the "
                    f"permission {UNLIMITED_PERMISSION}."
                )
        return ""

    def parameters(self) -> dict[str, Any]:
        """The run's parameters as stored on MigrationRun (JSON: decimals as strings)."""
        return {
            "rates": {key: str(value) for key, value in self.all_rates.items()},
            "percent": str(self.percent),
            "users": self.user_ids,
            "batch_size": self.batch_size,
            "workers": self.workers,
            "keep_legacy": self.keep_legacy,
            "notify": self.notify,
        }
