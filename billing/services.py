"""Writers for billing: a user's onboarding onto the credit system, the profiles' writes of
the migration, and monthly plan grants.

The migration moves hundreds of users a batch, so its profile writes are set-based: one
statement for a batch whatever its size (`profiles_open`, `profiles_sync`,
`profiles_mark_migrated`). They rely on the caller's transaction (the batch's) and decide
nothing: the migration says which users and which values, billing writes them.

Monthly grants are keyed on (account, period), a period being a calendar month in UTC
("2026-11"). The Celery beat task and a paid subscription invoice (billing.stripe.services) use
the same key, so whichever comes first grants the month and the other grants nothing. Either way
the credits are a `monthly` lot that expires when the period ends (`period_end`: 00:00 UTC on
the 1st of the next month), unless CREDITS_MONTHLY_ROLLOVER_CAP keeps some of it a month more.
"""

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from billing.models import UserProfile
from core.bulk import insert_for_users, update_rows
from core.keys import monthly_grant_key, signup_grant_key
from credits.models import CreditAccount, CreditTransaction, EntryKind
from credits.services import BatchEntry, credit_account_open, credit_grant, credit_post_batch

SIGNUP_SOURCE = "signup"


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
                idempotency_key=signup_grant_key(user_id=user.pk),
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


# --- Profiles of migrated users -------------------------------------------------------------


def profiles_open(*, user_ids: Iterable[int]) -> None:
    """Give each of these users that has none a new profile, in one statement.

    A profile opened here is not marked migrated: `profiles_mark_migrated` does that once every
    source with data for the user is done.
    """
    insert_for_users(UserProfile, sorted(set(user_ids)))


def profiles_sync(*, updates: dict[int, dict[str, Any]]) -> None:
    """Set these profile fields, user by user ({user_id: {field: value}}), in one UPDATE.

    Users without a profile are left out (open them first). Rows are taken in pk order, the
    order every batch writes them in.
    """
    updates = {user_id: values for user_id, values in updates.items() if values}
    if not updates:
        return
    profiles = list(UserProfile.objects.filter(user_id__any_of=updates).order_by("pk"))
    fields: set[str] = set()
    for profile in profiles:
        for name, value in updates[profile.user_id].items():
            setattr(profile, name, value)
            fields.add(name)
    update_rows(UserProfile, profiles, sorted(fields))


def profiles_mark_migrated(*, user_ids: Iterable[int], now: datetime) -> int:
    """Mark these users' profiles migrated at `now` (those not marked already); return how many.

    The first mark stays: a user migrated from one more source later keeps the moment their
    legacy billing was first fully moved.
    """
    user_ids = sorted(set(user_ids))
    if not user_ids:
        return 0
    return UserProfile.objects.filter(
        user_id__any_of=user_ids, migration_completed_at__isnull=True
    ).update(migration_completed_at=now)


def profiles_mark_unmigrated(*, user_ids: Iterable[int]) -> int:
    """Clear the migrated mark of these users' profiles (a rollback); return how many."""
    return UserProfile.objects.filter(user_id__any_of=sorted(set(user_ids))).update(
        migration_completed_at=None
    )


def profile_restore(
    *, user_id: int, values: dict[str, Any], reset: Iterable[str] = ()
) -> UserProfile | None:
    """Put back a profile's earlier values (a rollback): `values` as stored in JSON (dates as
    ISO strings), and the fields named in `reset` back to a new profile's defaults.

    None when the user has no profile (nothing to restore).
    """
    previous = {name: UserProfile._meta.get_field(name).get_default() for name in reset if name}
    previous.update(values)
    profile = UserProfile.objects.filter(user_id=user_id).first()
    if profile is None or not previous:
        return profile
    for name, value in previous.items():
        field = UserProfile._meta.get_field(name)
        setattr(profile, name, field.to_python(value) if isinstance(value, str) else value)
    profile.save(update_fields=[*previous.keys(), "updated_at"])
    return profile


# --- Monthly grants -------------------------------------------------------------------------

