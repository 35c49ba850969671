"""Onboarding onto the credit system: `user_signup` and `user_provision`.

A signup gets a profile, a credit account and the signup grant once; a user who arrives by
migration gets no grant (their credits come from legacy billing); a failed signup leaves nothing.
"""

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError

from billing.models import UserProfile
from billing.services import SIGNUP_SOURCE, user_provision, user_signup
from core.keys import signup_grant_key
from credits.exceptions import InvalidAmount
from credits.models import CreditAccount, CreditTransaction, EntryKind
from credits.selectors import ledger_sum
from credits.services import credit_spend
from tests.factories import UserFactory

User = get_user_model()

pytestmark = pytest.mark.django_db


def row_counts():
    return (
        User.objects.count(),
        UserProfile.objects.count(),
        CreditAccount.objects.count(),
        CreditTransaction.objects.count(),
    )


# --- user_signup --------------------------------------------------------------------------


def test_signup_gives_profile_account_and_signup_grant():
    # when
    user = user_signup(email="new@example.com", password="correct horse battery")

    # then
    user.refresh_from_db()
    assert user.username == "new@example.com"
    assert user.email == "new@example.com"
    assert user.check_password("correct horse battery")
    profile = UserProfile.objects.get(user=user)
    assert profile.plan == "free"
    assert profile.migration_completed_at is not None
    assert profile.is_legacy_settled
    account = CreditAccount.objects.get(user=user)
    assert account.balance == Decimal("20.00")
    assert account.total_earned == Decimal("20.00")
    assert account.total_spent == Decimal("0.00")
    grant = account.entries.get()
    assert grant.kind == EntryKind.GRANT
    assert grant.amount == Decimal("20.00")
    assert grant.balance_before == Decimal("0.00")
    assert grant.balance_after == Decimal("20.00")
    assert grant.source == SIGNUP_SOURCE
    assert grant.idempotency_key == signup_grant_key(user_id=user.pk)
    assert ledger_sum(account=account) == Decimal("20.00")


def test_signup_takes_an_explicit_username_and_extra_fields():
    # when
    user = user_signup(email="ann@example.com", password=None, username="ann", first_name="Ann")

    # then
    user.refresh_from_db()
    assert (user.username, user.email, user.first_name) == ("ann", "ann@example.com", "Ann")
    assert not user.has_usable_password()
    account = CreditAccount.objects.get(user=user)
    assert account.balance == Decimal("20.00")


def test_signup_grant_is_given_once_even_when_provisioned_again():
    # given
    user = user_signup(email="again@example.com", password=None)
    profile = UserProfile.objects.get(user=user)

    # when
    again = user_provision(user=user, signup_grant=True)
    user_provision(user=user, signup_grant=True)

    # then
    assert again.pk == profile.pk
    assert UserProfile.objects.filter(user=user).count() == 1
    assert CreditAccount.objects.filter(user=user).count() == 1
    account = CreditAccount.objects.get(user=user)
    assert account.balance == Decimal("20.00")
    assert account.total_earned == Decimal("20.00")
    assert account.entries.count() == 1


def test_provisioning_again_after_spending_does_not_top_up():
    # given
    user = user_signup(email="spender@example.com", password=None)
    account = CreditAccount.objects.get(user=user)
    credit_spend(account=account, amount=Decimal("12.34"), idempotency_key="usage-1")

    # when
    user_provision(user=user, signup_grant=True)

    # then
    account.refresh_from_db()
    assert account.balance == Decimal("7.66")
    assert account.total_earned == Decimal("20.00")
    assert account.total_spent == Decimal("12.34")
    assert account.entries.count() == 2


def test_signup_grant_follows_the_setting(settings):
    # given
    settings.CREDITS_SIGNUP_GRANT = Decimal("35.50")

    # when
    user = user_signup(email="generous@example.com", password=None)

    # then
    account = CreditAccount.objects.get(user=user)
    assert account.balance == Decimal("35.50")
    assert account.entries.get().amount == Decimal("35.50")


def test_signup_grant_of_zero_gives_none(settings):
    # given
    settings.CREDITS_SIGNUP_GRANT = Decimal("0")

    # when
    user = user_signup(email="nogrant@example.com", password=None)

    # then: still onboarded, with an empty account
    profile = UserProfile.objects.get(user=user)
    assert profile.migration_completed_at is not None
    account = CreditAccount.objects.get(user=user)
    assert account.balance == Decimal("0.00")
    assert account.total_earned == Decimal("0.00")
    assert account.entries.count() == 0


# --- user_provision for users who arrive by migration -------------------------------------


def test_provision_without_signup_grant_gives_no_credits_and_is_not_migrated():
    # given
    user = UserFactory()

    # when
    profile = user_provision(user=user, signup_grant=False)

    # then
    profile.refresh_from_db()
    assert profile.user_id == user.pk
    assert profile.migration_completed_at is None
    assert not profile.is_legacy_settled
    account = CreditAccount.objects.get(user=user)
    assert account.balance == Decimal("0.00")
    assert account.total_earned == Decimal("0.00")
    assert account.entries.count() == 0
    assert not CreditTransaction.objects.filter(
        idempotency_key=signup_grant_key(user_id=user.pk)
    ).exists()


def test_provision_without_signup_grant_is_repeatable():
    # given
    user = UserFactory()
    first = user_provision(user=user, signup_grant=False)

    # when
    second = user_provision(user=user, signup_grant=False)

    # then
    assert second.pk == first.pk
    second.refresh_from_db()
    assert second.migration_completed_at is None
    assert CreditAccount.objects.filter(user=user).count() == 1
    assert CreditTransaction.objects.filter(account__user=user).count() == 0


def test_a_user_who_arrived_by_migration_never_gets_the_signup_grant_later():
    # given a user provisioned the migration way
    user = UserFactory()
    user_provision(user=user, signup_grant=False)

    # when some later code path provisions them as if they had signed up
    profile = user_provision(user=user, signup_grant=True)

    # then they still have no signup grant and are still not migrated
    assert CreditTransaction.objects.filter(account__user=user).count() == 0
    profile.refresh_from_db()
    assert profile.migration_completed_at is None


# --- a failed signup leaves nothing behind ------------------------------------------------


def test_signup_with_taken_username_leaves_no_user_behind():
    # given
    taken = user_signup(email="taken@example.com", password=None)
    before = row_counts()

    # when
    with pytest.raises(IntegrityError):
        user_signup(email="other@example.com", password=None, username=taken.username)

    # then
    assert row_counts() == before
    assert not User.objects.filter(email="other@example.com").exists()
    account = CreditAccount.objects.get(user=taken)
    assert account.balance == Decimal("20.00")


def test_signup_failing_after_the_user_was_created_rolls_everything_back(settings):
    # given: a grant the ledger refuses (3 decimal places), so the failure comes after the
    # user, profile and account rows were already written inside the signup
    settings.CREDITS_SIGNUP_GRANT = Decimal("0.001")
    before = row_counts()

    # when
    with pytest.raises(InvalidAmount):
        user_signup(email="halfway@example.com", password=None)

    # then
    assert row_counts() == before
    assert not User.objects.filter(username="halfway@example.com").exists()
