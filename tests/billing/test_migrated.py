""" "Migrated" means migrated by a source: the balance API and the credit accounts admin agree,
for signups (never migrated), legacy users before and after `migrate_credits`, and after a
rollback."""

import io
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from rest_framework.test import APIClient

from billing.models import UserProfile
from billing.services import user_signup
from credits.models import CreditAccount
from migrations_app.models import MigrationStatus, UserMigration
from tests.admin.conftest import changelist_url
from tests.factories import LegacyBillingFactory, SuperAdminFactory

pytestmark = pytest.mark.django_db

ACCOUNTS = changelist_url("credits.creditaccount")


def api_migrated(user) -> bool:
    client = APIClient()
    client.force_authenticate(user)
    response = client.get("/api/credits/balance/")
    assert response.status_code == 200
    return response.json()["migrated"]


def filtered(client, value):
    return client.get(ACCOUNTS, {"migrated": value}).context["cl"].result_list


def admin_migrated() -> dict[str, bool]:
    """The admin list's "migrated" column, and its filter, per email."""
    client = Client()
    client.force_login(SuperAdminFactory(email="boss@example.com"))
    listed = client.get(ACCOUNTS).context["cl"].result_list
    column = {account.user.email: account.migrated_by_source for account in listed}
    yes = {a.user.email for a in filtered(client, "yes")}
    no = {a.user.email for a in filtered(client, "no")}
    assert yes == {email for email, migrated in column.items() if migrated}
    assert no == {email for email, migrated in column.items() if not migrated}
    return column


def migrate(tmp_path, *options):
    call_command(
        "migrate_credits",
        "--yes",
        "--source=usd_balance",
        f"--backup-dir={tmp_path}",
        *options,
        stdout=io.StringIO(),
        stderr=io.StringIO(),
    )


def test_a_signup_is_not_migrated_though_its_legacy_billing_is_settled():
    # given
    user = user_signup(email="new@example.com", password="correct horse battery")

    # when
    migrated = api_migrated(user)

    # then: settled (monthly grants reach it), but no source migrated it
    assert UserProfile.objects.get(user=user).migration_completed_at is not None
    assert migrated is False
    assert admin_migrated()["new@example.com"] is False


def test_a_legacy_user_is_migrated_once_a_source_completes_and_not_after_a_rollback(tmp_path):
    # given
    user = LegacyBillingFactory(
        user__username="ada", user__email="ada@example.com", balance_usd=Decimal("30.00")
    ).user
    user_signup(email="new@example.com", password="correct horse battery")

    # when
    migrate(tmp_path, "--execute")

    # then
    assert UserMigration.objects.get(user=user).status == MigrationStatus.COMPLETED
    assert CreditAccount.objects.get(user=user).balance == Decimal("30.00")
    assert api_migrated(user) is True
    assert admin_migrated() == {"ada@example.com": True, "new@example.com": False}

    # when
    migrate(tmp_path, "--rollback", "--user", str(user.pk))

    # then
    assert UserMigration.objects.get(user=user).status == MigrationStatus.ROLLED_BACK
    assert api_migrated(user) is False
    assert admin_migrated()["ada@example.com"] is False


def test_a_failed_migration_is_not_migrated(tmp_path):
    # given
    user = LegacyBillingFactory(
        user__username="cy", user__email="cy@example.com", balance_usd=Decimal("-5.00")
    ).user

    # when
    with pytest.raises(CommandError) as refused:
        migrate(tmp_path, "--execute")

    # then
    assert refused.value.returncode == 1
    assert UserMigration.objects.get(user=user).status == MigrationStatus.FAILED
    assert api_migrated(user) is False


def test_demo_customers_are_not_migrated_and_legacy_users_wait():
    # when
    call_command("demo_setup", "--legacy-users", "5", stdout=io.StringIO())

    # then
    column = admin_migrated()
    assert column["ada@example.com"] is False
    assert not any(column.values())
    ada = CreditAccount.objects.get(user__email="ada@example.com").user
    assert api_migrated(ada) is False
