"""Debits of one account written together (credits.services.posting.combining, PostgreSQL's
fast path): threads of one process that spend from one account at the same moment share one
call of credits_post_debits and one commit, and each gets what it would have had alone.

The first tests call credits_post_debits itself with a known list and compare it with the
same debits written one by one on a twin account; the rest use real threads, each with its
own connection, and tell that calls were combined by the entries' transaction ids (`xmin`).
"""

import threading
import time
from collections import Counter
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.utils import timezone

from credits.exceptions import IdempotencyConflict, InsufficientCredits
from credits.models import CreditAccount, CreditAllocation, CreditLot, CreditTransaction
from credits.services import credit_account_open, credit_grant, credit_spend
from credits.services.posting import combining, postgresql
from credits.services.posting.entry import Entry
from tests.factories import UserFactory
from tests.helpers import assert_ledger_consistent, run_in_threads

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _fast_path_combining(settings):
    settings.CREDITS_POSTGRESQL_FAST_PATH = True
    settings.CREDITS_COMBINE_DEBITS = True


def account_with_lots():
    """An account of 3 promotional credits expiring soon, then 10 paid ones: a draw of more
    than 3 crosses from the first lot to the second."""
    account = credit_account_open(user=UserFactory())
    credit_grant(
        account=account,
        amount=Decimal("3"),
        idempotency_key=f"promo-{account.pk}",
        category="promotional",
        expires_at=timezone.now() + timedelta(days=3),
    )
    credit_grant(
        account=account,
        amount=Decimal("10"),
        idempotency_key=f"paid-{account.pk}",
        kind="purchase",
    )
    return account


def spend_params(account, amount, key):
    entry = Entry(
        account=account,
        kind="spend",
        amount=-Decimal(amount),
        requested=-Decimal(amount),
        idempotency_key=key,
        earned_delta=Decimal(0),
        spent_delta=Decimal(amount),
        fields={},
    )
    return postgresql.debit_params(entry, postgresql._row_values(entry, timezone.now()))


def drawn(account):
    """Per spend entry in ledger order: its amount, balance_after, and (lot category, amount)
    of each allocation."""
    return [
        (
            entry.amount,
            entry.balance_after,
            sorted(
                CreditAllocation.objects.filter(entry=entry).values_list("lot__category", "amount")
            ),
        )
        for entry in CreditTransaction.objects.filter(account=account, kind="spend").order_by("id")
    ]


def lots_of(account):
    return list(
        CreditLot.objects.filter(account=account).order_by("id").values_list("remaining", flat=True)
    )


def test_one_call_writes_what_the_same_debits_one_by_one_write():
    # given twin accounts, and a list of debits: some cross a lot boundary, one is too big,
    # one repeats an earlier key of the list
    together, alone = account_with_lots(), account_with_lots()
    plan = [("2", "a"), ("2", "b"), ("50", "c"), ("2", "a"), ("4", "d"), ("1", "e")]

    # when the list is one call on one account, and one call per debit on the other
    rows = postgresql.write_debits(
        connection,
        combining.arrays(
            together.pk,
            [spend_params(together, amount, f"t-{key}") for amount, key in plan],
        ),
    )
    outcomes = []
    for amount, key in plan:
        try:
            credit_spend(account=alone, amount=Decimal(amount), idempotency_key=f"a-{key}")
            outcomes.append("written")
        except InsufficientCredits:
            outcomes.append("refused")

    # then each item says what happened to it, as it would have alone
    by_item = sorted(rows)
    assert [item for item, *_ in by_item] == [1, 2, 3, 4, 5, 6]
    assert [
        "duplicate" if duplicate else "refused" if entry is None else "written"
        for _, entry, _, _, _, duplicate in by_item
    ] == ["written", "written", "refused", "duplicate", "written", "written"]
    assert outcomes == ["written", "written", "refused", "written", "written", "written"]
    # (alone, the repeated key is a replay: the same entry, nothing moved)
    assert CreditTransaction.objects.filter(account=alone, kind="spend").count() == 4
    # the balances each item returns are the running balance, item by item
    assert [balance for _, _, balance, *_ in by_item] == [
        Decimal("11.00"),
        Decimal("9.00"),
        None,
        None,
        Decimal("5.00"),
        Decimal("4.00"),
    ]
    # and the entries, their allocations, the lots and the account match the one-by-one twin
    assert (
        drawn(together)
        == drawn(alone)
        == [
            (Decimal("-2.00"), Decimal("11.00"), [("promotional", Decimal("2.00"))]),
            (
                Decimal("-2.00"),
                Decimal("9.00"),
                [("paid", Decimal("1.00")), ("promotional", Decimal("1.00"))],
            ),
            (Decimal("-4.00"), Decimal("5.00"), [("paid", Decimal("4.00"))]),
            (Decimal("-1.00"), Decimal("4.00"), [("paid", Decimal("1.00"))]),
        ]
    )
    assert lots_of(together) == lots_of(alone) == [Decimal("0.00"), Decimal("4.00")]
    together.refresh_from_db()
    alone.refresh_from_db()
    assert (together.balance, together.total_spent) == (alone.balance, alone.total_spent)
    assert_ledger_consistent()


