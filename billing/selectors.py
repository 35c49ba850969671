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
from django.db.models import BooleanField, Exists, ExpressionWrapper, OuterRef, Q

from billing.models import UserProfile

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
