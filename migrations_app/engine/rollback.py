"""Rollback: undo a user's migration from a source without deleting anything.

The migration entry gets a `reversal` entry, the legacy values come back from rollback_data,
the profile fields the source synced come back too, and the UserMigration becomes ROLLED_BACK
with its generation bumped (so migrating again writes a new entry under a new key). A user who
has since spent migrated credits is refused unless `force`, which reverses what is left and
records the shortfall. Each user and source is its own transaction; rolling back twice changes
nothing the second time.

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

from django.db.models import F
from django.utils import timezone

from billing.services import profile_restore, profiles_mark_unmigrated
from core.keys import migration_key, rollback_key
from credits.exceptions import InsufficientCredits
from credits.models import CreditAccount, CreditTransaction
from credits.services import credit_reverse
from migrations_app.authorization import RollbackAuthority
from migrations_app.engine.databases import unit_of_work
from migrations_app.engine.execute import OnUser, _count_progress
from migrations_app.engine.report import Outcome, Report, UserOutcome
from migrations_app.engine.runs import run_finish, run_start
from migrations_app.models import MigrationRun, MigrationStatus, RunMode, UserMigration
from migrations_app.sources import get_source
from migrations_app.sources.user_fields import PROFILE_FIELDS

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
    report = Report(mode="rollback", sources=sources, run_id=run.pk)
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
        chunk = _rollback_order(rows.filter(user_id__in=users)).values_list("pk", flat=True)
        for pk in chunk:
            outcome = _rollback_one(pk, run=run, authority=authority, reason=reason)
            report.add(outcome)
            if on_user:
                on_user(outcome)
    return report


def _check_authority(authority: RollbackAuthority) -> None:
    if not isinstance(authority, RollbackAuthority):
        raise TypeError("A rollback needs a RollbackAuthority (see migrations_app.services).")


def _rollback_one(
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
        reversed_amount, shortfall = Decimal("0.00"), Decimal("0.00")
        if entry is not None:
            try:
                reversal = credit_reverse(
                    entry=entry,
                    idempotency_key=rollback_key(entry_key=key),
                    actor=actor,
                    reason=reason,
                    allow_partial=force,
                )
                reversed_amount = -reversal.amount
                shortfall = Decimal(reversal.metadata.get("shortfall", "0.00"))
            except InsufficientCredits as refused:
                if not force:
                    held = refused.details.get("balance", "?")
                    return UserOutcome(
                        row.user_id,
                        row.source,
                        Outcome.REFUSED,
                        error=(
                            f"has spent migrated credits ({entry.amount} granted, {held} left);"
                            " forcing the rollback reverses what is left and records the shortfall"
                        ),
                    )
                shortfall = entry.amount
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
                "reversed": str(reversed_amount),
                "shortfall": str(shortfall),
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
        credits=-reversed_amount,
        note=f"shortfall {shortfall}" if shortfall else "",
    )


@dataclass
class RollbackLine:
    """What rolling back one UserMigration row would do, for a confirmation page.

    `credits` is what the migration granted, `balance` the account's balance when this row's
    turn comes (a user's earlier rows already undone), `reversible` what rolling back takes
    (all of it, or with force what is left), `shortfall` what force would leave unreversed."""

    row: UserMigration
    credits: Decimal
    balance: Decimal
    is_possible: bool
    needs_force: bool
    note: str = ""
    reversible: Decimal = Decimal("0.00")
    shortfall: Decimal = Decimal("0.00")


def _rollback_order(rows):
    return rows.order_by("user_id", F("migration_date").desc(nulls_last=True), "-pk")


def rollback_preview(pks: list[int]) -> list[RollbackLine]:
    """Say, row by row in the order `rollback` takes them, which credits would be reversed and
    which rows need `force` because the user has spent migrated credits. Reads only."""
    rows = list(_rollback_order(UserMigration.objects.filter(pk__in=pks).select_related("user")))
    balances = dict(
        CreditAccount.objects.filter(user_id__any_of={row.user_id for row in rows}).values_list(
            "user_id", "balance"
        )
    )
    amounts = dict(
        CreditTransaction.objects.filter(
            idempotency_key__any_of=[
                migration_key(source=row.source, user_id=row.user_id, generation=row.generation)
                for row in rows
            ]
        ).values_list("idempotency_key", "amount")
    )
    lines = []
    for row in rows:
        held = balances.get(row.user_id, Decimal("0.00"))
        if row.status != MigrationStatus.COMPLETED:
            note = (
                "already rolled back"
                if row.status == MigrationStatus.ROLLED_BACK
                else f"not migrated ({row.get_status_display().lower()})"
            )
            lines.append(RollbackLine(row, Decimal("0.00"), held, False, False, note))
            continue
        credits = amounts.get(
            migration_key(source=row.source, user_id=row.user_id, generation=row.generation),
            Decimal(0),
        )
        needs_force = credits > held
        reversible = min(credits, held)
        # The user's rows are undone one after the other: later ones see what is left.
        balances[row.user_id] = held - reversible
        note = (
            f"the user has spent migrated credits: {held} of the {credits} granted are left"
            if needs_force
            else ""
        )
        lines.append(
            RollbackLine(
                row,
                credits,
                held,
                True,
                needs_force,
                note,
                reversible=reversible,
                shortfall=credits - reversible,
            )
        )
    return lines


@dataclass(frozen=True)
class RollbackTotals:
    """The confirmation page's counts, from the same lines the table shows."""

    ready: int  # rolled back as they are
    ready_credits: Decimal
    forced: int  # only with force: their users spent migrated credits
    forced_credits: Decimal  # what force would reverse (what is left)
    shortfall: Decimal  # what force would leave unreversed
    skipped: int  # not completed migrations: left alone


def rollback_totals(lines: list[RollbackLine]) -> RollbackTotals:
    """Add up a preview: how many rows roll back as they are, how many need force, how many
    are left alone, and the credits of each."""
    ready = [line for line in lines if line.is_possible and not line.needs_force]
    forced = [line for line in lines if line.needs_force]
    return RollbackTotals(
        ready=len(ready),
        ready_credits=sum((line.credits for line in ready), Decimal("0.00")),
        forced=len(forced),
        forced_credits=sum((line.reversible for line in forced), Decimal("0.00")),
        shortfall=sum((line.shortfall for line in forced), Decimal("0.00")),
        skipped=sum(1 for line in lines if not line.is_possible),
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
    rows = _rollback_order(UserMigration.objects.filter(pk__in=pks))
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
    report = Report(mode="rollback", sources=sources, run_id=run.pk)
    for pk in rows.values_list("pk", flat=True):
        outcome = _rollback_one(pk, run=run, authority=authority, reason=reason)
        report.add(outcome)
        if on_user:
            on_user(outcome)
    run_finish(run, report)
    return report
