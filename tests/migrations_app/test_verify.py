"""--verify, and every credit accounted for to the cent after --execute."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from billing.models import LegacyAccount, LegacyBilling, LegacyOperation, LegacyUsage
from credits.models import CreditAccount, CreditLot, CreditTransaction, EntryKind
from credits.selectors import ledger_sum
from migrations_app.models import MigrationStatus, UserMigration
from tests.factories import LegacyBillingFactory, current_period
from tests.helpers import ALL_SOURCES, sources_args

pytestmark = pytest.mark.django_db

USD_RATE, UAH_RATE = Decimal("1.1"), Decimal("0.037")
RATES = ("--rate", f"USD={USD_RATE}", "--rate", f"UAH={UAH_RATE}")


def legacy_values() -> dict[str, Decimal]:
    """What each source's users are owed, computed straight from the legacy tables."""
    usd = sum(
        (
            row.balance_usd * USD_RATE + row.balance_uah * UAH_RATE
            for row in LegacyBilling.objects.all()
            if row.balance_usd >= 0 and row.balance_uah >= 0
        ),
        Decimal("0"),
    )
    user_fields = sum(
        (
            row.credits_balance
            for row in LegacyAccount.objects.all()
            if row.credits_balance >= 0 and row.plan in settings.CREDITS_PLANS
        ),
        Decimal("0"),
    )
    since = timezone.now() - timedelta(days=30)
    rate_limit = Decimal("0")
    for user_id in set(LegacyOperation.objects.values_list("user_id", flat=True)):
        recent = LegacyOperation.objects.filter(user_id=user_id, created_at__gte=since).count()
        rate_limit += Decimal("50") if recent > 300 else Decimal("20")
    used = dict(
        LegacyUsage.objects.filter(period=current_period()).values_list("user_id", "amount_used")
    )
    usage_tiers = sum(
        (
            max(Decimal("0"), settings.CREDITS_PLANS[row.plan] - used.get(row.user_id, 0))
            for row in LegacyAccount.objects.all()
            if row.plan in settings.CREDITS_PLANS
        ),
        Decimal("0"),
    )
    return {
        "user_fields": user_fields,
        "usd_balance": usd,
        "rate_limit": rate_limit,
        "usage_tiers": usage_tiers,
    }


def test_verify_after_execute_is_clean(migrate, legacy_world):
    # given
    migrate("--execute", "--yes", *RATES, *sources_args(), expect=1)
    # when
    _, out = migrate("--verify", *sources_args())
    _, report = migrate("--verify", "--format", "json", *sources_args())
    # then
    assert "Verified: no discrepancies." in out
    assert report["clean"] is True
    assert report["discrepancies"] == []
    assert report["users"]["usd_balance"] == {"COMPLETED": 4}
    assert report["totals"]["usd_balance"]["credits_granted"] == "52.67"


def test_credits_granted_equal_legacy_values_times_rates_to_the_cent(migrate, legacy_world):
    # given
    owed = legacy_values()
    # when
    migrate("--execute", "--yes", *RATES, *sources_args(), expect=1)
    # then
    for source in ALL_SOURCES:
        rows = UserMigration.objects.filter(source=source, status=MigrationStatus.COMPLETED)
        granted = sum((row.initial_credits_granted for row in rows), Decimal("0"))
        remainders = sum((row.rounding_remainder for row in rows), Decimal("0"))
        assert granted + remainders == owed[source], source
        on_ledger = sum(
            CreditTransaction.objects.filter(
                kind=EntryKind.MIGRATION, migrated_from=source
            ).values_list("amount", flat=True),
            Decimal("0"),
        )
        assert on_ledger == granted, source
    # 10.50 x 1.1 + 1000 x 0.037 + (3.33 x 1.1 + 12.34 x 0.037) + 0.13 x 0.037
    assert owed["usd_balance"] == Decimal("52.67439")
    usd_rows = UserMigration.objects.filter(source="usd_balance", status=MigrationStatus.COMPLETED)
    assert sum(row.initial_credits_granted for row in usd_rows) == Decimal("52.67")
    assert sum(row.rounding_remainder for row in usd_rows) == Decimal("0.00439")
    for account in CreditAccount.objects.all():
        assert account.balance == ledger_sum(account=account)


