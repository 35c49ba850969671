"""Reads for billing."""

from django.contrib.auth.models import AbstractBaseUser

from billing.models import UserProfile


def profile_for_user(*, user: AbstractBaseUser) -> UserProfile | None:
    return UserProfile.objects.filter(user=user).first()
