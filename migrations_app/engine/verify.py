"""Verify: every migrated credit accounted for, to the cent.

For each source: each COMPLETED user's ledger holds exactly the credits granted for that source
(a ROLLED_BACK user's holds only the recorded shortfall; both plus what forced rollbacks of
earlier generations could not take back), granted credits plus the rounding remainder equal
the legacy amounts times the rates, and the legacy side is as the source left it. Across the
ledger: every account's balance equals the sum of its entries and of its lots' remaining, each
lot's remaining its amount less its allocations, and held the sum of its active holds, at most
the balance. Totals per currency are reported beside the discrepancies.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Sum

from credits.models import CENT, CreditTransaction
from credits.selectors import (
    accounts_off_their_holds,
    accounts_off_their_lots,
    accounts_out_of_balance,
    lots_off_their_allocations,
)
from migrations_app.models import MigrationStatus, UserMigration
from migrations_app.sources import get_source

CHUNK = 2000


@dataclass
class Discrepancy:
    user_id: int
    source: str
    problem: str

    def as_dict(self):
        return {"user_id": self.user_id, "source": self.source, "problem": self.problem}


@dataclass
class Verification:
    sources: list[str]
    discrepancies: list[Discrepancy] = field(default_factory=list)
    totals: dict[str, dict[str, Decimal]] = field(default_factory=dict)
    users: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def is_clean(self) -> bool:
        return not self.discrepancies

    def as_dict(self):
        return {
            "mode": "verify",
            "sources": self.sources,
            "clean": self.is_clean,
            "users": self.users,
            "totals": {
                name: {key: str(value) for key, value in totals.items()}
                for name, totals in self.totals.items()
            },
            "discrepancies": [item.as_dict() for item in self.discrepancies],
        }


def _decimal(value) -> Decimal:
    return Decimal(str(value or 0)).quantize(CENT)


def verify(sources: list[str]) -> Verification:
    result = Verification(sources=sources)
    for name in sources:
        _verify_source(name, result)
    for account in accounts_out_of_balance().select_related("user"):
        result.discrepancies.append(
            Discrepancy(
                account.user_id,
                "ledger",
                f"balance {account.balance} differs from the sum of its entries "
                f"{_decimal(account.ledger_total)}",
            )
        )
    _verify_lots_and_holds(result)
    return result


def _verify_lots_and_holds(result: Verification) -> None:
    """Invariants 11 and 12 across the ledger: balance = lots' remaining, each lot's remaining
    = its amount less its allocations, held = active holds and at most the balance."""
    for account in accounts_off_their_lots().order_by("pk"):
        result.discrepancies.append(
            Discrepancy(
                account.user_id,
                "lots",
                f"balance {account.balance} differs from the sum of its lots' remaining "
                f"{_decimal(account.lots_total)}",
            )
        )
    for lot in lots_off_their_allocations().select_related("account").order_by("pk"):
        result.discrepancies.append(
            Discrepancy(
                lot.account.user_id,
                "lots",
                f"lot {lot.pk} has {lot.remaining} remaining, its amount less its allocations "
                f"is {_decimal(lot.amount - _decimal(lot.allocated))}",
            )
        )
    for account in accounts_off_their_holds().order_by("pk"):
        result.discrepancies.append(
            Discrepancy(
                account.user_id,
                "holds",
                f"held {account.held} is not its active holds {_decimal(account.holds_total)}"
                f" or is above its balance {account.balance}",
            )
        )


def _verify_source(name: str, result: Verification) -> None:
    source = get_source(name)
    totals: dict[str, Decimal] = defaultdict(Decimal)
    users: dict[str, int] = defaultdict(int)
    rows = UserMigration.objects.filter(
        source=name, status__in=[MigrationStatus.COMPLETED, MigrationStatus.ROLLED_BACK]
    ).order_by("user_id")
    last = 0
    while True:
        chunk = list(rows.filter(user_id__gt=last)[:CHUNK])
        if not chunk:
            break
        last = chunk[-1].user_id
        ledger = {
            row["account__user_id"]: _decimal(row["net"])
            for row in CreditTransaction.objects.filter(
                account__user_id__any_of=[row.user_id for row in chunk], migrated_from=name
            )
            .order_by()
            .values("account__user_id")
            .annotate(net=Sum("amount"))
        }
        for row in chunk:
            users[row.status] += 1
            net = ledger.get(row.user_id, Decimal("0.00"))
            totals["ledger_net"] += net
            # Credits that forced rollbacks of earlier generations could not take back.
            earlier = Decimal(row.rollback_data.get("earlier_shortfall", "0"))
            if row.status == MigrationStatus.COMPLETED:
                expected = row.initial_credits_granted + earlier
                totals["credits_granted"] += row.initial_credits_granted
                totals["rounding_remainder"] += row.rounding_remainder
                _check_rates(row, totals, result)
            else:
                shortfall = row.rollback_data.get("rollback", {}).get("shortfall", "0")
                expected = Decimal(shortfall) + earlier
            if net != expected:
                result.discrepancies.append(
                    Discrepancy(
                        row.user_id,
                        name,
                        f"ledger holds {net} credits from {name}, expected {expected}"
                        f" ({row.status})",
                    )
                )
        for user_id, problem in source.verify_legacy(chunk):
            result.discrepancies.append(Discrepancy(user_id, name, problem))
    result.totals[name] = dict(totals)
    result.users[name] = dict(users)


def _check_rates(row: UserMigration, totals, result: Verification) -> None:
    if not row.rates:
        return
    exact = Decimal("0")
    for currency, amount in row.legacy_amounts.items():
        amount = Decimal(amount)
        totals[f"legacy_{currency}"] += amount
        exact += amount * Decimal(row.rates[currency])
    totals["legacy_value"] += exact
    if row.initial_credits_granted + row.rounding_remainder != exact:
        result.discrepancies.append(
            Discrepancy(
                row.user_id,
                row.source,
                f"granted {row.initial_credits_granted} + remainder {row.rounding_remainder}"
                f" is not the legacy value {exact}",
            )
        )
