"""Dry run and execute: plan every user of a source, and migrate them a batch at a time.

A batch is one transaction (durable: it is never nested in another). Inside it the batch's
UserMigration rows are claimed and locked first, so a batch processed twice, or by two workers
at once, migrates nobody twice: the second sees COMPLETED and moves on. Then the legacy rows are
loaded (locked when the source changes them), each user planned, and everything written set-based:
one bulk insert of ledger entries, one UPDATE of the accounts, one of the profiles, one of the
legacy table, one of the UserMigration rows.

A user whose data breaks a rule is recorded FAILED with the reason inside the same batch. If
the batch's writes fail (say, two users share a Stripe customer id), the batch is retried user
by user, each in its own transaction, and only the users that fail again are recorded FAILED;
the others commit. A run killed mid-way leaves committed batches COMPLETED and the rest
untouched, so running it again finishes the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import F
from django.utils import timezone

from billing.services import profiles_mark_migrated, profiles_open, profiles_sync
from core.bulk import insert_for_users, update_columns
from core.keys import history_key, migration_key
from credits.models import EntryKind
from credits.services import (
    BatchEntry,
    credit_accounts_open,
    credit_post_batch,
    lot_category_for,
)
from migrations_app.engine.databases import unit_of_work
from migrations_app.engine.parallel import run_in_order
from migrations_app.engine.report import Outcome, Report, UserOutcome
from migrations_app.engine.selection import candidate_batches
from migrations_app.models import MigrationRun, MigrationStatus, UserMigration
from migrations_app.sources import SOURCES, Context, Source, UserPlan, get_source
from migrations_app.sources.base import credits_problem

OnUser = Callable[[UserOutcome], None]
RETRYABLE = (MigrationStatus.PENDING, MigrationStatus.IN_PROGRESS, MigrationStatus.FAILED)


@dataclass
class Selection:
    """Which users of each source a run considers."""

    user_ids: list[int] | None = None
    percent: Decimal = Decimal(100)
    batch_size: int = field(default_factory=lambda: settings.CREDITS_MIGRATION_BATCH_SIZE)
    # Batches in flight at once on PostgreSQL (see engine/parallel.py); 1 runs them in turn.
    workers: int = field(default_factory=lambda: settings.CREDITS_MIGRATION_WORKERS)
    # Users named with --user are migrated again after a rollback; a run over everyone leaves
    # users that staff rolled back alone.
    include_rolled_back: bool = False

    def batches(self, source: Source) -> Iterable[list[int]]:
        return candidate_batches(
            source, batch_size=self.batch_size, user_ids=self.user_ids, percent=self.percent
        )


@dataclass
class Batch:
    """The outcome of one batch: per-user outcomes, in user order."""

    outcomes: list[UserOutcome] = field(default_factory=list)


# --- dry run ------------------------------------------------------------------------------


def plan_users(
    sources: list[str], context: Context, selection: Selection, on_user: OnUser | None = None
) -> Report:
    """Say what execute would do, user by user; read only, nothing is written anywhere."""
    report = Report(mode="dry_run", sources=sources)
    for name in sources:
        source = get_source(name)
        for user_ids in selection.batches(source):
            for outcome in _plan_batch(source, user_ids, context, selection):
                report.add(outcome)
                if on_user:
                    on_user(outcome)
    return report


def _plan_batch(source, user_ids, context, selection) -> list[UserOutcome]:
    existing = _existing_users(user_ids)
    statuses = dict(
        UserMigration.objects.filter(source=source.name, user_id__any_of=user_ids).values_list(
            "user_id", "status"
        )
    )
    data = source.load([u for u in user_ids if u in existing], lock=False, context=context)
    outcomes = []
    for user_id in user_ids:
        skip = _skip_reason(user_id, existing, statuses.get(user_id), data, selection)
        if skip:
            outcomes.append(UserOutcome(user_id, source.name, Outcome.SKIPPED, note=skip))
            continue
        plan = plan_user(source, user_id, data[user_id], context)
        outcomes.append(_outcome(plan, Outcome.MIGRATE))
    return outcomes


def plan_user(source: Source, user_id: int, data: Any, context: Context) -> UserPlan:
    """The one planner: what a user gets, or the reason they fail, for the dry run, --analyze
    and execute alike. Every rule that fails a user in execute is applied here (the source's
    own, then the ledger's bounds), so the preview names the same failures."""
    try:
        plan = source.plan(user_id, data, context)
    except (ArithmeticError, TypeError, ValueError) as error:
        # Data no rule foresaw (a value no arithmetic can take): fail the user, in words.
        return UserPlan(
            user_id=user_id, source=source.name, error=f"legacy data cannot be computed ({error})"
        )
    if not plan.is_failed:
        problem = credits_problem(plan.credits)
        if problem:
            plan.error = problem
    return plan


def _skip_reason(user_id, existing, status, data, selection) -> str:
    if user_id not in existing:
        return "no such user"
    if status == MigrationStatus.COMPLETED:
        return "already migrated"
    if status == MigrationStatus.ROLLED_BACK and not selection.include_rolled_back:
        return "rolled back (name the user with --user to migrate again)"
    if user_id not in data:
        return "no legacy data"
    return ""


def _outcome(plan: UserPlan, outcome: str) -> UserOutcome:
    if plan.is_failed:
        return UserOutcome(
            plan.user_id, plan.source, Outcome.FAILED, error=plan.error, note=plan.note
        )
    return UserOutcome(
        plan.user_id,
        plan.source,
        outcome,
        credits=plan.credits,
        legacy_amounts=dict(plan.legacy_amounts),
        remainder=plan.remainder,
        history=len(plan.history),
        note=plan.note,
        data_mismatch=plan.mismatch_detail,
    )


# --- execute ------------------------------------------------------------------------------


class BatchHooks:
    """What a caller adds to each batch's transaction. `begin` runs first, once the transaction
    is open, and says which of the users are still to do (none when the work is already done,
    so nothing is migrated or counted twice); `record` runs last, with the outcomes, before the
    commit. The Celery fan-out records each batch's result there and notifications are queued
    there, so both commit or roll back with the users they are about."""

    def begin(self, user_ids: list[int]) -> list[int]:
        """The users of `user_ids` still to do (empty: nothing to do)."""
        return user_ids

    def record(self, outcomes: list[UserOutcome]) -> None:
        pass


NO_HOOKS = BatchHooks()


def execute(
    sources: list[str],
    context: Context,
    selection: Selection,
    run: MigrationRun,
    on_user: OnUser | None = None,
    hooks: BatchHooks = NO_HOOKS,
) -> Report:
    """Migrate every selected user of each source, a batch per transaction, `selection.workers`
    batches at a time."""
    report = Report(mode="execute", sources=sources, run_id=run.pk)
    for name in sources:
        source = get_source(name)
        batches = run_in_order(
            lambda user_ids, source=source: migrate_batch(
                source, user_ids, context, selection, run, hooks
            ),
            selection.batches(source),
            workers=selection.workers,
        )
        for batch in batches:
            for outcome in batch.outcomes:
                report.add(outcome)
                if on_user:
                    on_user(outcome)
    return report


def migrate_batch(
    source: Source,
    user_ids: list[int],
    context: Context,
    selection: Selection,
    run: MigrationRun,
    hooks: BatchHooks = NO_HOOKS,
) -> Batch:
    """Migrate one batch in one transaction; on a write error, retry it user by user."""
    try:
        with unit_of_work():
            todo = hooks.begin(user_ids)
            if not todo:
                return Batch([])
            outcomes = _migrate_users(source, todo, context, selection, run)
            hooks.record(outcomes)
            # Last before the commit: every batch updates this one run row, and holds its lock
            # from here to the commit.
            _count_progress(run, outcomes)
            return Batch(outcomes)
    except Exception as error:
        if len(user_ids) == 1:
            outcome = _record_failure(source, user_ids[0], error, run, selection, hooks)
            return Batch([outcome] if outcome else [])
    outcomes = []
    for user_id in user_ids:
        outcomes += migrate_batch(source, [user_id], context, selection, run, hooks).outcomes
    return Batch(outcomes)


@dataclass
class _Claim:
    """A user's UserMigration row as the batch found it, claimed and locked."""

    pk: int
    status: str
    attempts: int
    generation: int
    rollback_data: dict


def _migrate_users(source, user_ids, context, selection, run) -> list[UserOutcome]:
    existing = _existing_users(user_ids)
    claimed = [u for u in user_ids if u in existing]
    insert_for_users(UserMigration, claimed, source=source.name, run=run)
    # Plain values, not model instances: at hundreds of users a batch, building models is a
    # good part of the cost.
    claims = {
        user_id: _Claim(pk, status, attempts, generation, rollback_data)
        for pk, user_id, status, attempts, generation, rollback_data in (
            UserMigration.objects.select_for_update()
            .filter(source=source.name, user_id__any_of=claimed)
            .order_by("pk")
            .values_list("pk", "user_id", "status", "attempts", "generation", "rollback_data")
        )
    }
    statuses = {user_id: claim.status for user_id, claim in claims.items()}
    todo = [u for u in claimed if _is_to_migrate(statuses[u], selection)]
    data = source.load(todo, lock=source.changes_legacy, context=context)
    outcomes, plans = {}, []
    for user_id in user_ids:
        skip = _skip_reason(user_id, existing, statuses.get(user_id), data, selection)
        if skip:
            outcomes[user_id] = UserOutcome(user_id, source.name, Outcome.SKIPPED, note=skip)
        else:
            plans.append(plan_user(source, user_id, data[user_id], context))
    good = [plan for plan in plans if not plan.is_failed]
    accounts = _onboard([plan.user_id for plan in good])
    _write_ledger(source, good, claims, accounts, context)
    profiles_sync(updates={plan.user_id: plan.profile_updates for plan in good})
    source.apply_legacy(good, context)
    now = timezone.now()
    _record_completed(good, claims, run, now)
    _record_failed([plan for plan in plans if plan.is_failed], claims, run)
    for plan in plans:
        outcomes[plan.user_id] = _outcome(plan, Outcome.MIGRATED)
    profiles_mark_migrated(
        user_ids=fully_migrated([plan.user_id for plan in good], just_completed=source.name),
        now=now,
    )
    return [outcomes[user_id] for user_id in user_ids]


def _record_completed(plans: list[UserPlan], claims: dict[int, _Claim], run, now) -> None:
    rows = [_completed_values(plan, claims[plan.user_id], run, now) for plan in plans]
    update_columns(
        UserMigration,
        [claims[plan.user_id].pk for plan in plans],
        {name: [row[name] for row in rows] for name in rows[0]} if rows else {},
    )


def _completed_values(plan: UserPlan, claim: _Claim, run: MigrationRun, now) -> dict:
    """The UserMigration columns a completed migration writes."""
    if len(plan.legacy_amounts) == 1:
        ((currency, amount),) = plan.legacy_amounts.items()
        rate = plan.rates.get(currency)
    else:
        currency = "MIXED" if plan.legacy_amounts else ""
        amount = rate = None
    return {
        "status": MigrationStatus.COMPLETED.value,
        "legacy_amount": amount,
        "legacy_currency": currency,
        "rate": rate,
        "legacy_amounts": {key: str(value) for key, value in plan.legacy_amounts.items()},
        "rates": {key: str(value) for key, value in plan.rates.items()},
        "initial_credits_granted": plan.credits,
        "rounding_remainder": plan.remainder,
        "historical_operations": len(plan.history),
        "data_mismatch": plan.data_mismatch,
        "mismatch_detail": plan.mismatch_detail[:255],
        "rollback_data": _carry_shortfall(claim.rollback_data, plan.rollback_data),
        "error_message": "",
        "attempts": claim.attempts + 1,
        "run_id": run.pk,
        "migration_date": now,
    }


def _record_failed(plans: list[UserPlan], claims: dict[int, _Claim], run: MigrationRun) -> None:
    """FAILED with the reason; what an earlier migration recorded stays as it was."""
    update_columns(
        UserMigration,
        [claims[plan.user_id].pk for plan in plans],
        {
            "status": [MigrationStatus.FAILED.value] * len(plans),
            "error_message": [plan.error for plan in plans],
            "attempts": [claims[plan.user_id].attempts + 1 for plan in plans],
            "run_id": [run.pk] * len(plans),
        },
    )


def _carry_shortfall(previous: dict, new: dict) -> dict:
    """Keep what earlier forced rollbacks could not take back: those credits stay on the ledger
    under this source, so verify counts them beside the credits of the new migration."""
    earlier = Decimal(previous.get("earlier_shortfall", "0")) + Decimal(
        previous.get("rollback", {}).get("shortfall", "0")
    )
    return {**new, "earlier_shortfall": str(earlier)} if earlier else new


def _existing_users(user_ids) -> set[int]:
    user_model = get_user_model()
    return set(user_model.objects.filter(pk__any_of=user_ids).values_list("pk", flat=True))


def _onboard(user_ids: list[int]) -> dict[int, int]:
    """Give migrated users a profile and an empty account (no signup grant: they arrive by
    migration), for the whole batch at once, through their owners' services; return the
    account ids by user id."""
    profiles_open(user_ids=user_ids)
    return credit_accounts_open(user_ids=user_ids)


def _write_ledger(
    source: Source,
    plans: list[UserPlan],
    claims: dict[int, _Claim],
    accounts: dict[int, int],
    context: Context,
) -> None:
    # Each source's credits are a lot of the category mapped to "migration:<source>" (the
    # entries' own source is "migration" for every one), expiring as the source says.
    category = lot_category_for(EntryKind.MIGRATION, source.name)
    expires_at = source.credits_expire_at(context)
    entries = []
    for plan in plans:
        account_id = accounts[plan.user_id]
        if plan.credits > 0:
            entries.append(
                BatchEntry(
                    account_id=account_id,
                    kind=EntryKind.MIGRATION,
                    amount=plan.credits,
                    idempotency_key=migration_key(
                        source=source.name,
                        user_id=plan.user_id,
                        generation=claims[plan.user_id].generation,
                    ),
                    source="migration",
                    description=f"Migrated from {source.description}"[:255],
                    migrated_from=source.name,
                    metadata={
                        "legacy_amounts": {k: str(v) for k, v in plan.legacy_amounts.items()},
                        "rates": {k: str(v) for k, v in plan.rates.items()},
                        "rounding_remainder": str(plan.remainder),
                    },
                    category=category,
                    expires_at=expires_at,
                )
            )
        entries.extend(
            BatchEntry(
                account_id=account_id,
                kind=EntryKind.HISTORY,
                amount=Decimal("0"),
                idempotency_key=history_key(legacy_id=item.legacy_id),
                source="migration",
                description=item.description,
                migrated_from=source.name,
                legacy_transaction_id=item.legacy_id,
                metadata=item.metadata,
            )
            for item in plan.history
        )
    credit_post_batch(entries=entries)


def fully_migrated(user_ids: list[int], *, just_completed: str = "") -> list[int]:
    """The users of `user_ids` whose every configured source with data for them is COMPLETED
    (their profile is then marked migrated, and monthly grants reach them).

    `just_completed` names a source these users were all just migrated from (a batch's), so
    it need not be looked up again.
    """
    if not user_ids:
        return []
    pending: set[int] = set()
    for name in settings.CREDITS_MIGRATION_SOURCES:
        if name not in SOURCES or name == just_completed:
            continue
        with_data = set(get_source(name).candidate_ids().filter(user_id__any_of=user_ids))
        if with_data:
            done = UserMigration.objects.filter(
                source=name, status=MigrationStatus.COMPLETED, user_id__any_of=with_data
            ).values_list("user_id", flat=True)
            pending |= with_data - set(done)
    return sorted(set(user_ids) - pending)


def _is_to_migrate(status: str, selection: Selection) -> bool:
    return status in RETRYABLE or (
        status == MigrationStatus.ROLLED_BACK and selection.include_rolled_back
    )


def _record_failure(
    source: Source, user_id: int, error: Exception, run, selection: Selection, hooks: BatchHooks
) -> UserOutcome | None:
    """Record a user FAILED with the error that stopped their migration, in its own commit
    (None when the hooks say this user is already recorded)."""
    message = write_failure_message(error)
    with unit_of_work():
        if not hooks.begin([user_id]):
            return None  # recorded already, by another delivery of this batch
        if user_id not in _existing_users([user_id]):
            outcome = UserOutcome(user_id, source.name, Outcome.SKIPPED, note="no such user")
            hooks.record([outcome])
            return outcome
        row, _ = UserMigration.objects.select_for_update().get_or_create(
            user_id=user_id, source=source.name
        )
        # A rolled-back user named with --user was being migrated again: that failed too.
        if not _is_to_migrate(row.status, selection):
            outcome = UserOutcome(user_id, source.name, Outcome.SKIPPED, note="already migrated")
            hooks.record([outcome])
            return outcome
        row.status = MigrationStatus.FAILED
        row.error_message = message
        row.attempts += 1
        row.run = run
        row.save(update_fields=["status", "error_message", "attempts", "run", "updated_at"])
        outcome = UserOutcome(user_id, source.name, Outcome.FAILED, error=message)
        hooks.record([outcome])
        _count_progress(run, [None])
    return outcome


def write_failure_message(error: Exception) -> str:
    """An operator's sentence for a user whose writes the database refused."""
    detail = " ".join(str(error).split()) or type(error).__name__
    return f"the database refused this user's migration: {detail}"[:2000]


def _count_progress(run: MigrationRun, outcomes: list[Any]) -> None:
    MigrationRun.objects.filter(pk=run.pk).update(
        processed=F("processed") + len(outcomes), heartbeat_at=timezone.now()
    )
