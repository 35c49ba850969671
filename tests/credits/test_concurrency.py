"""Concurrent writers on PostgreSQL: real threads, each with its own connection.

The conditional UPDATE in `credits.services` is what keeps these exact; a read-then-write
service would lose updates or overdraw here. Each test runs on both write paths
(`write_path`): PostgreSQL's one-statement fast path and the portable one.
"""

import itertools
from collections import Counter
from decimal import Decimal

import pytest

from credits.exceptions import InsufficientCredits
from credits.models import CreditAccount, CreditTransaction, EntryKind
from credits.selectors import ledger_sum
from credits.services import credit_account_open, credit_grant, credit_spend
from tests.factories import UserFactory
from tests.helpers import run_in_threads

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("write_path"),
]


@pytest.fixture
def account_with_1000():
    account = credit_account_open(user=UserFactory())
    credit_grant(account=account, amount=Decimal("1000"), idempotency_key="fund-1000")
    return account


def test_concurrent_spends_never_lose_an_update_nor_overdraw(account_with_1000):
    # given 8 threads that each try to spend 1 credit 200 times (1600 tries for 1000 credits)
    def spend_200(index):
        outcome = Counter()
        account = CreditAccount.objects.get(pk=account_with_1000.pk)
        for attempt in range(200):
            try:
                credit_spend(
                    account=account, amount=Decimal("1"), idempotency_key=f"t{index}-{attempt}"
                )
                outcome["ok"] += 1
            except InsufficientCredits:
                outcome["insufficient"] += 1
        return outcome

    # when
    results, errors = run_in_threads(spend_200)

    # then
    assert errors == []
    total = sum(results, Counter())
    assert total == Counter(ok=1000, insufficient=600)
    account_with_1000.refresh_from_db()
    assert account_with_1000.balance == Decimal("0.00")
    assert account_with_1000.total_spent == Decimal("1000.00")
    assert ledger_sum(account=account_with_1000) == Decimal("0.00")
    assert CreditTransaction.objects.filter(kind=EntryKind.SPEND).count() == 1000


def test_concurrent_replays_of_one_key_write_one_entry(account_with_1000):
    # given 8 threads sending the same spend with the same key, several times each
    def replay(index):
        account = CreditAccount.objects.get(pk=account_with_1000.pk)
        return {
            credit_spend(account=account, amount=Decimal("7.50"), idempotency_key="one-key").pk
            for _ in range(5)
        }

    # when
    results, errors = run_in_threads(replay)

    # then exactly one entry exists and every call answered with it
    assert errors == []
    entries = CreditTransaction.objects.filter(idempotency_key="one-key")
    assert entries.count() == 1
    assert set().union(*results) == {entries.get().pk}
    account_with_1000.refresh_from_db()
    assert account_with_1000.balance == Decimal("992.50")
    assert ledger_sum(account=account_with_1000) == Decimal("992.50")


def test_concurrent_replays_that_take_the_whole_balance_are_still_replays():
    # given an account holding exactly the amount: losers of the race must see a replay,
    # not "insufficient credits"
    account = credit_account_open(user=UserFactory())
    credit_grant(account=account, amount=Decimal("5"), idempotency_key="fund-5")

    def replay(index):
        mine = CreditAccount.objects.get(pk=account.pk)
        return credit_spend(account=mine, amount=Decimal("5"), idempotency_key="all-of-it").pk

    results, errors = run_in_threads(replay)

    assert errors == []
    assert len(set(results)) == 1
    account.refresh_from_db()
    assert account.balance == Decimal("0.00")


def test_concurrent_grants_and_spends_on_one_account_add_up():
    # given
    account = credit_account_open(user=UserFactory())
    credit_grant(account=account, amount=Decimal("100"), idempotency_key="fund-100")

    def mixed(index):
        mine = CreditAccount.objects.get(pk=account.pk)
        for attempt in range(50):
            if index % 2:
                credit_grant(
                    account=mine, amount=Decimal("0.10"), idempotency_key=f"g{index}-{attempt}"
                )
            else:
                credit_spend(
                    account=mine, amount=Decimal("0.10"), idempotency_key=f"s{index}-{attempt}"
                )

    # when
    _, errors = run_in_threads(mixed)

    # then 4 threads granted 5.00 each and 4 spent 5.00 each
    assert errors == []
    account.refresh_from_db()
    assert account.balance == Decimal("100.00")
    assert account.total_earned == Decimal("120.00")
    assert account.total_spent == Decimal("20.00")
    assert ledger_sum(account=account) == Decimal("100.00")


def test_concurrent_spends_across_overlapping_accounts_stay_exact():
    # given 3 accounts of 100 credits and 8 threads, each spending from all three in its own
    # order, so the threads contend on every account at once
    accounts = [credit_account_open(user=UserFactory()) for _ in range(3)]
    for account in accounts:
        credit_grant(account=account, amount=Decimal("100"), idempotency_key=f"f{account.pk}")

    def spend_across(index):
        mine = [CreditAccount.objects.get(pk=account.pk) for account in accounts]
        outcome = Counter()
        for attempt in range(60):
            account = mine[(index + attempt) % 3]
            try:
                credit_spend(
                    account=account, amount=Decimal("1"), idempotency_key=f"x{index}-{attempt}"
                )
                outcome[account.pk] += 1
            except InsufficientCredits:
                outcome["insufficient"] += 1
        return outcome

    # when 480 tries for 300 credits
    results, errors = run_in_threads(spend_across)

    # then no error (no deadlock), every account emptied exactly, entries chained
    assert errors == []
    total = sum(results, Counter())
    assert total["insufficient"] == 180
    for account in accounts:
        account.refresh_from_db()
        assert total[account.pk] == 100
        assert account.balance == Decimal("0.00") == ledger_sum(account=account)
        entries = list(CreditTransaction.objects.filter(account=account).order_by("pk"))
        for before, after in itertools.pairwise(entries):
            assert after.balance_before == before.balance_after
