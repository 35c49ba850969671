"""What a run did, user by user and in total: the facts the command prints as text or JSON."""

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any


class Outcome:
    MIGRATE = "migrate"  # dry run: would be migrated
    MIGRATED = "migrated"
    SKIPPED = "skipped"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"
    REFUSED = "refused"


@dataclass
class UserOutcome:
    user_id: int
    source: str
    outcome: str
    credits: Decimal = Decimal("0.00")
    legacy_amounts: dict[str, Decimal] = field(default_factory=dict)
    remainder: Decimal = Decimal("0")
    history: int = 0
    note: str = ""
    error: str = ""
    data_mismatch: str = ""
    # A rollback's figures (spent_before_rollback, taken_from_account, shortfall), added up
    # in the run's stats.
    rollback: dict[str, Decimal] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "source": self.source,
            "outcome": self.outcome,
            "credits": str(self.credits),
            "legacy_amounts": {key: str(value) for key, value in self.legacy_amounts.items()},
            "rounding_remainder": str(self.remainder),
            "history_entries": self.history,
            "note": self.note,
            "error": self.error,
            "data_mismatch": self.data_mismatch,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "UserOutcome":
        """The outcome `as_dict` described (reports of batches are stored as JSON)."""
        return cls(
            user_id=data["user_id"],
            source=data["source"],
            outcome=data["outcome"],
            credits=Decimal(data["credits"]),
            legacy_amounts={key: Decimal(value) for key, value in data["legacy_amounts"].items()},
            remainder=Decimal(data["rounding_remainder"]),
            history=data["history_entries"],
            note=data["note"],
            error=data["error"],
            data_mismatch=data["data_mismatch"],
        )


@dataclass
class Report:
    mode: str
    sources: list[str]
    parameters: dict[str, Any] = field(default_factory=dict)
    counts: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)
    legacy_totals: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    credits: Decimal = Decimal("0.00")
    remainder: Decimal = Decimal("0")
    history: int = 0
    failures: list[UserOutcome] = field(default_factory=list)
    mismatches: list[UserOutcome] = field(default_factory=list)
    per_source: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    extra: dict[str, Any] = field(default_factory=dict)
    run_id: int | None = None

    def add(self, outcome: UserOutcome) -> None:
        self.counts[outcome.outcome] += 1
        self.per_source[outcome.source][outcome.outcome] += 1
        if outcome.outcome == Outcome.SKIPPED:
            self.skipped[outcome.note] += 1
        elif outcome.outcome in (Outcome.FAILED, Outcome.REFUSED):
            self.failures.append(outcome)
        elif outcome.outcome in (Outcome.MIGRATE, Outcome.MIGRATED, Outcome.ROLLED_BACK):
            for currency, amount in outcome.legacy_amounts.items():
                self.legacy_totals[currency] += amount
            self.credits += outcome.credits
            self.remainder += outcome.remainder
            self.history += outcome.history
            for name, value in outcome.rollback.items():
                self.extra[name] = str(Decimal(self.extra.get(name, "0.00")) + value)
        if outcome.data_mismatch:
            self.mismatches.append(outcome)

    def absorb(self, data: dict[str, Any]) -> None:
        """Add the totals of another report, given as its `as_dict()` (a batch's report)."""
        self.counts.update(data.get("users", {}))
        for name, counts in data.get("per_source", {}).items():
            self.per_source[name].update(counts)
        self.skipped.update(data.get("skipped", {}))
        for currency, amount in data.get("legacy_totals", {}).items():
            self.legacy_totals[currency] += Decimal(amount)
        self.credits += Decimal(data.get("credits", "0"))
        self.remainder += Decimal(data.get("rounding_remainder", "0"))
        self.history += data.get("history_entries", 0)
        self.failures += [UserOutcome.from_dict(item) for item in data.get("failures", [])]
        self.mismatches += [UserOutcome.from_dict(item) for item in data.get("data_mismatches", [])]

    @property
    def failed(self) -> int:
        return len(self.failures)

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "run_id": self.run_id,
            "sources": self.sources,
            "parameters": self.parameters,
            "users": dict(self.counts),
            "per_source": {name: dict(counts) for name, counts in self.per_source.items()},
            "legacy_totals": {key: str(value) for key, value in sorted(self.legacy_totals.items())},
            "credits": str(self.credits),
            "rounding_remainder": str(self.remainder),
            "history_entries": self.history,
            "skipped": dict(self.skipped),
            "failures": [outcome.as_dict() for outcome in self.failures],
            "data_mismatches": [outcome.as_dict() for outcome in self.mismatches],
            **self.extra,
        }