# A subscription is active while Stripe says it is paid up or in its trial: those users get
# their plan's monthly credits. past_due, unpaid, canceled, incomplete and paused do not.
ACTIVE_SUBSCRIPTION_STATUSES = ("active", "trialing")
MONTHLY_GRANT_SOURCE = "monthly_grant"
_PERIOD = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def grant_period(moment: datetime) -> str:
    """The grant period (a UTC calendar month, "2026-11") that a moment falls in."""
    return moment.astimezone(UTC).strftime("%Y-%m")


def period_start(period: str) -> datetime:
    """The first instant of a grant period ("2026-11": 2026-11-01 00:00 UTC)."""
    if not _PERIOD.match(period):
        raise ValueError(f"A grant period is a month like 2026-11, not {period!r}.")
    year, month = (int(part) for part in period.split("-"))
    return datetime(year, month, 1, tzinfo=UTC)


def period_end(period: str) -> datetime:
    """The first instant after a grant period, when its monthly credits expire ("2026-11":
    2026-12-01 00:00 UTC)."""
    starts = period_start(period)
    return starts.replace(year=starts.year + starts.month // 12, month=starts.month % 12 + 1)


def monthly_credits_grant(*, period: str | None = None, batch_size: int | None = None) -> int:
    """Grant every subscribed, migrated user their plan's credits for a period; return how many.

    Users are streamed by id in batches, one transaction each, so a big run holds no long lock
    and a crash leaves whole batches done. Users whose legacy billing is not yet migrated
    (`migration_completed_at` is null) are skipped: their credits still live in legacy billing
    and the migration brings them. Run again for the same period, or by two workers at once, it
    grants nothing twice: the idempotency key (account, period) is unique on the ledger.
    """
    period = period or grant_period(timezone.now())
    starts = period_start(period)
    batch_size = batch_size or settings.CREDITS_MONTHLY_GRANT_BATCH_SIZE
    granted = 0
    for plan, credits in settings.CREDITS_PLANS.items():
        if credits <= 0:
            continue
        # Active for the period: Stripe's status, and a subscription that has not ended by
        # the period's start (a renewal's own invoice.paid grants its month with the same key).
        subscribed = UserProfile.objects.filter(
            Q(subscription_ends_at__isnull=True) | Q(subscription_ends_at__gt=starts),
            plan=plan,
            subscription_status__in=ACTIVE_SUBSCRIPTION_STATUSES,
            migration_completed_at__isnull=False,
        )
        last_user_id = 0
        while True:
            user_ids = list(
                subscribed.filter(user_id__gt=last_user_id)
                .order_by("user_id")
                .values_list("user_id", flat=True)[:batch_size]
            )
            if not user_ids:
                break
            last_user_id = user_ids[-1]
            granted += _grant_batch(user_ids=user_ids, plan=plan, credits=credits, period=period)
    return granted


def _grant_batch(*, user_ids: list[int], plan: str, credits: Decimal, period: str) -> int:
    expires_at = period_end(period)
    with transaction.atomic(durable=True):
        keys = {
            monthly_grant_key(account_id=account_id, period=period): account_id
            for account_id in CreditAccount.objects.filter(user_id__in=user_ids)
            .order_by("pk")
            .values_list("pk", flat=True)
        }
        # A month already granted (by a paid invoice, or by a run that got there first) stays as
        # it is, even when the plan has changed since: the key is taken, whatever its amount.
        granted_before = set(
            CreditTransaction.objects.filter(idempotency_key__in=keys)
            .order_by()
            .values_list("idempotency_key", flat=True)
        )
        entries = [
            BatchEntry(
                account_id=account_id,
                kind=EntryKind.MONTHLY_GRANT,
                amount=credits,
                idempotency_key=key,
                source=MONTHLY_GRANT_SOURCE,
                description=f"{plan} plan credits for {period}",
                metadata={"plan": plan, "period": period},
                expires_at=expires_at,
            )
            for key, account_id in keys.items()
            if key not in granted_before
        ]
        return credit_post_batch(entries=entries)
