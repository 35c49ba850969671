"""Lot expiry through the service: one entry per lot, idempotent runs, holds respected, rollover
cap, run limits, on both write paths (the job and the command: test_expiry.py)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from credits.models import CreditLot, CreditTransaction, EntryKind
from credits.services import (
    credit_grant,
    credit_hold_capture,
    credit_hold_create,
    credit_hold_release,
    credit_lots_expire,
    credit_reverse,
    credit_spend,
)
from tests.helpers import assert_ledger_consistent, ledger_state, table_contents

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("write_path")]


def grant(account, amount, key, **terms):
    entry = credit_grant(account=account, amount=Decimal(amount), idempotency_key=key, **terms)
    return CreditLot.objects.get(entry_id=entry.pk)


def remaining(lot):
    lot.refresh_from_db()
    return lot.remaining


def taken(entry):
    return list(entry.allocations.order_by("id").values_list("lot_id", "amount"))


@pytest.fixture
def now():
    return timezone.now()


def test_each_lot_whose_expiry_has_come_gets_one_entry_from_that_lot_alone(account, now):
    # given two lots expiring tomorrow and the day after (a spend took some of the first),
    # one next week, one never
    soon = grant(account, "10", "soon", expires_at=now + timedelta(days=1))
    partly_spent = grant(account, "20", "spent", expires_at=now + timedelta(days=2))
    later = grant(account, "30", "later", expires_at=now + timedelta(days=7))
    never = grant(account, "40", "never")
    credit_spend(account=account, amount=Decimal("5"), idempotency_key="spend")

    # when the task runs three days on
    written = credit_lots_expire(now=now + timedelta(days=3))

    # then one expiry entry per due lot, of what that lot had left, from it alone
    assert [entry.kind for entry in written] == [EntryKind.EXPIRY, EntryKind.EXPIRY]
    assert [taken(entry) for entry in written] == [
        [(soon.pk, Decimal("5.00"))],
        [(partly_spent.pk, Decimal("20.00"))],
    ]
    assert [entry.amount for entry in written] == [Decimal("-5.00"), Decimal("-20.00")]
    assert [remaining(lot) for lot in (soon, partly_spent, later, never)] == [
        Decimal("0.00"),
        Decimal("0.00"),
        Decimal("30.00"),
        Decimal("40.00"),
    ]
    account.refresh_from_db()
    # an expiry lowers what was earned, as a refund does; nothing was spent by it
    assert (account.balance, account.total_earned, account.total_spent) == (
        Decimal("70.00"),
        Decimal("75.00"),
        Decimal("5.00"),
    )
    assert_ledger_consistent()


def test_lots_of_several_accounts_expire_in_one_run(account, now):
    from credits.services import credit_account_open
    from tests.factories import UserFactory

    other = credit_account_open(user=UserFactory())
    mine = grant(account, "10", "mine", expires_at=now - timedelta(hours=1))
    theirs = grant(other, "20", "theirs", expires_at=now - timedelta(hours=2))

    written = credit_lots_expire(now=now)

    assert [(entry.account_id, taken(entry)) for entry in written] == [
        (other.pk, [(theirs.pk, Decimal("20.00"))]),
        (account.pk, [(mine.pk, Decimal("10.00"))]),
    ]
    assert_ledger_consistent()


def test_a_second_run_writes_nothing(account, now):
    # given a run that expired a lot
    grant(account, "10", "gift", expires_at=now - timedelta(minutes=1))
    assert len(credit_lots_expire(now=now)) == 1
    before = table_contents(CreditTransaction, CreditLot)

    # when it runs again, later
    written = credit_lots_expire(now=now + timedelta(days=1))

    # then
    assert written == []
    assert table_contents(CreditTransaction, CreditLot) == before


def test_a_lot_that_has_not_expired_yet_is_left(account, now):
    lot = grant(account, "10", "gift", expires_at=now + timedelta(seconds=1))
    before = ledger_state(account)

    assert credit_lots_expire(now=now) == []
    assert ledger_state(account) == before
    assert remaining(lot) == Decimal("10.00")


def test_expiry_never_takes_what_holds_reserve_and_the_rest_expires_after_release(account, now):
    # given a lot of 100 that expires, and a hold of 70 on the account
    lot = grant(account, "100", "gift", expires_at=now + timedelta(hours=1))
    hold = credit_hold_create(account=account, amount=Decimal("70"), idempotency_key="hold")

    # when the lot's expiry comes
    first = credit_lots_expire(now=now + timedelta(hours=2))

    # then only the 30 available expired; the held 70 is still there
    assert [entry.amount for entry in first] == [Decimal("-30.00")]
    assert remaining(lot) == Decimal("70.00")
    account.refresh_from_db()
    assert (account.balance, account.held) == (Decimal("70.00"), Decimal("70.00"))
    assert credit_lots_expire(now=now + timedelta(hours=2)) == []

    # when the hold is released and the task runs again
    credit_hold_release(hold=hold)
    second = credit_lots_expire(now=now + timedelta(hours=3))

    # then the rest expires, as a second entry with its own key
    assert [entry.amount for entry in second] == [Decimal("-70.00")]
    assert first[0].idempotency_key != second[0].idempotency_key
    assert remaining(lot) == Decimal("0.00")
    account.refresh_from_db()
    assert (account.balance, account.held) == (Decimal("0.00"), Decimal("0.00"))
    assert_ledger_consistent()


def test_a_capture_after_the_expiry_came_takes_the_expiring_lot_first(account, now):
    # given a hold over a lot whose expiry came while it was held
    expiring = grant(account, "50", "gift", expires_at=now + timedelta(hours=1))
    paid = grant(account, "100", "buy", kind=EntryKind.PURCHASE)
    hold = credit_hold_create(account=account, amount=Decimal("120"), idempotency_key="hold")
    assert [entry.amount for entry in credit_lots_expire(now=now + timedelta(hours=2))] == [
        Decimal("-30.00")
    ]

    # when the hold is captured
    spend = credit_hold_capture(hold=hold, idempotency_key="capture")

    # then it drew the expiring lot's 20 first, and nothing is left to expire
    assert taken(spend) == [(expiring.pk, Decimal("20.00")), (paid.pk, Decimal("100.00"))]
    assert credit_lots_expire(now=now + timedelta(hours=3)) == []
    assert_ledger_consistent()


def test_credits_given_back_to_an_expired_lot_expire_again(account, now):
    # given a spend from a lot, which then expired
    lot = grant(account, "10", "gift", expires_at=now + timedelta(hours=1))
    spend = credit_spend(account=account, amount=Decimal("4"), idempotency_key="spend")
    [first] = credit_lots_expire(now=now + timedelta(hours=2))

    # when the spend is reversed (its 4 go back to the expired lot) and the task runs
    credit_reverse(entry=spend, idempotency_key="reverse")
    assert remaining(lot) == Decimal("4.00")
    [second] = credit_lots_expire(now=now + timedelta(hours=3))

    # then they expire too, under a second key
    assert (first.amount, second.amount) == (Decimal("-6.00"), Decimal("-4.00"))
    assert first.idempotency_key != second.idempotency_key
    assert remaining(lot) == Decimal("0.00")
    assert_ledger_consistent()


def test_a_monthly_lot_keeps_up_to_the_rollover_cap_for_one_more_period(account, now, settings):
    # given a cap of 25 and a monthly lot with 60 of 100 left at its period's end
    settings.CREDITS_MONTHLY_ROLLOVER_CAP = Decimal("25")
    period_end = now + timedelta(hours=1)
    lot = grant(account, "100", "month", kind=EntryKind.MONTHLY_GRANT, expires_at=period_end)
    credit_spend(account=account, amount=Decimal("40"), idempotency_key="spend")

    # when the period ends
    [expired] = credit_lots_expire(now=period_end)

    # then 35 expired, 25 rolled over to the next period's end
    assert expired.amount == Decimal("-35.00")
    lot.refresh_from_db()
    assert (lot.remaining, lot.rolled_over) == (Decimal("25.00"), True)
    assert lot.expires_at.month != period_end.month
    assert credit_lots_expire(now=period_end + timedelta(days=1)) == []

    # when that period ends too, the rest expires: a lot rolls over once
    [rest] = credit_lots_expire(now=lot.expires_at)
    assert rest.amount == Decimal("-25.00")
    assert remaining(lot) == Decimal("0.00")
    assert_ledger_consistent()


def test_a_monthly_lot_under_the_cap_rolls_over_whole(account, now, settings):
    settings.CREDITS_MONTHLY_ROLLOVER_CAP = Decimal("25")
    lot = grant(account, "20", "month", kind=EntryKind.MONTHLY_GRANT, expires_at=now)

    assert credit_lots_expire(now=now) == []
    lot.refresh_from_db()
    assert (lot.remaining, lot.rolled_over) == (Decimal("20.00"), True)
    assert lot.expires_at > now


def test_other_categories_never_roll_over(account, now, settings):
    settings.CREDITS_MONTHLY_ROLLOVER_CAP = Decimal("25")
    lot = grant(account, "20", "gift", expires_at=now)

    [expired] = credit_lots_expire(now=now)

    assert expired.amount == Decimal("-20.00")
    assert remaining(lot) == Decimal("0.00")


def test_a_held_monthly_lot_rolls_over_no_more_than_the_cap(account, now, settings):
    # given a cap of 25, a monthly lot of 100 at its period's end, and a hold of 90 on it
    settings.CREDITS_MONTHLY_ROLLOVER_CAP = Decimal("25")
    lot = grant(account, "100", "month", kind=EntryKind.MONTHLY_GRANT, expires_at=now)
    hold = credit_hold_create(account=account, amount=Decimal("90"), idempotency_key="hold")

    # when the period ends while the hold is active, then the hold is released and the task
    # runs again
    first = credit_lots_expire(now=now)
    credit_hold_release(hold=hold)
    second = credit_lots_expire(now=now + timedelta(minutes=1))

    # then all but the cap expired: the hold only delayed the expiry of what it reserved
    assert [entry.amount for entry in first + second] == [Decimal("-10.00"), Decimal("-65.00")]
    lot.refresh_from_db()
    assert (lot.remaining, lot.rolled_over) == (Decimal("25.00"), True)
    assert lot.expires_at > now + timedelta(days=27)
    assert_ledger_consistent()


def test_the_limit_bounds_one_run(account, now):
    lots = [
        grant(account, "1", f"gift-{index}", expires_at=now - timedelta(minutes=index))
        for index in range(3)
    ]

    first = credit_lots_expire(now=now, limit=2)
    rest = credit_lots_expire(now=now, limit=2)

    # the longest expired first
    assert [taken(entry)[0][0] for entry in first] == [lots[2].pk, lots[1].pk]
    assert [taken(entry)[0][0] for entry in rest] == [lots[0].pk]


def test_lots_whose_credits_are_all_held_do_not_take_up_a_run(account, now):
    # given a due lot on an account whose holds reserve all its credits, and a due lot behind
    # it on another account
    from credits.services import credit_account_open
    from tests.factories import UserFactory

    grant(account, "10", "blocked", expires_at=now - timedelta(hours=2))
    credit_hold_create(account=account, amount=Decimal("10"), idempotency_key="hold")
    other = credit_account_open(user=UserFactory())
    behind = grant(other, "5", "behind", expires_at=now - timedelta(hours=1))

    # when a run of one lot comes
    written = credit_lots_expire(now=now, limit=1)

    # then it expired the lot it could
    assert [taken(entry) for entry in written] == [[(behind.pk, Decimal("5.00"))]]
