"""Which users a run takes: --percent (stable staged rollout) and --batch-size (no effect on
the result), --user."""

from decimal import Decimal

import pytest

from billing.models import LegacyBilling, UserProfile
from credits.models import CreditAccount, CreditTransaction, EntryKind
from migrations_app.engine.selection import bucket
from migrations_app.models import MigrationStatus, UserMigration
from tests.factories import (
    LegacyAccountFactory,
    LegacyBillingFactory,
    LegacyCreditTransactionFactory,
    LegacyUsageFactory,
    UserFactory,
    operations,
)
from tests.helpers import sources_args

pytestmark = pytest.mark.django_db

SOURCE = sources_args("usd_balance")


def users_in_stages() -> list[int]:
    """Users with a balance until each stage (below 5%, 5-25%, 25% and above) holds two."""
    user_ids: list[int] = []

    def stage_sizes():
        buckets = [bucket(user_id) for user_id in user_ids]
        return (
            sum(b < 500 for b in buckets),
            sum(500 <= b < 2500 for b in buckets),
            sum(b >= 2500 for b in buckets),
        )

    while min(stage_sizes()) < 2:
        assert len(user_ids) < 1000, "the buckets are not spread"
        user_ids.append(LegacyBillingFactory(balance_usd=Decimal("1.00")).user_id)
    return user_ids


def completed() -> set[int]:
    return set(
        UserMigration.objects.filter(status=MigrationStatus.COMPLETED).values_list(
            "user_id", flat=True
        )
    )


def test_percent_stages_grow_and_migrate_every_user_exactly_once(migrate):
    # given
    user_ids = users_in_stages()
    # when
    _, planned_5 = migrate("--percent", "5", "--format", "json", *SOURCE)
    migrate("--execute", "--yes", "--percent", "5", *SOURCE)
    at_5 = completed()
    _, planned_25 = migrate("--percent", "25", "--format", "json", *SOURCE)
    migrate("--execute", "--yes", "--percent", "25", *SOURCE)
    at_25 = completed()
    migrate("--execute", "--yes", "--percent", "100", *SOURCE)
    at_100 = completed()
    # then
    assert at_5 == {user_id for user_id in user_ids if bucket(user_id) < 500}
    assert at_25 == {user_id for user_id in user_ids if bucket(user_id) < 2500}
    assert at_5 < at_25 < at_100 == set(user_ids)
    assert planned_5["users"]["migrate"] == len(at_5)
    # the second stage's plan skips the first stage's users as already migrated
    assert planned_25["users"] == {"migrate": len(at_25 - at_5), "skipped": len(at_5)}
    assert planned_25["skipped"] == {"already migrated": len(at_5)}
    for row in UserMigration.objects.all():
        assert row.attempts == 1
        assert row.initial_credits_granted == Decimal("1.00")
    migration_entries = CreditTransaction.objects.filter(kind=EntryKind.MIGRATION)
    assert migration_entries.count() == len(user_ids)
    assert set(CreditAccount.objects.values_list("balance", flat=True)) == {Decimal("1.00")}


def test_percent_buckets_do_not_depend_on_the_run(migrate):
    # given
    users_in_stages()
    # when
    _, first = migrate("--percent", "25", "--format", "json", *SOURCE)
    _, second = migrate("--percent", "25", "--format", "json", *SOURCE)
    _, wider = migrate("--percent", "50", "--format", "json", *SOURCE)
    # then
    assert first == second
    assert first["users"]["migrate"] < wider["users"]["migrate"]


# usd, uah, plan, credits_balance, Stripe customer, used this period, operations in 30 days
GROUP = [
    ("1.00", "0", "free", "0.50", "a", "1.25", 2),
    ("3.33", "12.34", "pro", "260.00", "shared", "60.00", 3),
    # fails in usd_balance (negative) and, at the database, in user_fields (Stripe customer)
    ("-1.00", "0", "free", "5.55", "shared", "0", 301),
    ("0", "0.13", "gold", "7.77", "", "3.00", 1),  # fails in usage_tiers and user_fields (plan)
    ("0.25", "100.00", "business", "-2.00", "b", "999.99", 4),  # fails in user_fields
]


