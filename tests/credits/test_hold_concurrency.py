"""Holds, captures, releases and expiries from real threads on PostgreSQL, each thread with its
own connection: never an overdraft, never a leaked hold, and balance = lots = entries at the
end. Each test runs on both write paths (`write_path`)."""

from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from credits.exceptions import HoldNotActive, InsufficientCredits
from credits.models import (
    CreditAccount,
    CreditHold,
    CreditLot,
    CreditTransaction,
    EntryKind,
    HoldStatus,
)
from credits.selectors import ledger_sum
from credits.services import (
    credit_account_open,
    credit_grant,
    credit_hold_capture,
    credit_hold_create,
    credit_hold_release,
    credit_holds_expire,
    credit_lots_expire,
    credit_spend,
)
from tests.factories import UserFactory
from tests.helpers import THREADS, assert_ledger_consistent, run_in_threads

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("write_path"),
]


def lots_total(account):
    return sum(CreditLot.objects.filter(account=account).values_list("remaining", flat=True))


@pytest.fixture
def five_lots():
    """An account of 1000 in five lots of 200, listed in the order the rule draws them."""
    account = credit_account_open(user=UserFactory())
    now = timezone.now()
    terms = [
        ("monthly", dict(kind=EntryKind.MONTHLY_GRANT, expires_at=now + timedelta(days=5))),
        ("gift-soon", dict(expires_at=now + timedelta(days=10))),
        ("gift-later", dict(expires_at=now + timedelta(days=20), priority=1)),
        ("migration", dict(kind=EntryKind.MIGRATION)),
        ("paid", dict(kind=EntryKind.PURCHASE)),
    ]
    lots = []
    for key, lot_terms in terms:
        entry = credit_grant(
            account=account, amount=Decimal("200"), idempotency_key=key, **lot_terms
        )
        lots.append(CreditLot.objects.get(entry_id=entry.pk))
    return account, lots


def test_eight_threads_holding_and_capturing_never_overdraw_nor_leak_a_hold(five_lots):
    # given 8 threads, each reserving 40 times (2,700 credits asked of 1000) and then
    # capturing it whole, capturing part of it, or releasing it (the job aborted)
    account, lots = five_lots

    def hold_and_settle(index):
        outcome = Counter()
        mine = CreditAccount.objects.get(pk=account.pk)
        for attempt in range(40):
            amount = Decimal(5 + index) + Decimal("0.25")
            try:
                held = credit_hold_create(
                    account=mine, amount=amount, idempotency_key=f"h{index}-{attempt}"
                )
            except InsufficientCredits:
                outcome["refused"] += 1
                continue
            if attempt % 3 == 2:
                credit_hold_release(hold=held, reason="aborted")
                outcome["released"] += 1
                continue
            part = amount if attempt % 3 == 0 else amount - Decimal("1.10")
            spend = credit_hold_capture(
                hold=held, idempotency_key=f"c{index}-{attempt}", amount=part
            )
            assert spend.amount == -part
            outcome["captured"] += 1
            outcome["spent"] += part
        return outcome

    # when
    results, errors = run_in_threads(hold_and_settle)

    # then no errors, every hold settled, and the figures add up exactly
    assert errors == []
    total = sum(results, Counter())
    assert total["refused"] > 0  # the account ran dry: the check was tested
    spent = Decimal(total["spent"])
    account.refresh_from_db()
    assert account.balance == Decimal("1000.00") - spent
    assert account.total_spent == spent
    assert account.balance >= 0
    assert account.held == Decimal("0.00")
    assert not CreditHold.objects.filter(status=HoldStatus.ACTIVE).exists()
    assert CreditHold.objects.filter(status=HoldStatus.CAPTURED).count() == total["captured"]
    assert CreditHold.objects.filter(status=HoldStatus.RELEASED).count() == total["released"]
    assert CreditTransaction.objects.filter(kind=EntryKind.SPEND).count() == total["captured"]
    assert ledger_sum(account=account) == account.balance == lots_total(account)
    # and every spend drew by the rule, so the lots emptied in the rule's order
    left = spent
    for lot in lots:
        lot.refresh_from_db()
        taken = min(left, lot.amount)
        assert lot.remaining == lot.amount - taken
        left -= taken
    assert_ledger_consistent()


def test_concurrent_captures_of_one_hold_with_one_key_write_one_entry(five_lots):
    # given one hold, captured by 8 threads with the same key
    account, _ = five_lots
    held = credit_hold_create(account=account, amount=Decimal("50"), idempotency_key="hold")

    def capture(index):
        mine = CreditHold.objects.get(pk=held.pk)
        entry = credit_hold_capture(hold=mine, idempotency_key="capture", amount=Decimal("30"))
        return entry.pk, entry.replayed

    # when
    results, errors = run_in_threads(capture)

    # then one entry, every thread answered with it, seven as replays
    assert errors == []
    (entry,) = CreditTransaction.objects.filter(kind=EntryKind.SPEND)
    assert {pk for pk, _ in results} == {entry.pk}
    assert sorted(replayed for _, replayed in results) == [False] + [True] * (THREADS - 1)
    account.refresh_from_db()
    assert (account.balance, account.held) == (Decimal("970.00"), Decimal("0.00"))
    assert_ledger_consistent()


