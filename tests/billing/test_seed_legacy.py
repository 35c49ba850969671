"""`manage.py seed_legacy`: realistic legacy billing data, the same for the same seed.

The rows are compared in full (ids left out, users named by their place in the seed), the mixes
the migration's sources need are checked against the settings' own rules, and a refused run
writes nothing.
"""

import json
from datetime import date, datetime, timedelta
from io import StringIO

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Count
from django.utils import timezone

from billing.management.legacy_seed import (
    TABLES,
    legacy_seed_summary,
    power_operations_threshold,
    reference_moment,
    seed_legacy,
    username_prefix,
)
from billing.models import (
    LegacyAccount,
    LegacyBilling,
    LegacyCreditTransaction,
    LegacyOperation,
    LegacyPayment,
    LegacyUsage,
    UserProfile,
)
from credits.models import CreditAccount, CreditTransaction

User = get_user_model()

pytestmark = pytest.mark.django_db

LEGACY_MODELS = (
    LegacyBilling,
    LegacyAccount,
    LegacyPayment,
    LegacyCreditTransaction,
    LegacyOperation,
    LegacyUsage,
)
TODAY = date(2026, 11, 15)
REF = reference_moment(TODAY)
USERS = 400
SEED = 7


def seed(users=USERS, seed_value=SEED, **options):
    out = StringIO()
    call_command(
        "seed_legacy", users=users, seed=seed_value, today=TODAY.isoformat(), stdout=out, **options
    )
    return out.getvalue()


def seeded(model, seed_value=SEED):
    return model.objects.filter(user__username__startswith=username_prefix(seed_value))


def table_counts():
    return {model._meta.db_table: model.objects.count() for model in LEGACY_MODELS}


def all_counts():
    return (User.objects.count(), table_counts())


def snapshot(seed_value):
    """Every seeded row in full, without ids, users named by their number within the seed."""
    prefix = username_prefix(seed_value)
    usernames = dict(User.objects.filter(username__startswith=prefix).values_list("pk", "username"))

    def rows(queryset, fields):
        result = []
        for row in queryset.values(*fields):
            row = dict(row)
            if "user_id" in row:
                row["user"] = usernames[row.pop("user_id")].removeprefix(prefix)
            result.append(json.dumps(row, sort_keys=True, default=str))
        return sorted(result)

    tables = {
        "auth_user": rows(
            User.objects.filter(username__startswith=prefix),
            ["username", "email", "date_joined", "is_active", "is_staff", "last_login"],
        )
    }
    for model in LEGACY_MODELS:
        fields = [field.attname for field in model._meta.concrete_fields if field.attname != "id"]
        tables[model._meta.db_table] = rows(seeded(model, seed_value), fields)
    return tables


def without_usernames(tables, seed_value):
    prefix = username_prefix(seed_value)
    return {
        table: [row.replace(prefix, "legacy-sN-") for row in rows] for table, rows in tables.items()
    }


def delete_seeded(seed_value):
    for model in LEGACY_MODELS:
        seeded(model, seed_value).delete()
    User.objects.filter(username__startswith=username_prefix(seed_value)).delete()


def power_user_ids():
    """Users averaging more operations a day than the settings allow, over their window."""
    since = REF - timedelta(days=settings.CREDITS_RATE_LIMIT_WINDOW_DAYS)
    return set(
        seeded(LegacyOperation)
        .filter(created_at__gte=since)
        .values("user_id")
        .annotate(recent=Count("pk"))
        .filter(recent__gt=power_operations_threshold())
        .values_list("user_id", flat=True)
    )


# --- what it creates ----------------------------------------------------------------------


def test_creates_users_and_legacy_rows_only():
    # when
    seed()

    # then
    users = User.objects.filter(username__startswith="legacy-s7-")
    assert users.count() == USERS
    first = users.get(username="legacy-s7-000001")
    assert first.email == "legacy-s7-000001@example.com"
    assert not first.has_usable_password()
    assert first.date_joined < REF
    assert users.filter(username="legacy-s7-000400").exists()
    assert UserProfile.objects.count() == 0
    assert CreditAccount.objects.count() == 0
    assert CreditTransaction.objects.count() == 0


