"""The demo data: customers with an expiring bonus and a hold, written once however often the
setup runs."""

import io
from decimal import Decimal

import pytest
from django.core.management import call_command

from credits.models import CreditAccount, CreditHold, CreditLot, CreditTransaction, HoldStatus
from tests.helpers import assert_ledger_consistent

pytestmark = pytest.mark.django_db


def demo_setup():
    out = io.StringIO()
    call_command("demo_setup", "--legacy-users", "0", stdout=out)
    return out.getvalue()


def test_the_demo_customer_has_an_expiring_bonus_and_an_active_hold():
    # when
    printed = demo_setup()

    # then
    account = CreditAccount.objects.get(user__email="ada@example.com")
    bonus = CreditLot.objects.get(account=account, entry__description="Welcome bonus")
    assert bonus.category == "promotional"
    assert bonus.remaining == Decimal("10.00")
    assert bonus.expires_at is not None
    hold = CreditHold.objects.get(account=account)
    assert (hold.amount, hold.status) == (Decimal("2.00"), HoldStatus.ACTIVE)
    assert account.held == Decimal("2.00")
    # 20 on signing up, 3.50 and 1.25 spent (from the signup lot), the bonus of 10.
    assert account.balance == Decimal("25.25")
    assert "a bonus that expires in 14 days and a hold" in printed
    assert_ledger_consistent()


def test_running_the_demo_setup_again_writes_nothing_twice():
    # given
    demo_setup()
    entries = CreditTransaction.objects.count()

    # when
    demo_setup()

    # then
    assert CreditTransaction.objects.count() == entries
    assert CreditHold.objects.count() == 1
    assert_ledger_consistent()