def test_a_call_whose_lots_hold_less_than_its_entries_raises_and_moves_nothing():
    # given an account whose lots were emptied behind the ledger's back (a broken database)
    account = account_with_lots()
    CreditLot.objects.filter(account=account).update(remaining=Decimal("1"))
    before = lots_of(account)

    # when a call would draw more than the lots hold
    with pytest.raises(Exception, match="lots of account"):
        postgresql.write_debits(
            connection,
            combining.arrays(
                account.pk, [spend_params(account, "2", "x1"), spend_params(account, "2", "x2")]
            ),
        )

    # then nothing of it was written
    assert not CreditTransaction.objects.filter(account=account, kind="spend").exists()
    assert lots_of(account) == before
    account.refresh_from_db()
    assert account.balance == Decimal("13.00")


def _entry_transactions(account) -> tuple[int, int]:
    """(spend entries, distinct transactions that wrote them) of the account."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), count(DISTINCT xmin::text) FROM credits_credittransaction"
            " WHERE account_id = %s AND kind = 'spend'",
            [account.pk],
        )
        return cursor.fetchone()


def _spend_from(account_pk, key_prefix, tries, amount="1"):
    def work(index):
        outcome = Counter()
        account = CreditAccount.objects.get(pk=account_pk)
        for attempt in range(tries):
            try:
                credit_spend(
                    account=account,
                    amount=Decimal(amount),
                    idempotency_key=f"{key_prefix}-{index}-{attempt}",
                )
                outcome["ok"] += 1
            except InsufficientCredits:
                outcome["refused"] += 1
        return outcome

    return work


def test_threads_on_one_account_share_calls_and_never_overdraw():
    # given 50 credits and 8 threads that try 10 spends of 1 each (80 tries)
    account = credit_account_open(user=UserFactory())
    credit_grant(account=account, amount=Decimal("50"), idempotency_key="fund-50")

    # when
    results, errors = run_in_threads(_spend_from(account.pk, "hot", 10))

    # then exactly 50 were written, the rest refused, and spends shared transactions
    assert errors == []
    assert sum(results, Counter()) == Counter(ok=50, refused=30)
    entries, transactions = _entry_transactions(account)
    assert entries == 50
    assert transactions < entries
    account.refresh_from_db()
    assert (account.balance, account.total_spent) == (Decimal("0.00"), Decimal("50.00"))
    assert_ledger_consistent()


def test_with_combining_off_every_spend_is_its_own_transaction(settings):
    settings.CREDITS_COMBINE_DEBITS = False
    account = credit_account_open(user=UserFactory())
    credit_grant(account=account, amount=Decimal("100"), idempotency_key="fund-100")

    _, errors = run_in_threads(_spend_from(account.pk, "off", 5))

    assert errors == []
    assert _entry_transactions(account) == (40, 40)
    assert_ledger_consistent()


def test_threads_replaying_one_key_get_one_entry_and_a_conflict_is_refused():
    # given 8 threads that send the same spend with one key, and one that reuses the key for
    # another amount
    account = credit_account_open(user=UserFactory())
    credit_grant(account=account, amount=Decimal("100"), idempotency_key="fund-100")

    def work(index):
        mine = CreditAccount.objects.get(pk=account.pk)
        amount = Decimal("9.00") if index == 7 else Decimal("2.50")
        try:
            return credit_spend(account=mine, amount=amount, idempotency_key="the-key").pk
        except IdempotencyConflict:
            return "conflict"

    # when
    results, errors = run_in_threads(work)

    # then one entry exists; every call answered with it, or (the other amount) a conflict
    assert errors == []
    entry = CreditTransaction.objects.get(idempotency_key="the-key")
    assert set(results) <= {entry.pk, "conflict"}
    assert results.count(entry.pk) >= 7
    account.refresh_from_db()
    assert account.balance == Decimal("100") + entry.amount
    assert_ledger_consistent()


def test_a_failed_call_leaves_each_thread_to_write_alone():
    """A combined call fails when a key it writes is committed by another transaction while
    the call waits on it: here key K, spent on another account B by a transaction that stays
    open. The account A's row lock is held meanwhile by a third connection, so that all the
    threads' spends queue behind a first one and then go as one call, which includes K."""
    a = credit_account_open(user=UserFactory())
    credit_grant(account=a, amount=Decimal("100"), idempotency_key="fund-a")
    b = credit_account_open(user=UserFactory())
    credit_grant(account=b, amount=Decimal("100"), idempotency_key="fund-b")
    ready = threading.Barrier(3, timeout=30)
    lock_released, key_committed = threading.Event(), threading.Event()

    def hold_a_then_release():
        try:
            with transaction.atomic():
                CreditAccount.objects.select_for_update().get(pk=a.pk)
                ready.wait()
                time.sleep(0.6)
            lock_released.set()
        finally:
            connection.close()

    def spend_k_on_b_then_commit():
        try:
            with transaction.atomic():
                credit_spend(
                    account=CreditAccount.objects.get(pk=b.pk),
                    amount=Decimal("5"),
                    idempotency_key="K",
                )
                ready.wait()
                lock_released.wait(30)
                time.sleep(0.5)
            key_committed.set()
        finally:
            connection.close()

    others = [
        threading.Thread(target=hold_a_then_release),
        threading.Thread(target=spend_k_on_b_then_commit),
    ]
    for thread in others:
        thread.start()
    ready.wait()

    def work(index):
        mine = CreditAccount.objects.get(pk=a.pk)
        if index == 0:
            time.sleep(0.3)  # after the first spend took the lead and waits on A's lock
            try:
                credit_spend(account=mine, amount=Decimal("5"), idempotency_key="K")
            except IdempotencyConflict:
                return "conflict"
            return "written"
        return credit_spend(account=mine, amount=Decimal("1"), idempotency_key=f"f-{index}").pk

    # when
    with _failed_calls() as failed:
        results, errors = run_in_threads(work)
    for thread in others:
        thread.join()

    # then the call that held K failed, and each of its spends was then written alone: K is
    # B's entry (A's spend of K a conflict), every other spend was written once
    assert errors == []
    assert key_committed.is_set()
    assert failed and max(failed) > 1
    assert results[0] == "conflict"
    assert CreditTransaction.objects.get(idempotency_key="K").account_id == b.pk
    assert CreditTransaction.objects.filter(account=a, kind="spend").count() == 7
    a.refresh_from_db()
    assert a.balance == Decimal("93.00")
    assert_ledger_consistent()


@contextmanager
def _failed_calls():
    """The sizes of the combined calls that raised meanwhile (seen at the module's boundary
    with the database: write_debits, as combining calls it)."""
    failed = []
    real = postgresql.write_debits

    def watched(db, arrays):
        try:
            return real(db, arrays)
        except Exception:
            failed.append(len(arrays["idempotency_key"]))
            raise

    postgresql.write_debits = watched
    try:
        yield failed
    finally:
        postgresql.write_debits = real