def test_every_table_has_rows_with_all_sources():
    # when
    seed()

    # then
    assert all(count > 0 for count in table_counts().values()), table_counts()


def test_the_same_seed_gives_the_same_rows():
    # given
    seed()
    first = snapshot(SEED)
    delete_seeded(SEED)
    assert User.objects.count() == 0
    assert all(count == 0 for count in table_counts().values())

    # when
    seed()

    # then
    assert snapshot(SEED) == first


def test_the_batch_size_does_not_change_the_rows():
    # given
    seed(users=120)
    in_one_batch = snapshot(SEED)
    delete_seeded(SEED)

    # when
    seed(users=120, batch_size=7)

    # then
    assert snapshot(SEED) == in_one_batch


def test_different_seeds_give_different_rows():
    # when
    seed(seed_value=7)
    seed(seed_value=8)

    # then
    seven = without_usernames(snapshot(7), 7)
    eight = without_usernames(snapshot(8), 8)
    for table in TABLES:
        assert seven[table] != eight[table], table


def test_a_source_alone_writes_the_same_rows_as_a_full_run():
    # given
    seed(sources="usd_balance")
    alone = snapshot(SEED)["user_billing"]
    delete_seeded(SEED)

    # when
    seed()

    # then
    assert snapshot(SEED)["user_billing"] == alone


@pytest.mark.parametrize(
    ("sources", "filled"),
    [
        ("usd_balance", {"user_billing"}),
        ("user_fields", {"legacy_accounts", "payments", "legacy_credit_transactions"}),
        ("rate_limit", {"legacy_operations"}),
        ("usage_tiers", {"legacy_accounts", "legacy_usage"}),
        ("rate_limit, usage_tiers", {"legacy_operations", "legacy_accounts", "legacy_usage"}),
    ],
)
def test_sources_limit_the_tables_filled(sources, filled):
    # when
    seed(sources=sources)

    # then
    counts = table_counts()
    assert {table for table, count in counts.items() if count} == filled, counts


# --- the mix ------------------------------------------------------------------------------


def test_balances_mix_usd_uah_both_and_zero():
    # when
    seed()

    # then
    billing = seeded(LegacyBilling)
    usd_only = billing.filter(balance_usd__gt=0, balance_uah=0).count()
    uah_only = billing.filter(balance_usd=0, balance_uah__gt=0).count()
    both = billing.filter(balance_usd__gt=0, balance_uah__gt=0).count()
    zero = billing.filter(balance_usd=0, balance_uah=0).count()
    assert min(uah_only, both, zero) > 0
    assert usd_only > uah_only + both
    assert not billing.filter(balance_usd__gt=500).exists()
    assert not billing.filter(balance_uah__gt=0, balance_uah__lt=100).exists()
    assert not billing.filter(balance_uah__gt=20000).exists()
    # cents, not only whole amounts
    assert any(usd % 1 for usd in billing.values_list("balance_usd", flat=True))


def test_plans_subscriptions_and_payments():
    # when
    seed()

    # then
    accounts = seeded(LegacyAccount)
    plans = dict(accounts.values_list("plan").annotate(n=Count("pk")))
    assert plans["free"] > plans["pro"] > plans.get("business", 0) > 0
    paying = accounts.exclude(plan="free")
    assert not paying.filter(stripe_customer_id="").exists()
    assert not paying.exclude(stripe_price_id__startswith="price_").exists()
    assert not paying.filter(subscription_started_at=None).exists()
    assert set(paying.values_list("subscription_status", flat=True)) <= {
        "active",
        "past_due",
        "canceled",
    }
    assert all(
        customer.startswith("cus_")
        for customer in paying.values_list("stripe_customer_id", flat=True)
    )
    joined = dict(User.objects.values_list("pk", "date_joined"))
    for user_id, started in accounts.exclude(subscription_started_at=None).values_list(
        "user_id", "subscription_started_at"
    ):
        assert joined[user_id] < started < REF
    assert accounts.filter(plan="free", stripe_customer_id="").exists()
    assert accounts.filter(plan="free", subscription_status="canceled").exists()
    assert not accounts.filter(plan="free").exclude(stripe_price_id="").exists()
    assert accounts.exclude(preferences={}).count() == accounts.count()

    payments = seeded(LegacyPayment)
    paying_ids = set(paying.values_list("user_id", flat=True))
    assert set(payments.values_list("user_id", flat=True)) <= paying_ids
    assert {"PAID", "FAILED", "REFUNDED"} == set(payments.values_list("status", flat=True))
    assert set(payments.values_list("currency", flat=True)) == {"usd"}
    assert not payments.filter(amount__lte=0).exists()
    started = dict(paying.values_list("user_id", "subscription_started_at"))
    for user_id, paid_at in payments.values_list("user_id", "created_at"):
        assert started[user_id] <= paid_at < REF


