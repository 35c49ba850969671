"""Reads for billing.

"Migrated" means migrated by a source: a `UserMigration` of the user COMPLETED, and nothing of
their legacy billing left pending (`UserProfile.migration_completed_at`). The profile's date
alone does not say it: a signup gets it too (it has nothing to migrate, so monthly grants
reach it) and was migrated by nothing. `UserMigration` belongs to migrations_app, which depends
on billing and never the reverse, so migrations_app hands billing the condition when it loads
(`migrated_by_source_register`, from its AppConfig.ready); without it nobody is migrated.
"""

from collections.abc import Callable

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import DEFAULT_DB_ALIAS
from django.db.models import BooleanField, Exists, ExpressionWrapper, F, OuterRef, Q
from rest_framework.authtoken.models import Token

from billing.models import UserProfile
from core.compiled import CompiledQuery
from credits.selectors import next_expiry

# Given an OuterRef to a user's id: an Exists() of a COMPLETED migration of that user.
SourceCompleted = Callable[[OuterRef], Exists]
_source_completed: SourceCompleted | None = None


def migrated_by_source_register(*, source_completed: SourceCompleted) -> None:
    """Tell billing how to ask whether a source completed a user's migration."""
    global _source_completed
    _source_completed = source_completed


def migrated_q(*, user_path: str = "") -> Q:
    """A filter for rows whose user (at `user_path`, "" for the user model) a source migrated."""
    if _source_completed is None:
        return Q(pk__in=[])
    prefix = f"{user_path}__" if user_path else ""
    user_id = OuterRef(f"{user_path}_id" if user_path else "pk")
    return Q(**{f"{prefix}profile__migration_completed_at__isnull": False}) & Q(
        _source_completed(user_id)
    )


def migrated_expression(*, user_path: str = "") -> ExpressionWrapper:
    """`migrated_q` as a boolean to annotate a queryset with."""
    return ExpressionWrapper(migrated_q(user_path=user_path), output_field=BooleanField())


def profile_for_user(*, user: AbstractBaseUser) -> UserProfile | None:
    return UserProfile.objects.filter(user=user).first()


def user_is_migrated(*, user: AbstractBaseUser) -> bool:
    """Whether a source migrated this user (a signup never is)."""
    return get_user_model().objects.filter(migrated_q(), pk=user.pk).exists()


def _figures(user_path: str = "") -> dict:
    """The balance's columns for a query whose user is at `user_path` ("" for the user)."""
    prefix = f"{user_path}__" if user_path else ""
    account = f"{prefix}credit_account__"
    expiring_at, expiring_amount = next_expiry(account_ref=OuterRef(f"{account}id"))
    return {
        "balance": F(f"{account}balance"),
        "total_earned": F(f"{account}total_earned"),
        "total_spent": F(f"{account}total_spent"),
        "held": F(f"{account}held"),
        "updated_at": F(f"{account}updated_at"),
        "plan": F(f"{prefix}profile__plan"),
        "migrated": migrated_expression(user_path=user_path),
        "expiring_at": expiring_at,
        "expiring_amount": expiring_amount,
    }


def _user_columns() -> dict:
    """Every column of the token's user, as `token_user_<attname>`, to build the user from."""
    return {
        f"token_user_{field.attname}": F(f"user__{field.attname}")
        for field in get_user_model()._meta.concrete_fields
    }


# Sentinels compiled into the statements and swapped for the real value on every call: a
# user id no row has (ids are positive) and a key no token has (keys are 40 hex digits).
_BALANCE_FIGURES = CompiledQuery(
    lambda user_id: get_user_model().objects.filter(pk=user_id).values(**_figures()),
    user_id=-7_340_021,
)
_TOKEN_AND_BALANCE_FIGURES = CompiledQuery(
    lambda key: Token.objects.filter(key=key).values(
        **_user_columns(), **_figures(user_path="user")
    ),
    key="not a token: compiled-query sentinel",
)


def balance_figures(*, user_id: int) -> dict | None:
    """What the balance API shows, in one query: the account's figures (None where the user
    has no account), the plan (None without a profile), whether a source migrated the user,
    and the next expiry (`expiring_at`, `expiring_amount`; None when nothing expires).
    None when no such user exists.

    The balance is the most requested read, so it is one statement, compiled once and, on
    PostgreSQL, prepared once per connection (core.compiled): the user row LEFT JOINs the
    account and the profile (both one-to-one), and the rest are correlated subqueries on the
    account's indexes."""
    return _BALANCE_FIGURES.first(user_id=user_id)


def token_user_and_balance_figures(*, key: str) -> tuple[AbstractBaseUser, dict] | None:
    """The user of the API token `key` with `balance_figures` of that user, in one statement
    (token authentication and the balance share the request's one round trip); None when no
    token has this key."""
    row = _TOKEN_AND_BALANCE_FIGURES.first(key=key)
    if row is None:
        return None
    user_model = get_user_model()
    attnames = [field.attname for field in user_model._meta.concrete_fields]
    user = user_model.from_db(
        DEFAULT_DB_ALIAS, attnames, [row.pop(f"token_user_{attname}") for attname in attnames]
    )
    return user, row