def group(prefix: str) -> list[int]:
    """The same legacy data for all four sources, under users named after the group."""
    ids = []
    for n, (usd, uah, plan, credits, customer, used, recent) in enumerate(GROUP):
        user = UserFactory(username=f"{prefix}{n}")
        LegacyBillingFactory(user=user, balance_usd=Decimal(usd), balance_uah=Decimal(uah))
        LegacyAccountFactory(
            user=user,
            plan=plan,
            credits_balance=Decimal(credits),
            stripe_customer_id=f"cus_{prefix}{customer}" if customer else "",
        )
        LegacyCreditTransactionFactory(user=user, delta=Decimal("1.00"))
        LegacyUsageFactory(user=user, amount_used=Decimal(used))
        operations(user, recent, days_ago=2)
        ids.append(user.pk)
    return ids


def outcome_of(user_ids: list[int]) -> list:
    """What the migration left for these users, without ids, keys or times."""
    result = []
    for user_id in user_ids:
        rows = UserMigration.objects.filter(user_id=user_id).order_by("source")
        account = CreditAccount.objects.filter(user_id=user_id).first()
        profile = UserProfile.objects.filter(user_id=user_id).first()
        billing = LegacyBilling.objects.get(user_id=user_id)
        result.append(
            {
                "migrations": [
                    (
                        row.source,
                        row.status,
                        row.initial_credits_granted,
                        row.rounding_remainder,
                        row.historical_operations,
                        row.data_mismatch,
                        row.attempts,
                        row.error_message.split(":")[0],
                    )
                    for row in rows
                ],
                "balance": account and account.balance,
                "entries": [
                    (entry.kind, entry.amount, entry.migrated_from)
                    for entry in CreditTransaction.objects.filter(
                        account__user_id=user_id
                    ).order_by("pk")
                ],
                "plan": profile and profile.plan,
                "billing": (billing.balance_usd, billing.balance_uah),
            }
        )
    return result


def test_batch_size_does_not_change_the_result(migrate):
    # given: three copies of the same data
    groups = {size: group(f"b{size}_") for size in (1, 2, 500)}
    # when
    for size, user_ids in groups.items():
        users = [arg for user_id in user_ids for arg in ("--user", str(user_id))]
        migrate("--execute", "--yes", "--batch-size", str(size), *users, *sources_args(), expect=1)
    # then
    assert outcome_of(groups[1]) == outcome_of(groups[2]) == outcome_of(groups[500])
    # by source: rate_limit, usage_tiers, usd_balance, user_fields
    statuses = [[status for _, status, *_ in user["migrations"]] for user in outcome_of(groups[2])]
    assert statuses == [
        ["COMPLETED"] * 4,
        ["COMPLETED"] * 4,
        ["COMPLETED", "COMPLETED", "FAILED", "FAILED"],
        ["COMPLETED", "FAILED", "COMPLETED", "FAILED"],
        ["COMPLETED", "COMPLETED", "COMPLETED", "FAILED"],
    ]


def test_batch_size_does_not_change_the_plan(migrate, legacy_world):
    # given: the realistic legacy data of all four sources (legacy_world)
    # when
    reports = [
        migrate("--batch-size", str(size), "--format", "json", *sources_args(), expect=1)[1]
        for size in (1, 2, 500)
    ]
    # then
    for report in reports:
        report["parameters"].pop("batch_size")
    assert reports[0] == reports[1] == reports[2]


def test_user_narrows_the_run_to_the_named_users(migrate):
    # given
    named = LegacyBillingFactory(balance_usd=Decimal("2.00"))
    by_email = LegacyBillingFactory(balance_usd=Decimal("3.00"))
    other = LegacyBillingFactory(balance_usd=Decimal("4.00"))
    # when
    migrate(
        "--execute",
        "--yes",
        "--user",
        str(named.user_id),
        "--user",
        by_email.user.email.upper(),
        *SOURCE,
    )
    # then
    assert completed() == {named.user_id, by_email.user_id}
    other.refresh_from_db()
    assert other.balance_usd == Decimal("4.00")
