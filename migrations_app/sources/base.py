"""What a legacy source is: it finds its users, loads their legacy rows a batch at a time,
says what each user gets (a `UserPlan`), changes the legacy side for a batch in one statement,
and knows how to put it back.

A host project with another legacy schema writes one more subclass and registers it in
`migrations_app.sources.SOURCES`; the engine, the command and the API need nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, ClassVar

from django.conf import settings
from django.db import models

CENT = Decimal("0.01")


@dataclass(frozen=True)
class Context:
    """The parameters of one run, the same for every user in it."""

    rates: dict[str, Decimal]
    now: datetime
    keep_legacy: bool = False
    rounding: str = ROUND_HALF_EVEN

    @property
    def period(self) -> str:
        return self.now.strftime("%Y-%m")

    def quantize(self, exact: Decimal) -> Decimal:
        return exact.quantize(CENT, rounding=self.rounding)


@dataclass(frozen=True)
class HistoryItem:
    """A legacy row recorded on the ledger as a `history` entry (amount 0)."""

    legacy_id: str
    description: str
    metadata: dict[str, Any]


@dataclass
class UserPlan:
    """What one user gets from one source, or why they get nothing."""

    user_id: int
    source: str
    exact: Decimal = Decimal("0")
    credits: Decimal = Decimal("0.00")
    legacy_amounts: dict[str, Decimal] = field(default_factory=dict)
    rates: dict[str, Decimal] = field(default_factory=dict)
    history: list[HistoryItem] = field(default_factory=list)
    profile_updates: dict[str, Any] = field(default_factory=dict)
    rollback_data: dict[str, Any] = field(default_factory=dict)
    data_mismatch: bool = False
    mismatch_detail: str = ""
    note: str = ""
    error: str = ""

    @property
    def remainder(self) -> Decimal:
        return self.exact - self.credits

    @property
    def is_failed(self) -> bool:
        return bool(self.error)


class Source:
    name: ClassVar[str]
    description: ClassVar[str]
    # The legacy model whose rows name this source's users (a `user` foreign key).
    candidate_model: ClassVar[type[models.Model]]
    # Whether execute changes legacy rows (and so writes a CSV backup of them first).
    changes_legacy: ClassVar[bool] = False

    def candidate_ids(self) -> models.QuerySet:
        """The ids of users with data in this source, ascending, without duplicates."""
        return (
            self.candidate_model.objects.order_by("user_id")
            .values_list("user_id", flat=True)
            .distinct()
        )

    def load(self, user_ids: list[int], *, lock: bool, context: Context) -> dict[int, Any]:
        """The legacy data of these users, by user id, in a few queries for the whole batch.

        `lock` when the batch will change it (the rows stay locked until the batch commits).
        """
        raise NotImplementedError

    def plan(self, user_id: int, data: Any, context: Context) -> UserPlan:
        raise NotImplementedError

    def apply_legacy(self, plans: list[UserPlan], context: Context) -> None:
        """Change the legacy side for migrated users, one statement per batch."""

    def restore_legacy(self, user_id: int, rollback_data: dict[str, Any]) -> None:
        """Put back what `apply_legacy` changed, from the values kept in rollback_data."""

    def verify_legacy(self, rows: list) -> list[tuple[int, str]]:
        """Problems on the legacy side of these UserMigration rows: (user id, problem)."""
        return []

    def backup_rows(self, user_ids: list[int]) -> Iterable[dict[str, Any]]:
        """The legacy rows `apply_legacy` would change for these users, for the CSV backup."""
        return []

    def needs_rate(self, currency: str) -> bool:
        return False

    def credits_expire_at(self, context: Context) -> datetime | None:
        """When the credits this source grants in this run expire (their lot's expires_at);
        None: never. Their lot's category is CREDITS_LOT_CATEGORIES' "migration:<name>"."""
        return None


# The ledger's amount column (credits.models: 14 digits, 2 places): the largest credits one
# entry, or one balance, can hold.
LEDGER_MAX = Decimal("999999999999.99")


def amount_problem(name: str, value: Decimal | None) -> str:
    """Why a legacy amount cannot be migrated, as an operator reads it ("" when it can).

    NULL and NaN reach here from a legacy database (PostgreSQL's numeric holds NaN); a
    comparison with NaN would raise, so these are checked first, before any arithmetic."""
    if value is None:
        return f"{name} is NULL"
    if not isinstance(value, Decimal):
        value = Decimal(str(value))
    if value.is_nan():
        return f"{name} is NaN"
    if not value.is_finite():
        return f"{name} is {value}"
    if abs(value) > LEDGER_MAX:
        return f"{name} is {value}, beyond the largest amount the ledger holds ({LEDGER_MAX})"
    return ""


def credits_problem(credits: Decimal) -> str:
    """Why a planned grant cannot be written ("" when it can): shared by every source."""
    if not credits.is_finite():
        return f"the credits computed are {credits}"
    if credits > LEDGER_MAX:
        return (
            f"{credits} credits is beyond the largest amount the ledger holds ({LEDGER_MAX}); "
            "check the rates"
        )
    return ""


def unknown_plan_problem(plan: str | None) -> str:
    """Why a legacy plan cannot be migrated ("" when CREDITS_PLANS knows it)."""
    if plan not in settings.CREDITS_PLANS:
        return f"unknown plan {plan!r} (not in CREDITS_PLANS)"
    return ""


def exact_value(amounts: dict[str, Decimal], rates: dict[str, Decimal]) -> Decimal:
    return sum((amount * rates[currency] for currency, amount in amounts.items()), Decimal("0"))


def default_rates() -> dict[str, Decimal]:
    return {"USD": settings.CREDITS_RATE_USD, "UAH": settings.CREDITS_RATE_UAH}
