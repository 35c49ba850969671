"""`usd_balance`: user_billing USD and UAH -> one migration entry at the run's rates."""

import csv
from decimal import Decimal

import pytest

from billing.models import LegacyBilling, UserProfile
from credits.models import CreditAccount, CreditTransaction, EntryKind
from credits.selectors import ledger_sum
from migrations_app.models import MigrationStatus, UserMigration
from tests.factories import LegacyBillingFactory
from tests.helpers import balance_of, entries_of, sources_args

pytestmark = pytest.mark.django_db

SOURCE = sources_args("usd_balance")


def test_credits_are_usd_times_rate_plus_uah_times_rate(migrate):
    # given: default rates USD 1.0, UAH 0.024
    legacy = LegacyBillingFactory(balance_usd=Decimal("10.50"), balance_uah=Decimal("1000.00"))
    # when
    migrate("--execute", "--yes", *SOURCE)
    # then
    assert balance_of(legacy.user_id) == Decimal("34.50")
    (entry,) = entries_of(legacy.user)
    assert entry.kind == EntryKind.MIGRATION
    assert entry.amount == Decimal("34.50")
    assert entry.metadata["legacy_amounts"] == {"USD": "10.50", "UAH": "1000.00"}
    row = UserMigration.objects.get(user_id=legacy.user_id)
    assert row.legacy_currency == "MIXED"
    assert row.legacy_amounts == {"USD": "10.50", "UAH": "1000.00"}
    assert row.rates == {"USD": "1.0", "UAH": "0.024"}
    assert row.initial_credits_granted == Decimal("34.50")
    assert row.rounding_remainder == Decimal("0")


@pytest.mark.parametrize(
    ("usd", "credits", "remainder"),
    [
        # with --rate USD=0.5: exactly half a cent rounds to the even cent
        ("0.25", "0.12", "0.005"),
        ("0.35", "0.18", "-0.005"),
        ("0.01", "0.00", "0.005"),
        ("0.27", "0.14", "-0.005"),
        ("0.33", "0.16", "0.005"),
    ],
)
def test_rounding_is_half_even_to_the_cent_and_the_remainder_is_kept(
    migrate, usd, credits, remainder
):
    # given
    legacy = LegacyBillingFactory(balance_usd=Decimal(usd))
    # when
    migrate("--execute", "--yes", "--rate", "USD=0.5", *SOURCE)
    # then
    row = UserMigration.objects.get(user_id=legacy.user_id)
    assert row.status == MigrationStatus.COMPLETED
    assert row.initial_credits_granted == Decimal(credits)
    assert row.rounding_remainder == Decimal(remainder)
    assert row.initial_credits_granted + row.rounding_remainder == Decimal(usd) * Decimal("0.5")
    assert balance_of(legacy.user_id) == Decimal(credits)


def test_remainder_of_a_mixed_balance(migrate):
    # given: 3.33 + 12.34 x 0.037 = 3.78658
    legacy = LegacyBillingFactory(balance_usd=Decimal("3.33"), balance_uah=Decimal("12.34"))
    # when
    migrate("--execute", "--yes", "--rate", "UAH=0.037", *SOURCE)
    # then
    row = UserMigration.objects.get(user_id=legacy.user_id)
    assert row.initial_credits_granted == Decimal("3.79")
    assert row.rounding_remainder == Decimal("-0.00342")
    assert balance_of(legacy.user_id) == Decimal("3.79")


def test_legacy_balances_are_zeroed_and_kept_in_rollback_data(migrate):
    # given
    legacy = LegacyBillingFactory(balance_usd=Decimal("7.25"), balance_uah=Decimal("99.99"))
    # when
    migrate("--execute", "--yes", *SOURCE)
    # then
    legacy.refresh_from_db()
    assert legacy.balance_usd == Decimal("0.00")
    assert legacy.balance_uah == Decimal("0.00")
    row = UserMigration.objects.get(user_id=legacy.user_id)
    assert row.rollback_data == {
        "balance_usd": "7.25",
        "balance_uah": "99.99",
        "kept_legacy": False,
    }


def test_execute_writes_a_csv_backup_of_the_rows_it_changes(migrate, tmp_path):
    # given
    legacy = LegacyBillingFactory(balance_usd=Decimal("7.25"), balance_uah=Decimal("99.99"))
    # when
    migrate("--execute", "--yes", *SOURCE)
    # then
    (backup,) = tmp_path.glob("usd_balance-run*.csv")
    with backup.open() as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["user_id"] == str(legacy.user_id)
    assert Decimal(row["balance_usd"]) == Decimal("7.25")
    assert Decimal(row["balance_uah"]) == Decimal("99.99")


def test_keep_legacy_leaves_the_legacy_balances(migrate, tmp_path):
    # given
    legacy = LegacyBillingFactory(balance_usd=Decimal("7.25"), balance_uah=Decimal("100.00"))
    # when
    migrate("--execute", "--yes", "--keep-legacy", *SOURCE)
    # then
    legacy.refresh_from_db()
    assert legacy.balance_usd == Decimal("7.25")
    assert legacy.balance_uah == Decimal("100.00")
    assert balance_of(legacy.user_id) == Decimal("9.65")
    row = UserMigration.objects.get(user_id=legacy.user_id)
    assert row.rollback_data["kept_legacy"] is True
    assert list(tmp_path.glob("*.csv")) == []
    migrate("--verify", *SOURCE)


