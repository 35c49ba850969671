"""The data migration that makes the two staff groups, run for real: back, forward, and what
each group may do afterwards."""

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from credits.services.staff import staff_limit
from tests.factories import BILLING_SUPER_ADMINS, CREDIT_ADMINS, StaffUserFactory

BEFORE = [("migrations_app", "0002_retry_permission")]
AFTER = [("migrations_app", "0003_staff_groups")]

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def back_to_the_latest_migrations():
    """Leave the schema as every later test expects it: all migrations applied."""
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def migrate_to(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)


def permissions_of(name):
    return set(
        Group.objects.get(name=name).permissions.values_list("content_type__app_label", "codename")
    )


def test_the_groups_come_with_the_migration_and_go_with_its_reversal():
    # given
    migrate_to(BEFORE)
    assert not Group.objects.filter(name__in=[CREDIT_ADMINS, BILLING_SUPER_ADMINS]).exists()

    # when
    migrate_to(AFTER)

    # then
    credit_admins = permissions_of(CREDIT_ADMINS)
    super_admins = permissions_of(BILLING_SUPER_ADMINS)
    assert {("credits", "grant_credits"), ("credits", "adjust_credits")} <= credit_admins
    assert ("credits", "refund_credits") not in credit_admins
    assert ("credits", "adjust_unlimited") not in credit_admins
    assert ("migrations_app", "rollback_migration") not in credit_admins
    assert {
        ("credits", "refund_credits"),
        ("credits", "adjust_unlimited"),
        ("migrations_app", "rollback_migration"),
        ("migrations_app", "retry_migration"),
        ("migrations_app", "view_usermigration"),
    } <= super_admins
    assert credit_admins < super_admins

    # and when reversed
    migrate_to(BEFORE)
    assert not Group.objects.filter(name__in=[CREDIT_ADMINS, BILLING_SUPER_ADMINS]).exists()
    migrate_to(AFTER)


def test_members_get_the_roles_limits(settings):
    # given
    migrate_to(AFTER)
    credit_admin = StaffUserFactory(groups=[CREDIT_ADMINS])
    super_admin = StaffUserFactory(groups=[BILLING_SUPER_ADMINS])

    # then
    assert credit_admin.has_perm("credits.grant_credits")
    assert not credit_admin.has_perm("credits.refund_credits")
    assert staff_limit(credit_admin) == settings.CREDITS_ADMIN_LIMIT
    assert super_admin.has_perm("credits.refund_credits")
    assert super_admin.has_perm("migrations_app.rollback_migration")
    assert staff_limit(super_admin) is None
