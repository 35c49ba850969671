"""credit_accounts_open: the migration opens a batch's accounts in two statements, and opening
writes no entry."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from credits.models import CreditAccount, CreditTransaction
from credits.services import credit_account_open, credit_accounts_open
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_opens_an_empty_account_for_each_user_without_one_and_returns_every_id():
    # given
    new, other = UserFactory(), UserFactory()
    holder = UserFactory()
    existing = credit_account_open(user=holder)
    # when
    with CaptureQueriesContext(connection) as queries:
        accounts = credit_accounts_open(user_ids=[new.pk, holder.pk, other.pk, new.pk])
    # then
    assert len(queries) == 2  # one INSERT, one SELECT of the ids
    assert set(accounts) == {new.pk, holder.pk, other.pk}
    assert accounts[holder.pk] == existing.pk
    for user in (new, other):
        account = CreditAccount.objects.get(user=user)
        assert accounts[user.pk] == account.pk
        assert (account.balance, account.total_earned, account.total_spent) == (0, 0, 0)
    assert CreditAccount.objects.count() == 3
    assert CreditTransaction.objects.count() == 0


def test_opening_again_changes_nothing_and_opening_for_nobody_asks_nothing():
    # given
    user = UserFactory()
    first = credit_accounts_open(user_ids=[user.pk])
    before = list(CreditAccount.objects.values())
    # when
    again = credit_accounts_open(user_ids=[user.pk])
    with CaptureQueriesContext(connection) as queries:
        nobody = credit_accounts_open(user_ids=[])
    # then
    assert again == first
    assert list(CreditAccount.objects.values()) == before
    assert nobody == {}
    assert len(queries) == 0


def test_the_single_account_opener_returns_the_same_account():
    # given
    user = UserFactory()
    (account_id,) = credit_accounts_open(user_ids=[user.pk]).values()
    # when
    account = credit_account_open(user=user)
    # then
    assert account.pk == account_id
    assert CreditAccount.objects.filter(user=user).count() == 1
