"""Writers for billing: a user's onboarding onto the credit system."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from billing.models import UserProfile
from credits.services import credit_account_open, credit_grant

SIGNUP_SOURCE = "signup"


def signup_grant_key(user: AbstractBaseUser) -> str:
    return f"signup:{user.pk}"


def user_provision(*, user: AbstractBaseUser, signup_grant: bool) -> UserProfile:
    """Give a user a profile and a credit account, and the signup grant when asked.

    Safe to call again: the profile and account are reused, and the grant comes only with the
    profile's creation (and under an idempotency key), so it is given at most once and never
    later to a user first provisioned without it. Users who arrive by migration are
    provisioned with `signup_grant=False`: their credits come from their legacy billing.
    """
    with transaction.atomic():
        profile, created = UserProfile.objects.get_or_create(
            user=user, defaults={"migration_completed_at": timezone.now() if signup_grant else None}
        )
        account = credit_account_open(user=user)
        amount = settings.CREDITS_SIGNUP_GRANT
        if created and signup_grant and amount > 0:
            credit_grant(
                account=account,
                amount=amount,
                idempotency_key=signup_grant_key(user),
                source=SIGNUP_SOURCE,
                description="Welcome credits",
            )
    return profile


def user_signup(*, email: str, password: str | None, **extra_fields) -> AbstractBaseUser:
    """Create a user with their profile, credit account and signup grant, all or nothing."""
    user_model = get_user_model()
    with transaction.atomic(durable=True):
        username = extra_fields.pop("username", None) or email
        user = user_model.objects.create_user(
            username=username, email=email, password=password, **extra_fields
        )
        user_provision(user=user, signup_grant=True)
    return user