def test_rates_from_the_command_line(migrate):
    # given
    legacy = LegacyBillingFactory(balance_usd=Decimal("10.00"), balance_uah=Decimal("100.00"))
    # when
    migrate("--execute", "--yes", "--rate", "USD=2", "--rate", "UAH=0.05", *SOURCE)
    # then
    assert balance_of(legacy.user_id) == Decimal("25.00")
    row = UserMigration.objects.get(user_id=legacy.user_id)
    assert row.rates == {"USD": "2", "UAH": "0.05"}


def test_a_bare_rate_is_the_usd_rate(migrate):
    # given
    legacy = LegacyBillingFactory(balance_usd=Decimal("10.00"), balance_uah=Decimal("100.00"))
    # when
    migrate("--execute", "--yes", "--rate", "3", *SOURCE)
    # then: 10 x 3 + 100 x 0.024 (the configured UAH rate)
    assert balance_of(legacy.user_id) == Decimal("32.40")
    assert UserMigration.objects.get(user_id=legacy.user_id).rates == {
        "USD": "3",
        "UAH": "0.024",
    }


def test_negative_balance_fails_the_user_and_keeps_their_legacy_values(migrate):
    # given
    broken = LegacyBillingFactory(balance_usd=Decimal("5.00"), balance_uah=Decimal("-1.00"))
    # when
    _, out = migrate("--execute", "--yes", *SOURCE, expect=1)
    # then
    row = UserMigration.objects.get(user_id=broken.user_id)
    assert row.status == MigrationStatus.FAILED
    assert row.error_message == "negative legacy balance (5.00 USD, -1.00 UAH)"
    assert "negative legacy balance (5.00 USD, -1.00 UAH)" in out
    broken.refresh_from_db()
    assert broken.balance_usd == Decimal("5.00")
    assert broken.balance_uah == Decimal("-1.00")
    assert not CreditTransaction.objects.exists()


def test_zero_balance_completes_without_an_entry(migrate):
    # given
    legacy = LegacyBillingFactory()
    # when
    _, out = migrate("--execute", "--yes", *SOURCE)
    # then
    assert "zero balance" in out
    row = UserMigration.objects.get(user_id=legacy.user_id)
    assert row.status == MigrationStatus.COMPLETED
    assert row.initial_credits_granted == Decimal("0.00")
    assert not CreditTransaction.objects.exists()


def test_a_rate_with_six_decimal_places_is_accounted_for_to_the_cent(migrate):
    # given: 0.01 x 0.024123 = 0.00024123, all of it remainder
    legacy = LegacyBillingFactory(balance_usd=Decimal("1.01"), balance_uah=Decimal("0.01"))
    # when
    migrate("--execute", "--yes", "--rate", "UAH=0.024123", "--rate", "USD=1.000000", *SOURCE)
    # then
    row = UserMigration.objects.get(user_id=legacy.user_id)
    assert row.initial_credits_granted == Decimal("1.01")
    assert row.rounding_remainder == Decimal("0.00024123")
    migrate("--verify", *SOURCE)


def test_execute_verify_rollback_round_trip(migrate):
    # given
    a = LegacyBillingFactory(balance_usd=Decimal("10.50"))
    b = LegacyBillingFactory(balance_uah=Decimal("1000"))
    c = LegacyBillingFactory(balance_usd=Decimal("3.33"), balance_uah=Decimal("12.34"))
    broken = LegacyBillingFactory(balance_usd=Decimal("-5"))
    empty = LegacyBillingFactory()
    # when
    _, out = migrate("--execute", "--yes", "--source", "usd_balance", expect=1)
    # then
    assert "negative legacy balance" in out
    balances = dict(CreditAccount.objects.values_list("user_id", "balance"))
    assert balances[a.user_id] == Decimal("10.50")
    assert balances[b.user_id] == Decimal("24.00")
    # 3.33 + 12.34 x 0.024 = 3.62616 -> 3.63, remainder -0.00384
    assert balances[c.user_id] == Decimal("3.63")
    assert broken.user_id not in balances
    row = UserMigration.objects.get(user_id=c.user_id)
    assert row.rounding_remainder == Decimal("-0.00384")
    assert UserMigration.objects.get(user_id=broken.user_id).status == MigrationStatus.FAILED
    assert UserMigration.objects.get(user_id=empty.user_id).status == MigrationStatus.COMPLETED
    assert LegacyBilling.objects.get(pk=a.pk).balance_usd == 0
    assert LegacyBilling.objects.get(pk=broken.pk).balance_usd == Decimal("-5")
    assert UserProfile.objects.get(user_id=a.user_id).migration_completed_at is not None
    _, report = migrate("--verify", "--source", "usd_balance", "--format", "json")
    assert report["clean"], report
    # a second execute writes nothing new
    entries = CreditTransaction.objects.count()
    _, out = migrate("--execute", "--yes", "--source", "usd_balance", expect=1)
    assert CreditTransaction.objects.count() == entries
    # rollback everything
    _, out = migrate("--rollback", "--yes", "--all", "--source", "usd_balance")
    assert LegacyBilling.objects.get(pk=a.pk).balance_usd == Decimal("10.50")
    assert LegacyBilling.objects.get(pk=c.pk).balance_uah == Decimal("12.34")
    for account in CreditAccount.objects.all():
        assert account.balance == 0 == ledger_sum(account=account)
    assert CreditTransaction.objects.filter(kind=EntryKind.REVERSAL).count() == 3
    _, report = migrate("--verify", "--source", "usd_balance", "--format", "json")
    assert report["clean"], report
    _, out = migrate("--rollback", "--yes", "--all", "--source", "usd_balance")
    assert CreditTransaction.objects.filter(kind=EntryKind.REVERSAL).count() == 3
