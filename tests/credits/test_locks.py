"""credits.locks: every lock on credits' tables, taken in primary-key order, so two writers that
lock the same rows queue instead of deadlocking (Saleor's lock_objects.py)."""

import threading
import time
from decimal import Decimal

import pytest
from django.db import DatabaseError, connection, transaction

from credits.locks import account_lock, accounts_lock, approval_request_lock
from credits.models import CreditAccount, CreditApprovalRequest
from credits.services import credit_account_open, credit_grant
from tests.factories import UserFactory


def open_accounts(count: int) -> list[CreditAccount]:
    return [credit_account_open(user=UserFactory()) for _ in range(count)]


@pytest.mark.django_db
def test_accounts_lock_is_ordered_by_pk_and_locks_only_the_accounts_rows():
    # given
    first, _unlocked, third = open_accounts(3)
    # when
    locked = accounts_lock(account_ids=[third.pk, first.pk, third.pk])
    # then
    assert locked.query.order_by == ("pk",)
    assert locked.query.select_for_update is True
    assert locked.query.select_for_update_of == ("self",)
    assert locked.query.select_for_update_nowait is False
    with transaction.atomic():
        assert [account.pk for account in locked] == [first.pk, third.pk]


@pytest.mark.django_db
def test_account_lock_returns_the_account_as_it_stands():
    # given: a stale copy of an account
    (account,) = open_accounts(1)
    stale = CreditAccount.objects.get(pk=account.pk)
    credit_grant(account=account, amount=Decimal("5"), idempotency_key="lock-fresh")
    # when
    with transaction.atomic():
        locked = account_lock(account_id=stale.pk)
    # then
    assert stale.balance == Decimal("0.00")
    assert locked.balance == Decimal("5.00")


@pytest.mark.django_db
def test_approval_request_lock_of_no_such_request_raises_does_not_exist():
    with transaction.atomic(), pytest.raises(CreditApprovalRequest.DoesNotExist):
        approval_request_lock(approval_id=2**62)


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_locking_statement_orders_by_pk_and_locks_of_self():
    # given
    first, second = open_accounts(2)
    # when
    sql = str(accounts_lock(account_ids=[second.pk, first.pk]).query)
    # then
    table = CreditAccount._meta.db_table
    assert sql.endswith(f'ORDER BY "{table}"."id" ASC FOR UPDATE OF "{table}"'), sql


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_locked_account_cannot_be_locked_by_another_connection_until_the_commit():
    # given
    first, second = open_accounts(2)
    held, checked = threading.Event(), threading.Event()
    errors = []

    def holder():
        try:
            with transaction.atomic():
                list(accounts_lock(account_ids=[first.pk, second.pk]))
                held.set()
                checked.wait(timeout=10)
        except Exception as error:  # reported by the test
            errors.append(error)
        finally:
            connection.close()

    thread = threading.Thread(target=holder)
    thread.start()
    assert held.wait(timeout=10)
    # when: this connection asks for one of the rows without waiting
    try:
        with pytest.raises(DatabaseError), transaction.atomic():
            CreditAccount.objects.select_for_update(nowait=True).get(pk=second.pk)
    finally:
        checked.set()
        thread.join()
    # then: free again after the holder's commit
    with transaction.atomic():
        assert account_lock(account_id=second.pk).pk == second.pk
    assert errors == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_writers_locking_the_same_accounts_in_opposite_orders_never_deadlock():
    # given: two threads that lock the same two accounts, 40 times each, one in each order,
    # holding the locks a moment each time so their transactions overlap
    first, second = open_accounts(2)
    orders = [[first.pk, second.pk], [second.pk, first.pk]]
    barrier = threading.Barrier(2)
    done, errors = [0, 0], []

    def writer(index):
        try:
            barrier.wait()
            for _ in range(40):
                with transaction.atomic():
                    locked = list(accounts_lock(account_ids=orders[index]))
                    time.sleep(0.002)
                assert [account.pk for account in locked] == sorted(orders[index])
                done[index] += 1
        except Exception as error:  # a deadlock would be an OperationalError here
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(index,)) for index in range(2)]
    # when
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then
    assert errors == []
    assert done == [40, 40]
