"""Rollback: undo a user's migration from a source without deleting anything.

The migration entry gets a `reversal` entry, the legacy values come back from rollback_data,
the profile fields the source synced come back too, and the UserMigration becomes ROLLED_BACK
with its generation bumped (so migrating again writes a new entry under a new key). The
reversal takes what is left of the migration's own lot: what the user spent of it stays spent
and is recorded (`spent_before_rollback`). With `force` the reversal also takes that spent part
from the account's other credits, as far as they go, and records what it took
(`taken_from_account`) and what it could not (`shortfall`, what stays on the ledger). Active
holds that reserve credits of the lot refuse the rollback unless forced. Each user and source is
its own transaction; rolling back twice changes nothing the second time.

Who may roll back, and force, is settled before any of this runs: these functions take a
`RollbackAuthority` (made only by passing the permission checks) instead of an actor and a
flag, and `migrations_app.services.migration_rollback` is the one door the command, the API and
the admin use.

A user's migrations are undone newest first: a source's rollback_data holds the profile as the
sources migrated before it left it, so undoing an older one first would let a newer one's
restore bring back what the older one had set.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.utils import timezone

from billing.services import profile_restore, profiles_mark_unmigrated
from core.keys import migration_key, rollback_key
from credits.exceptions import InsufficientCredits
from credits.models import CreditAccount, CreditLot, CreditTransaction
from credits.selectors import allocations_of, lots_left
from credits.services import credit_reverse
from migrations_app.authorization import RollbackAuthority
from migrations_app.engine.databases import unit_of_work
from migrations_app.engine.execute import OnUser, _count_progress
from migrations_app.engine.report import Outcome, Report, UserOutcome
from migrations_app.engine.rollback_plan import (
    RollbackLine,
    RollbackTotals,
    rollback_order,
    rollback_preview,
    rollback_totals,
)
from migrations_app.engine.runs import run_finish, run_start
from migrations_app.models import MigrationRun, MigrationStatus, RunMode, UserMigration
from migrations_app.sources import get_source
from migrations_app.sources.user_fields import PROFILE_FIELDS

__all__ = [
    "ROLLBACK_REASON",
    "RollbackLine",
    "RollbackTotals",
    "rollback",
    "rollback_preview",
    "rollback_rows",
    "rollback_totals",
]

ROLLBACK_REASON = "Rollback of the credit migration"


def rollback(
    *,
    sources: list[str],
    user_ids: list[int] | None,
    run: MigrationRun,
    authority: RollbackAuthority,
    reason: str = ROLLBACK_REASON,
    on_user: OnUser | None = None,
) -> Report:
    """Roll back the given users (None: everyone) from the given sources."""
    _check_authority(authority)
    report = _rollback_report(sources, run)
    rows = UserMigration.objects.filter(
        source__in=sources, status__in=[MigrationStatus.COMPLETED, MigrationStatus.ROLLED_BACK]
    )
    if user_ids is not None:
        rows = rows.filter(user_id__in=user_ids)
    last_user_id = 0
    while True:
        users = list(
            rows.filter(user_id__gt=last_user_id)
            .order_by("user_id")
            .values_list("user_id", flat=True)
            .distinct()[:500]
        )
        if not users:
            break
        last_user_id = users[-1]
        chunk = rollback_order(rows.filter(user_id__in=users)).values_list("pk", flat=True)
        for pk in chunk:
            outcome = _rollback_one(pk, run=run, authority=authority, reason=reason)
            report.add(outcome)
            if on_user:
                on_user(outcome)
    return report


def _rollback_report(sources: list[str], run: MigrationRun) -> Report:
    zero = str(Decimal("0.00"))
    report = Report(mode="rollback", sources=sources, run_id=run.pk)
    report.extra.update(spent_before_rollback=zero, taken_from_account=zero, shortfall=zero)
    return report


def _check_authority(authority: RollbackAuthority) -> None:
    if not isinstance(authority, RollbackAuthority):
        raise TypeError("A rollback needs a RollbackAuthority (see migrations_app.services).")


class _SpentMeanwhile(Exception):
    """The account moved between reading the migration's lot and reversing it: undo this
    user's rollback (its transaction) and report it refused, to be run again."""


def _rollback_one(
    pk: int, *, run, authority: RollbackAuthority, reason=ROLLBACK_REASON
) -> UserOutcome:
    try:
        return _rollback_one_in_transaction(pk, run=run, authority=authority, reason=reason)
    except _SpentMeanwhile as moved:
        user_id, source = moved.args
        return UserOutcome(
            user_id,
            source,
            Outcome.REFUSED,
            error="the account changed while it was rolled back; nothing was changed, roll back "
            "again",
        )


