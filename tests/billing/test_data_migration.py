"""The data migration that gives every existing user a profile and an empty credit account,
run for real: back to the migration before it, data in, forward again, and back."""

from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("billing", "0002_legacy_models")]
AFTER = [("billing", "0003_profiles_for_existing_users")]

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def back_to_the_latest_migrations():
    """Leave the test database fully migrated: later transactional tests need the tables of
    the migrations after AFTER (billing's Stripe tables among them)."""
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def migrate_to(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def test_existing_users_get_profiles_and_empty_accounts_copied_from_legacy_accounts():
    # given users from before the credit system, two of them with legacy accounts
    apps = migrate_to(BEFORE)
    User = apps.get_model("auth", "User")
    LegacyAccount = apps.get_model("billing", "LegacyAccount")
    plain = User.objects.create(username="plain", email="plain@example.com")
    pro = User.objects.create(username="pro", email="pro@example.com")
    twin = User.objects.create(username="twin", email="twin@example.com")
    LegacyAccount.objects.create(
        user_id=pro.pk,
        plan="pro",
        credits_balance=Decimal("260"),
        subscription_status="active",
        stripe_customer_id="cus_pro",
        stripe_price_id="price_pro",
        preferences={"theme": "dark"},
        usage_stats={"requests": 12},
    )
    # a second legacy account naming the same Stripe customer: the id is not copied twice
    LegacyAccount.objects.create(user_id=twin.pk, plan="free", stripe_customer_id="cus_pro")

    # when
    apps = migrate_to(AFTER)

    # then
    UserProfile = apps.get_model("billing", "UserProfile")
    CreditAccount = apps.get_model("credits", "CreditAccount")
    CreditTransaction = apps.get_model("credits", "CreditTransaction")
    profiles = {profile.user_id: profile for profile in UserProfile.objects.all()}
    assert set(profiles) == {plain.pk, pro.pk, twin.pk}
    assert (profiles[plain.pk].plan, profiles[plain.pk].stripe_customer_id) == ("free", None)
    copied = profiles[pro.pk]
    assert (copied.plan, copied.subscription_status) == ("pro", "active")
    assert (copied.stripe_customer_id, copied.stripe_price_id) == ("cus_pro", "price_pro")
    assert (copied.preferences, copied.usage_stats) == ({"theme": "dark"}, {"requests": 12})
    assert profiles[twin.pk].stripe_customer_id is None
    assert copied.migration_completed_at is None
    accounts = CreditAccount.objects.all()
    assert {account.user_id for account in accounts} == {plain.pk, pro.pk, twin.pk}
    assert all(account.balance == 0 for account in accounts)
    # no credits move and no signup grant is given here
    assert CreditTransaction.objects.count() == 0

    # and reversing removes what it made, running it again changes nothing twice
    apps = migrate_to(BEFORE)
    assert apps.get_model("billing", "UserProfile").objects.count() == 0
    apps = migrate_to(AFTER)
    assert apps.get_model("billing", "UserProfile").objects.count() == 3
    assert apps.get_model("credits", "CreditAccount").objects.count() == 3
