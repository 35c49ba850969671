from decimal import Decimal

import pytest

from billing.models import LegacyBilling, UserProfile
from credits.models import CreditAccount, CreditTransaction, EntryKind
from credits.selectors import ledger_sum
from migrations_app.models import MigrationStatus, UserMigration
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def billing(usd="0", uah="0", **kwargs):
    user = UserFactory(**kwargs)
    return LegacyBilling.objects.create(
        user=user, balance_usd=Decimal(usd), balance_uah=Decimal(uah)
    )


def test_execute_verify_rollback_round_trip(migrate):
    # given
    a = billing("10.50")
    b = billing("0", "1000")
    c = billing("3.33", "12.34")
    broken = billing("-5")
    empty = billing()
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
    _, out = migrate("--rollback", "--all", "--source", "usd_balance")
    assert LegacyBilling.objects.get(pk=a.pk).balance_usd == Decimal("10.50")
    assert LegacyBilling.objects.get(pk=c.pk).balance_uah == Decimal("12.34")
    for account in CreditAccount.objects.all():
        assert account.balance == 0 == ledger_sum(account=account)
    assert CreditTransaction.objects.filter(kind=EntryKind.REVERSAL).count() == 3
    _, report = migrate("--verify", "--source", "usd_balance", "--format", "json")
    assert report["clean"], report
    _, out = migrate("--rollback", "--all", "--source", "usd_balance")
    assert CreditTransaction.objects.filter(kind=EntryKind.REVERSAL).count() == 3