def test_most_legacy_ledgers_add_up_but_some_do_not():
    # when
    seed()

    # then
    balances = dict(seeded(LegacyAccount).values_list("user_id", "credits_balance"))
    # Summed in Python: SQLite sums decimals as floats.
    sums = {}
    for user_id, delta in seeded(LegacyCreditTransaction).values_list("user_id", "delta"):
        sums[user_id] = sums.get(user_id, 0) + delta
    assert set(sums) == set(balances)
    inconsistent = [user_id for user_id, total in sums.items() if total != balances[user_id]]
    assert 1 <= len(inconsistent) <= len(balances) // 10


def test_power_users_by_the_settings_rule():
    # when
    seed()

    # then
    power = power_user_ids()
    assert power
    with_operations = set(seeded(LegacyOperation).values_list("user_id", flat=True))
    assert len(power) < len(with_operations) // 10
    since = REF - timedelta(days=settings.CREDITS_RATE_LIMIT_WINDOW_DAYS)
    recent = (
        seeded(LegacyOperation)
        .filter(created_at__gte=since, user_id__in=power)
        .values("user_id")
        .annotate(n=Count("pk"))
    )
    assert all(350 <= row["n"] <= 500 for row in recent)
    operations = seeded(LegacyOperation)
    assert not operations.filter(created_at__gt=REF).exists()
    assert (
        not operations.exclude(user_id__in=power)
        .filter(created_at__lt=REF - timedelta(days=60))
        .exists()
    )


def test_usage_for_the_current_period_some_above_the_plan():
    # when
    seed()

    # then
    period = TODAY.strftime("%Y-%m")
    usage = seeded(LegacyUsage)
    account_plans = dict(seeded(LegacyAccount).values_list("user_id", "plan"))
    assert set(usage.values_list("user_id", flat=True)) <= set(account_plans)
    current = usage.filter(period=period)
    assert current.exists()
    assert usage.filter(period="2026-10").exists()
    assert set(usage.values_list("period", flat=True)) == {period, "2026-10"}
    above = [
        user_id
        for user_id, used in current.values_list("user_id", "amount_used")
        if used > settings.CREDITS_PLANS[account_plans[user_id]]
    ]
    assert 0 < len(above) < current.count() // 2


def test_users_appear_in_several_sources_and_some_in_none():
    # when
    seed()

    # then
    billing = set(seeded(LegacyBilling).values_list("user_id", flat=True))
    accounts = set(seeded(LegacyAccount).values_list("user_id", flat=True))
    operations = set(seeded(LegacyOperation).values_list("user_id", flat=True))
    assert billing & accounts & operations
    everyone = set(User.objects.values_list("pk", flat=True))
    assert everyone - billing - accounts - operations


@pytest.mark.parametrize(("users", "rule_breakers"), [(99, 0), (100, 1), (1000, 2)])
def test_a_few_users_break_a_rule(users, rule_breakers):
    # when
    seed(users=users, sources="usd_balance,user_fields")

    # then
    negative_usd = set(
        seeded(LegacyBilling).filter(balance_usd__lt=0).values_list("user_id", flat=True)
    )
    negative_credits = set(
        seeded(LegacyAccount).filter(credits_balance__lt=0).values_list("user_id", flat=True)
    )
    assert len(negative_usd) == rule_breakers
    assert negative_credits == negative_usd


