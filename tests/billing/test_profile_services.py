"""billing's set-based profile services, which the migration calls a batch at a time: open,
sync, mark (and unmark) migrated, restore. One statement per call whatever the batch's size."""

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.models import UserProfile
from billing.services import (
    profile_restore,
    profiles_mark_migrated,
    profiles_mark_unmigrated,
    profiles_open,
    profiles_sync,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

MOMENT = datetime(2026, 11, 5, 12, 0, tzinfo=UTC)


def fields_of(user, *names):
    return UserProfile.objects.filter(user=user).values_list(*names).get()


def test_profiles_open_gives_a_new_profile_to_users_without_one_in_one_statement():
    # given
    new, other = UserFactory(), UserFactory()
    kept = UserFactory()
    UserProfile.objects.create(user=kept, plan="pro", stripe_price_id="price_1")
    # when
    with CaptureQueriesContext(connection) as queries:
        profiles_open(user_ids=[new.pk, kept.pk, other.pk, new.pk])
    # then
    assert len(queries) == 1
    assert fields_of(new, "plan", "migration_completed_at", "preferences") == ("free", None, {})
    assert fields_of(other, "plan") == ("free",)
    assert fields_of(kept, "plan", "stripe_price_id") == ("pro", "price_1")
    assert UserProfile.objects.count() == 3


def test_profiles_open_again_or_for_nobody_changes_nothing():
    # given
    user = UserFactory()
    profiles_open(user_ids=[user.pk])
    before = list(UserProfile.objects.values())
    # when
    profiles_open(user_ids=[user.pk])
    with CaptureQueriesContext(connection) as queries:
        profiles_open(user_ids=[])
    # then
    assert list(UserProfile.objects.values()) == before
    assert len(queries) == 0


def test_profiles_sync_sets_each_users_own_fields_in_one_update():
    # given
    ada, bob = UserFactory(), UserFactory()
    without_profile = UserFactory()
    profiles_open(user_ids=[ada.pk, bob.pk])
    # when
    profiles_sync(
        updates={
            ada.pk: {"plan": "pro", "subscription_started_at": MOMENT},
            bob.pk: {"stripe_customer_id": "cus_bob", "usage_stats": {"runs": 3}},
            without_profile.pk: {"plan": "pro"},
        }
    )
    # then
    assert fields_of(ada, "plan", "subscription_started_at", "stripe_customer_id") == (
        "pro",
        MOMENT,
        None,
    )
    assert fields_of(bob, "plan", "stripe_customer_id", "usage_stats") == (
        "free",
        "cus_bob",
        {"runs": 3},
    )
    assert not UserProfile.objects.filter(user=without_profile).exists()


def test_profiles_sync_of_nothing_sends_no_statement():
    # given
    user = UserFactory()
    profiles_open(user_ids=[user.pk])
    # when
    with CaptureQueriesContext(connection) as queries:
        profiles_sync(updates={})
        profiles_sync(updates={user.pk: {}})
    # then
    assert len(queries) == 0


def test_profiles_mark_migrated_marks_once_and_keeps_the_first_mark():
    # given
    fresh, marked = UserFactory(), UserFactory()
    profiles_open(user_ids=[fresh.pk, marked.pk])
    earlier = datetime(2026, 1, 1, tzinfo=UTC)
    UserProfile.objects.filter(user=marked).update(migration_completed_at=earlier)
    # when
    with CaptureQueriesContext(connection) as queries:
        count = profiles_mark_migrated(user_ids=[fresh.pk, marked.pk], now=MOMENT)
    # then
    assert len(queries) == 1
    assert count == 1
    assert fields_of(fresh, "migration_completed_at") == (MOMENT,)
    assert fields_of(marked, "migration_completed_at") == (earlier,)
    assert profiles_mark_migrated(user_ids=[], now=MOMENT) == 0


def test_profiles_mark_unmigrated_clears_the_mark():
    # given
    user, other = UserFactory(), UserFactory()
    profiles_open(user_ids=[user.pk, other.pk])
    profiles_mark_migrated(user_ids=[user.pk, other.pk], now=MOMENT)
    # when
    count = profiles_mark_unmigrated(user_ids=[user.pk])
    # then
    assert count == 1
    assert fields_of(user, "migration_completed_at") == (None,)
    assert fields_of(other, "migration_completed_at") == (MOMENT,)


def test_profile_restore_puts_back_values_as_stored_in_json():
    # given: a profile the migration changed; its earlier values as rollback data keeps them
    user = UserFactory()
    profiles_open(user_ids=[user.pk])
    profiles_sync(updates={user.pk: {"plan": "pro", "subscription_started_at": MOMENT}})
    # when
    profile = profile_restore(
        user_id=user.pk,
        values={"plan": "team", "subscription_started_at": "2025-02-03T04:05:06+00:00"},
    )
    # then
    assert profile.plan == "team"
    assert fields_of(user, "plan", "subscription_started_at") == (
        "team",
        datetime(2025, 2, 3, 4, 5, 6, tzinfo=UTC),
    )


def test_profile_restore_resets_named_fields_to_a_new_profiles_values():
    # given: a profile the migration made and filled
    user = UserFactory()
    profiles_open(user_ids=[user.pk])
    profiles_sync(
        updates={user.pk: {"plan": "pro", "stripe_customer_id": "cus_1", "preferences": {"a": 1}}}
    )
    # when
    profile_restore(user_id=user.pk, values={}, reset=("plan", "stripe_customer_id", "preferences"))
    # then
    assert fields_of(user, "plan", "stripe_customer_id", "preferences") == ("free", None, {})


def test_profile_restore_of_a_user_without_a_profile_writes_nothing():
    # given
    user = UserFactory()
    # when
    restored = profile_restore(user_id=user.pk, values={"plan": "pro"})
    # then
    assert restored is None
    assert not UserProfile.objects.filter(user=user).exists()
