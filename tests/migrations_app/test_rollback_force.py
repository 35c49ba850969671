"""Forcing a rollback (taking back credits already spent) needs `credits.adjust_unlimited`,
checked by `migration_rollback` itself: the service, the API and the command all go through it,
and the engine's rollback takes only a `RollbackAuthority`, which cannot be made without the
permissions. A refusal changes nothing: not the balance, not the ledger, not the migration."""

from decimal import Decimal

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from credits.models import CreditAccount, CreditTransaction
from credits.services import credit_spend
from migrations_app.authorization import RollbackAuthority
from migrations_app.engine.rollback import rollback, rollback_rows
from migrations_app.exceptions import MigrationPermissionDenied
from migrations_app.models import MigrationRun, MigrationStatus, RunMode, UserMigration
from migrations_app.services import migration_rollback
from tests.factories import (
    LegacyBillingFactory,
    MigrationRunFactory,
    StaffUserFactory,
    SuperAdminFactory,
)
from tests.helpers import assert_error_shape, sources_args, table_contents

pytestmark = pytest.mark.django_db

USD = sources_args("usd_balance")
ROLLBACK_URL = reverse("migrate-rollback")
# Allowed to roll back, not to force.
ROLLER = ["migrations_app.rollback_migration"]


@pytest.fixture
def spender(migrate):
    """A migrated user (10.50 credits) who has spent 4.00 of them."""
    legacy = LegacyBillingFactory(balance_usd=Decimal("10.50"))
    migrate("--execute", "--yes", *USD)
    credit_spend(
        account=CreditAccount.objects.get(user_id=legacy.user_id),
        amount=Decimal("4.00"),
        idempotency_key=f"spend:{legacy.user_id}",
    )
    return legacy.user


def state(user) -> tuple:
    """What a refused rollback must leave as it was."""
    return (
        CreditAccount.objects.get(user=user).balance,
        CreditTransaction.objects.count(),
        UserMigration.objects.get(user=user).status,
        MigrationRun.objects.filter(mode=RunMode.ROLLBACK).count(),
    )


def test_the_service_refuses_force_without_adjust_unlimited_and_changes_nothing(spender):
    # given
    staff = StaffUserFactory(permissions=ROLLER)
    before, tables = state(spender), table_contents()
    # when
    with pytest.raises(MigrationPermissionDenied) as refused:
        migration_rollback(actor=staff, force=True, sources=["usd_balance"], user_ids=[spender.pk])
    # then
    assert refused.value.details == {"permission": "credits.adjust_unlimited"}
    assert state(spender) == before == (Decimal("6.50"), 2, MigrationStatus.COMPLETED, 0)
    assert table_contents() == tables


def test_the_service_forces_for_a_billing_super_admin(spender):
    # given
    admin = SuperAdminFactory()
    # when
    report = migration_rollback(
        actor=admin, force=True, notify=False, sources=["usd_balance"], user_ids=[spender.pk]
    )
    # then
    assert report.counts["rolled_back"] == 1
    assert CreditAccount.objects.get(user=spender).balance == Decimal("0.00")
    row = UserMigration.objects.get(user=spender)
    assert row.status == MigrationStatus.ROLLED_BACK
    assert row.rollback_data["rollback"]["forced"] is True
    assert row.rollback_data["rollback"]["shortfall"] == "4.00"
    assert row.rollback_data["rollback"]["actor_id"] == admin.pk
    # the service started and finished its own run, on the actor's behalf
    run = MigrationRun.objects.get(pk=report.run_id)
    assert (run.mode, run.status, run.triggered_by_id) == (RunMode.ROLLBACK, "completed", admin.pk)
    assert run.parameters["force"] is True


def test_without_force_the_same_staff_member_reverses_what_is_left_and_spent_stays_spent(
    spender,
):
    # given
    staff = StaffUserFactory(permissions=ROLLER)
    # when
    report = migration_rollback(
        actor=staff, notify=False, sources=["usd_balance"], user_ids=[spender.pk]
    )
    # then: the 6.50 left of the migration's lot is reversed, the 4.00 spent stays spent
    assert report.counts["rolled_back"] == 1
    assert CreditAccount.objects.get(user=spender).balance == Decimal("0.00")
    rollback_figures = UserMigration.objects.get(user=spender).rollback_data["rollback"]
    assert (rollback_figures["reversed"], rollback_figures["spent_before_rollback"]) == (
        "6.50",
        "4.00",
    )
    assert rollback_figures["forced"] is False
    run = MigrationRun.objects.get(pk=report.run_id)
    assert run.stats["spent_before_rollback"] == "4.00"
    assert run.stats["taken_from_account"] == "0.00"