def _rollback_one_in_transaction(
    pk: int, *, run, authority: RollbackAuthority, reason=ROLLBACK_REASON
) -> UserOutcome:
    actor, force = authority.actor, authority.force
    with unit_of_work():
        row = UserMigration.objects.select_for_update().get(pk=pk)
        if row.status == MigrationStatus.ROLLED_BACK:
            return UserOutcome(row.user_id, row.source, Outcome.SKIPPED, note="already rolled back")
        if row.status != MigrationStatus.COMPLETED:
            return UserOutcome(
                row.user_id, row.source, Outcome.SKIPPED, note=f"not migrated ({row.status})"
            )
        key = migration_key(source=row.source, user_id=row.user_id, generation=row.generation)
        entry = CreditTransaction.objects.filter(idempotency_key=key).first()
        figures = _Figures()
        if entry is not None:
            try:
                figures = _reverse(entry, key=key, actor=actor, reason=reason, force=force)
            except InsufficientCredits as refused:
                # Only active holds can refuse this: they reserve credits of the migration's lot.
                return UserOutcome(
                    row.user_id,
                    row.source,
                    Outcome.REFUSED,
                    error=(
                        f"active holds reserve {refused.details.get('held', '?')} of the "
                        f"{refused.details.get('balance', '?')} credits; releasing them, or "
                        "forcing the rollback (which reverses what is available and records "
                        "the shortfall), lets it through"
                    ),
                )
            if figures.moved:
                raise _SpentMeanwhile(row.user_id, row.source)
        source = get_source(row.source)
        source.restore_legacy(row.user_id, row.rollback_data)
        if "profile" in row.rollback_data:
            previous = row.rollback_data["profile"]
            # None: the migration made the profile, so it goes back to a new profile's values.
            profile_restore(
                user_id=row.user_id,
                values=previous or {},
                reset=PROFILE_FIELDS if previous is None else (),
            )
        now = timezone.now()
        row.status = MigrationStatus.ROLLED_BACK
        row.generation += 1
        row.rollback_data = {
            **row.rollback_data,
            "rollback": {
                "reversed": str(figures.reversed),
                "spent_before_rollback": str(figures.spent),
                "taken_from_account": str(figures.taken_from_account),
                "shortfall": str(figures.shortfall),
                "forced": force,
                "actor_id": getattr(actor, "pk", None),
                "at": now.isoformat(),
            },
        }
        row.run = run
        row.save(update_fields=["status", "generation", "rollback_data", "run", "updated_at"])
        profiles_mark_unmigrated(user_ids=[row.user_id])
        _count_progress(run, [row])
    return UserOutcome(
        row.user_id,
        row.source,
        Outcome.ROLLED_BACK,
        credits=-figures.reversed,
        note=figures.note(),
        rollback={
            "spent_before_rollback": figures.spent,
            "taken_from_account": figures.taken_from_account,
            "shortfall": figures.shortfall,
        },
    )


@dataclass
class _Figures:
    """What rolling back one migration entry did. `spent` is what the user had spent of its
    lot; `taken_from_account` what force took from their other credits in its place;
    `shortfall` what stays unreversed on the ledger (what `--verify` expects there)."""

    reversed: Decimal = Decimal("0.00")
    spent: Decimal = Decimal("0.00")
    taken_from_account: Decimal = Decimal("0.00")
    shortfall: Decimal = Decimal("0.00")
    moved: bool = False

    def note(self) -> str:
        parts = []
        if self.spent:
            parts.append(f"{self.spent} spent before the rollback")
        if self.taken_from_account:
            parts.append(f"{self.taken_from_account} taken from the account's other credits")
        if self.shortfall:
            parts.append(f"shortfall {self.shortfall}")
        return "; ".join(parts)


def _reverse(entry, *, key: str, actor, reason: str, force: bool) -> _Figures:
    """Reverse what is left of the migration entry's own lot; with `force` also the part
    spent, from the account's other credits, as far as they go.

    What is left is read before the reversal, which then takes the account's lock: the
    reversal's allocations, read under that lock, must show exactly that much taken from the
    lot (and, forced, the expected rest from other lots), or the account moved in between and
    the caller undoes it all (`moved`)."""
    granted = entry.amount
    left = lots_left(entry_ids=[entry.pk]).get(entry.pk, granted)
    balance, held = CreditAccount.objects.values_list("balance", "held").get(pk=entry.account_id)
    available = max(balance - held, Decimal("0.00"))
    spent = granted - left
    own = min(left, available) if force else left
    taken = min(spent, available - own) if force else Decimal("0.00")
    if own + taken == 0:
        return _Figures(spent=spent, shortfall=granted)
    reversal = credit_reverse(
        entry=entry,
        idempotency_key=rollback_key(entry_key=key),
        actor=actor,
        reason=reason,
        # Forced: all of it, what is available when less (the shortfall in the metadata).
        amount=granted if force else left,
        allow_partial=force,
        metadata={
            "lot_left": str(left),
            "spent_before_rollback": str(spent),
            "taken_from_account": str(taken),
            "forced": force,
        },
    )
    reversed_amount = -reversal.amount
    lot = CreditLot.objects.filter(entry=entry).values_list("pk", flat=True).first()
    from_lot = allocations_of(entry=reversal).get(lot, Decimal("0.00"))
    return _Figures(
        reversed=reversed_amount,
        spent=spent,
        taken_from_account=reversed_amount - from_lot,
        shortfall=granted - reversed_amount,
        moved=(from_lot, reversed_amount - from_lot) != (own, taken),
    )


def rollback_rows(
    pks: list[int],
    *,
    authority: RollbackAuthority,
    reason: str = ROLLBACK_REASON,
    on_user: OnUser | None = None,
) -> Report:
    """Roll back these UserMigration rows (a staff member's selection) as one rollback run."""
    _check_authority(authority)
    actor, force = authority.actor, authority.force
    rows = rollback_order(UserMigration.objects.filter(pk__in=pks))
    sources = sorted(set(rows.values_list("source", flat=True)))
    run = run_start(
        sources=sources,
        mode=RunMode.ROLLBACK,
        parameters={
            "users": sorted(set(rows.values_list("user_id", flat=True))),
            "force": force,
            "reason": reason,
        },
        actor=actor,
    )
    report = _rollback_report(sources, run)
    for pk in rows.values_list("pk", flat=True):
        outcome = _rollback_one(pk, run=run, authority=authority, reason=reason)
        report.add(outcome)
        if on_user:
            on_user(outcome)
    run_finish(run, report)
    return report
