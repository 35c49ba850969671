"""Opening credit accounts: one user's, or a whole batch's in one statement.

A user has at most one account (unique `user`), so opening is "insert unless there is one":
`credit_account_open` for a signup or a Stripe customer, `credit_accounts_open` for the
migration, which opens hundreds at a time with one INSERT ... ON CONFLICT DO NOTHING and reads
the ids back with one SELECT (the migration needs them to post its entries anyway).
"""

from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser

from core.bulk import insert_for_users
from credits.models import CreditAccount


def credit_account_open(*, user: AbstractBaseUser) -> CreditAccount:
    """Open the user's credit account, or return the one they have."""
    account, _ = CreditAccount.objects.get_or_create(user=user)
    return account


def credit_accounts_open(*, user_ids: Iterable[int]) -> dict[int, int]:
    """Open an empty account for each of these users that has none; return every one's
    account id by user id.

    Two statements whatever the number of users. Opening is not granting: no entry is written
    (a migrated user's credits arrive by their migration entry). Relies on the caller's
    transaction for the two statements to see one state.
    """
    user_ids = sorted(set(user_ids))
    if not user_ids:
        return {}
    insert_for_users(CreditAccount, user_ids)
    return dict(CreditAccount.objects.filter(user_id__any_of=user_ids).values_list("user_id", "pk"))