def test_the_api_refuses_force_without_adjust_unlimited_and_changes_nothing(spender):
    # given
    client = APIClient()
    client.force_authenticate(user=StaffUserFactory(permissions=ROLLER))
    before, tables = state(spender), table_contents()
    # when
    response = client.post(ROLLBACK_URL, {"users": [spender.pk], "force": True}, format="json")
    # then
    error = assert_error_shape(response, 403, "permission_denied")
    assert error["details"] == {"permission": "credits.adjust_unlimited"}
    assert state(spender) == before
    assert table_contents() == tables


def test_the_api_refuses_staff_without_rollback_migration(spender):
    # given
    client = APIClient()
    client.force_authenticate(user=StaffUserFactory())
    before = state(spender)
    # when
    response = client.post(ROLLBACK_URL, {"users": [spender.pk]}, format="json")
    # then
    assert_error_shape(response, 403, "permission_denied")
    assert state(spender) == before


def test_the_api_forces_for_a_billing_super_admin(spender, django_capture_on_commit_callbacks):
    # given
    client = APIClient()
    client.force_authenticate(user=SuperAdminFactory())
    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            ROLLBACK_URL,
            {"users": [spender.pk], "sources": ["usd_balance"], "force": True, "notify": False},
            format="json",
        )
    # then
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["users"] == {"rolled_back": 1}
    assert body["credits"] == "-6.50"
    assert body["failures"] == []
    assert body["status_url"] == reverse("migrate-run", kwargs={"run_id": body["run_id"]})
    assert CreditAccount.objects.get(user=spender).balance == Decimal("0.00")
    assert UserMigration.objects.get(user=spender).status == MigrationStatus.ROLLED_BACK


def test_the_api_rolls_back_a_spender_without_force_keeping_what_was_spent(spender):
    # given
    client = APIClient()
    client.force_authenticate(user=StaffUserFactory(permissions=ROLLER))
    # when
    response = client.post(ROLLBACK_URL, {"users": [spender.pk], "notify": False}, format="json")
    # then
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["users"] == {"rolled_back": 1}
    assert body["credits"] == "-6.50"
    assert body["spent_before_rollback"] == "4.00"
    assert body["shortfall"] == "4.00"
    assert body["failures"] == []
    assert UserMigration.objects.get(user=spender).status == MigrationStatus.ROLLED_BACK


def test_the_command_forces_through_the_service(spender, migrate):
    # when: an operator at the shell, who may do anything the database lets them
    _, out = migrate("--rollback", "--yes", "--force", "--user", str(spender.pk), *USD)
    # then
    assert "users rolled back: 1" in out
    assert CreditAccount.objects.get(user=spender).balance == Decimal("0.00")
    row = UserMigration.objects.get(user=spender)
    assert row.status == MigrationStatus.ROLLED_BACK
    assert row.rollback_data["rollback"]["forced"] is True


def test_no_authority_to_force_can_be_made_without_the_permission(spender):
    # given
    staff = StaffUserFactory(permissions=ROLLER)
    before = state(spender)
    # when / then: the check runs when the authority is made
    with pytest.raises(MigrationPermissionDenied):
        RollbackAuthority(actor=staff, force=True)
    with pytest.raises(MigrationPermissionDenied):
        RollbackAuthority(actor=StaffUserFactory(), force=False)
    assert RollbackAuthority(actor=staff, force=False).force is False
    assert state(spender) == before


@pytest.mark.parametrize("authority", [None, True, "force"])
def test_the_engine_rolls_back_nothing_without_an_authority(spender, authority):
    # given
    before = state(spender)
    run = MigrationRunFactory(mode=RunMode.ROLLBACK)
    pk = UserMigration.objects.get(user=spender).pk
    # when / then
    with pytest.raises(TypeError):
        rollback(sources=["usd_balance"], user_ids=[spender.pk], run=run, authority=authority)
    with pytest.raises(TypeError):
        rollback_rows([pk], authority=authority)
    balance, entries, status, _ = before
    assert state(spender)[:3] == (balance, entries, status)
