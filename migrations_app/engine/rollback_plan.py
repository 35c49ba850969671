"""What a rollback would do, row by row, before it runs: the confirmation page's table and the
command's counts. Reads only; `rollback` itself reports what it did."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import F

from core.keys import migration_key
from credits.models import CreditAccount, CreditTransaction
from credits.selectors import lots_left
from migrations_app.models import MigrationStatus, UserMigration


@dataclass
class RollbackLine:
    """What rolling back one UserMigration row would do, for a confirmation page.

    `credits` is what the migration granted, `balance` the account's balance when this row's
    turn comes (a user's earlier rows already undone, forced), `reversible` what is left of the
    migration's own lot (what a rollback reverses), `spent` the part of it the user spent
    (which stays spent), `recoverable` what force would take in its place from the account's
    other credits, and `blocked` credits of the lot that active holds reserve (the rollback is
    refused without force while they do)."""

    row: UserMigration
    credits: Decimal
    balance: Decimal
    is_possible: bool
    note: str = ""
    reversible: Decimal = Decimal("0.00")
    spent: Decimal = Decimal("0.00")
    recoverable: Decimal = Decimal("0.00")
    blocked: Decimal = Decimal("0.00")

    @property
    def has_spent(self) -> bool:
        return self.spent > 0

    @property
    def forced_reversible(self) -> Decimal:
        return self.reversible + self.recoverable

    @property
    def shortfall(self) -> Decimal:
        """What stays unreversed even with force."""
        return self.spent - self.recoverable


def rollback_order(rows):
    return rows.order_by("user_id", F("migration_date").desc(nulls_last=True), "-pk")


def rollback_preview(pks: list[int]) -> list[RollbackLine]:
    """Say, row by row in the order `rollback` takes them, which credits would be reversed: what
    is left of each migration's own lot, and with force what its user spent of it, from their
    other credits as far as they go. Reads only."""
    rows = list(rollback_order(UserMigration.objects.filter(pk__in=pks).select_related("user")))
    accounts = {
        user_id: (balance, held)
        for user_id, balance, held in CreditAccount.objects.filter(
            user_id__any_of={row.user_id for row in rows}
        ).values_list("user_id", "balance", "held")
    }
    entries = dict(
        CreditTransaction.objects.filter(
            idempotency_key__any_of=[
                migration_key(source=row.source, user_id=row.user_id, generation=row.generation)
                for row in rows
            ]
        ).values_list("idempotency_key", "pk")
    )
    amounts = dict(
        CreditTransaction.objects.filter(pk__any_of=entries.values()).values_list("pk", "amount")
    )
    left_of = lots_left(entry_ids=entries.values())
    lines = []
    for row in rows:
        balance, held = accounts.get(row.user_id, (Decimal("0.00"), Decimal("0.00")))
        if row.status != MigrationStatus.COMPLETED:
            note = (
                "already rolled back"
                if row.status == MigrationStatus.ROLLED_BACK
                else f"not migrated ({row.get_status_display().lower()})"
            )
            lines.append(RollbackLine(row, Decimal("0.00"), balance, False, note))
            continue
        entry_id = entries.get(
            migration_key(source=row.source, user_id=row.user_id, generation=row.generation)
        )
        credits = amounts.get(entry_id, Decimal("0.00"))
        left = min(left_of.get(entry_id, credits), balance)
        available = max(balance - held, Decimal("0.00"))
        blocked = max(left - available, Decimal("0.00"))
        spent = credits - left
        recoverable = min(spent, available - min(left, available))
        # The user's rows are undone one after the other: later ones see what is left.
        accounts[row.user_id] = (balance - min(left, available) - recoverable, held)
        notes = []
        if spent:
            notes.append(
                f"the user has spent {spent} of the {credits} migrated credits: they stay spent; "
                f"force takes {recoverable} of them from the account's other credits"
            )
        if blocked:
            notes.append(f"active holds reserve {blocked} of what is left: refused without force")
        lines.append(
            RollbackLine(
                row,
                credits,
                balance,
                True,
                "; ".join(notes),
                reversible=left,
                spent=spent,
                recoverable=recoverable,
                blocked=blocked,
            )
        )
    return lines


@dataclass(frozen=True)
class RollbackTotals:
    """The confirmation page's counts, from the same lines the table shows."""

    ready: int  # rolled back
    ready_credits: Decimal  # what is left of their migrations' lots: reversed
    spent_users: int  # of them, users who spent migrated credits
    spent: Decimal  # what they spent: stays spent without force
    recoverable: Decimal  # what force takes in its place from their other credits
    shortfall: Decimal  # what stays unreversed even with force
    blocked: int  # refused without force: active holds reserve credits of the lot
    skipped: int  # not completed migrations: left alone


def rollback_totals(lines: list[RollbackLine]) -> RollbackTotals:
    """Add up a preview: how many rows roll back and the credits reversed, how many of their
    users spent migrated credits and what force would take back, how many are left alone."""
    possible = [line for line in lines if line.is_possible]
    return RollbackTotals(
        ready=len(possible),
        ready_credits=sum((line.reversible for line in possible), Decimal("0.00")),
        spent_users=sum(1 for line in possible if line.has_spent),
        spent=sum((line.spent for line in possible), Decimal("0.00")),
        recoverable=sum((line.recoverable for line in possible), Decimal("0.00")),
        shortfall=sum((line.shortfall for line in possible), Decimal("0.00")),
        blocked=sum(1 for line in possible if line.blocked),
        skipped=sum(1 for line in lines if not line.is_possible),
    )