def test_verify_exits_1_when_a_user_migration_is_changed_behind_the_engine(migrate):
    # given
    tampered = LegacyBillingFactory(balance_usd=Decimal("10.00"))
    LegacyBillingFactory(balance_usd=Decimal("20.00"))
    migrate("--execute", "--yes", *sources_args("usd_balance"))
    UserMigration.objects.filter(user_id=tampered.user_id).update(
        initial_credits_granted=Decimal("100.00")
    )
    # when
    _, out = migrate("--verify", *sources_args("usd_balance"), expect=1)
    _, report = migrate("--verify", "--format", "json", *sources_args("usd_balance"), expect=1)
    # then
    assert "2 discrepancies:" in out
    assert (
        f"  user {tampered.user_id} {tampered.user.email} [usd_balance]: ledger holds 10.00"
        " credits from usd_balance, expected 100.00 (COMPLETED)" in out
    )
    assert f"user {tampered.user_id} {tampered.user.email} [usd_balance]: granted 100.00" in out
    assert "is not the legacy value 10.00" in out
    assert report["clean"] is False
    assert {item["user_id"] for item in report["discrepancies"]} == {tampered.user_id}


def test_verify_exits_1_when_an_account_differs_from_its_ledger(migrate):
    # given: a row whose own arithmetic holds, written with raw SQL beside the services, so the
    # account's balance no longer equals the sum of its entries
    tampered = LegacyBillingFactory(balance_usd=Decimal("10.00"))
    LegacyBillingFactory(balance_usd=Decimal("20.00"))
    migrate("--execute", "--yes", *sources_args("usd_balance"))
    account = CreditAccount.objects.get(user_id=tampered.user_id)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {CreditTransaction._meta.db_table} (account_id, kind, amount,"
            " balance_before, balance_after, source, description, idempotency_key,"
            " migrated_from, metadata, reason, created_at)"
            " VALUES (%s, %s, %s, %s, %s, '', '', %s, '', %s, '', %s)",
            [
                account.pk,
                EntryKind.ADJUSTMENT,
                Decimal("5.00"),
                Decimal("10.00"),
                Decimal("15.00"),
                "tampered-behind-the-engine",
                "{}",
                timezone.now(),
            ],
        )
    # when
    _, out = migrate("--verify", *sources_args("usd_balance"), expect=1)
    # then
    assert "1 discrepancies:" in out
    assert (
        f"  user {tampered.user_id} {tampered.user.email} [ledger]: balance 10.00 differs from"
        " the sum of its entries 15.00" in out
    )


def test_verify_exits_1_and_names_the_account_when_a_lot_differs_from_its_ledger(migrate):
    # given: the migration's lot changed by raw SQL (lots are not append-only): the entries
    # and the balance still agree, the lot no longer does
    tampered = LegacyBillingFactory(balance_usd=Decimal("10.00"))
    LegacyBillingFactory(balance_usd=Decimal("20.00"))
    migrate("--execute", "--yes", *sources_args("usd_balance"))
    lot = CreditLot.objects.get(account__user_id=tampered.user_id)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {CreditLot._meta.db_table} SET remaining = %s WHERE id = %s",
            [Decimal("7.50"), lot.pk],
        )
    # when
    _, out = migrate("--verify", *sources_args("usd_balance"), expect=1)
    _, report = migrate("--verify", "--format", "json", *sources_args("usd_balance"), expect=1)
    # then
    assert "2 discrepancies:" in out
    who = f"  user {tampered.user_id} {tampered.user.email}"
    assert f"{who} [lots]: balance 10.00 differs from the sum of its lots' remaining 7.50" in out
    assert (
        f"{who} [lots]: lot {lot.pk} has 7.50 remaining, its amount less its allocations"
        " is 10.00" in out
    )
    assert {item["user_id"] for item in report["discrepancies"]} == {tampered.user_id}


def test_verify_exits_1_when_held_credits_have_no_active_hold(migrate):
    # given
    tampered = LegacyBillingFactory(balance_usd=Decimal("10.00"))
    migrate("--execute", "--yes", *sources_args("usd_balance"))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {CreditAccount._meta.db_table} SET held = %s WHERE user_id = %s",
            [Decimal("3.00"), tampered.user_id],
        )
    # when
    _, out = migrate("--verify", *sources_args("usd_balance"), expect=1)
    # then
    assert "1 discrepancies:" in out
    assert (
        f"  user {tampered.user_id} {tampered.user.email} [holds]: held 3.00 is not its active"
        " holds 0.00 or is above its balance 10.00" in out
    )