def test_concurrent_captures_of_one_hold_with_different_keys_capture_it_once(five_lots):
    account, _ = five_lots
    held = credit_hold_create(account=account, amount=Decimal("50"), idempotency_key="hold")

    def capture(index):
        mine = CreditHold.objects.get(pk=held.pk)
        return credit_hold_capture(hold=mine, idempotency_key=f"capture-{index}").pk

    results, errors = run_in_threads(capture)

    # one capture; the other seven were told the hold is no longer active
    assert len([pk for pk in results if pk is not None]) == 1
    assert len(errors) == THREADS - 1
    assert all(isinstance(error, HoldNotActive) for error in errors)
    assert CreditTransaction.objects.filter(kind=EntryKind.SPEND).count() == 1
    account.refresh_from_db()
    assert (account.balance, account.held) == (Decimal("950.00"), Decimal("0.00"))
    assert_ledger_consistent()


def test_captures_releases_and_the_beat_task_racing_on_the_same_holds_settle_each_once(
    five_lots,
):
    # given 20 holds of 10, and threads capturing, releasing and expiring them all at once
    account, _ = five_lots
    holds = [
        credit_hold_create(account=account, amount=Decimal("10"), idempotency_key=f"h{index}")
        for index in range(20)
    ]
    later = timezone.now() + timedelta(days=1)

    def race(index):
        outcome = Counter()
        for held in holds:
            mine = CreditHold.objects.get(pk=held.pk)
            try:
                if index % 3 == 0:
                    credit_hold_capture(hold=mine, idempotency_key=f"c{index}-{held.pk}")
                    outcome["captured"] += 1
                elif index % 3 == 1:
                    credit_hold_release(hold=mine)
                else:
                    outcome["expired"] += credit_holds_expire(now=later, limit=1)
            except HoldNotActive:
                outcome["late"] += 1
        return outcome

    # when
    _, errors = run_in_threads(race)

    # then every hold ended one way, its credits freed once
    assert errors == []
    statuses = Counter(CreditHold.objects.values_list("status", flat=True))
    assert statuses[HoldStatus.ACTIVE] == 0
    assert sum(statuses.values()) == 20
    captured = statuses[HoldStatus.CAPTURED]
    assert CreditTransaction.objects.filter(kind=EntryKind.SPEND).count() == captured
    account.refresh_from_db()
    assert account.held == Decimal("0.00")
    assert account.balance == Decimal("1000.00") - 10 * captured
    assert ledger_sum(account=account) == account.balance == lots_total(account)
    assert_ledger_consistent()


def test_concurrent_expiry_runs_and_spends_expire_each_lot_once():
    # given an account with four lots whose expiry has come and one that never expires
    account = credit_account_open(user=UserFactory())
    now = timezone.now()
    for index in range(4):
        credit_grant(
            account=account,
            amount=Decimal("50"),
            idempotency_key=f"expiring-{index}",
            expires_at=now - timedelta(minutes=index + 1),
        )
    credit_grant(account=account, amount=Decimal("300"), idempotency_key="lasting")

    # when four threads run the expiry task while four spend 1 credit at a time
    def work(index):
        mine = CreditAccount.objects.get(pk=account.pk)
        written = 0
        for attempt in range(30):
            if index % 2:
                written += len(credit_lots_expire(now=now))
            else:
                credit_spend(
                    account=mine, amount=Decimal("1"), idempotency_key=f"s{index}-{attempt}"
                )
        return written

    results, errors = run_in_threads(work)

    # then no errors; at most one expiry per lot, and every expiring lot emptied
    assert errors == []
    expiries = CreditTransaction.objects.filter(account=account, kind=EntryKind.EXPIRY)
    assert expiries.count() == sum(results)
    per_lot = Counter(expiries.values_list("allocations__lot_id", flat=True))
    assert all(count == 1 for count in per_lot.values())
    assert not CreditLot.objects.filter(
        account=account, expires_at__isnull=False, remaining__gt=0
    ).exists()
    account.refresh_from_db()
    # 120 spent, and the spends took from the expiring lots first
    assert account.total_spent == Decimal("120.00")
    expired = -sum(expiries.values_list("amount", flat=True))
    assert account.balance == Decimal("500.00") - Decimal("120.00") - expired
    assert ledger_sum(account=account) == account.balance == lots_total(account)
    assert_ledger_consistent()