# --- the summary --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sources", ["user_fields,usd_balance,rate_limit,usage_tiers", "usd_balance", "usage_tiers"]
)
def test_the_summary_is_what_the_database_holds(sources):
    # when
    summary = seed_legacy(users=USERS, seed=SEED, sources=sources, today=TODAY)

    # then
    assert summary == legacy_seed_summary(seed=SEED, sources=sources, today=TODAY)
    assert summary.users_created == USERS
    assert sum(summary.rows.values()) == sum(table_counts().values())


def test_the_command_prints_the_summary():
    # when
    output = seed()

    # then
    summary = legacy_seed_summary(seed=SEED, today=TODAY)
    assert output.splitlines() == summary.lines()
    assert f"Users created: {USERS}" in output
    assert summary.power_users > 0
    assert summary.inconsistent_ledgers > 0
    assert summary.rule_breaking_users == 1
    assert summary.users_in_several_sources > 0
    assert summary.users_without_rows > 0


def test_command_line_arguments():
    # when
    call_command(
        "seed_legacy",
        "--users",
        "30",
        "--seed",
        "3",
        "--sources",
        "usd_balance",
        "--batch-size",
        "4",
        stdout=StringIO(),
    )

    # then
    assert User.objects.filter(username__startswith="legacy-s3-").count() == 30
    assert seeded(LegacyBilling, 3).exists()


def test_without_today_timestamps_are_relative_to_today():
    # given
    midnight_before = reference_moment()

    # when
    call_command("seed_legacy", users=150, seed=4, stdout=StringIO())

    # then
    midnight = reference_moment()
    assert midnight == timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    references = {midnight_before, midnight}  # the run may straddle midnight
    stamps = set(seeded(LegacyBilling, 4).values_list("updated_at", flat=True))
    assert len(stamps) == 1
    assert stamps <= references
    reference = stamps.pop()
    latest = seeded(LegacyOperation, 4).order_by("-created_at").first().created_at
    assert reference - timedelta(days=1) < latest < reference
    periods = set(seeded(LegacyUsage, 4).values_list("period", flat=True))
    assert reference.strftime("%Y-%m") in periods


# --- refusals -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"users": 0}, "--users must be at least 1"),
        ({"users": -5}, "--users must be at least 1"),
        ({"sources": "usd_balance,bogus"}, "Unknown source(s): bogus"),
        ({"sources": " , "}, "No source given"),
        ({"seed_value": -1}, "--seed must be 0 or more"),
        ({"batch_size": 0}, "--batch-size must be at least 1"),
        ({"today": "15/11/2026"}, "--today must be a date"),
    ],
)
def test_bad_input_is_refused_and_writes_nothing(options, message):
    # given
    before = all_counts()
    options = {"users": 10, "seed_value": 9, **options}
    out = StringIO()

    # when
    with pytest.raises(CommandError) as refused:
        call_command(
            "seed_legacy",
            users=options.pop("users"),
            seed=options.pop("seed_value"),
            stdout=out,
            **options,
        )

    # then
    assert message in str(refused.value)
    assert all_counts() == before
    assert out.getvalue() == ""


def test_a_second_run_with_the_same_seed_is_refused_and_writes_nothing():
    # given
    seed(users=50)
    before = all_counts()

    # when
    with pytest.raises(CommandError) as refused:
        seed(users=20)

    # then
    assert "Users for seed 7 already exist" in str(refused.value)
    assert all_counts() == before


def test_another_seed_is_not_confused_with_a_prefix_of_it():
    # given
    seed(users=10, seed_value=1)

    # when
    seed(users=10, seed_value=12)

    # then
    assert User.objects.filter(username__startswith=username_prefix(12)).count() == 10


def test_reference_day_is_midnight_utc():
    assert reference_moment(date(2026, 3, 1)) == datetime(2026, 3, 1, tzinfo=REF.tzinfo)
    now = reference_moment()
    assert (now.hour, now.minute, now.second, now.microsecond) == (0, 0, 0, 0)
