"""Every migration door names its permission and the service checks it: `is_staff` alone opens
nothing. Rates above CREDITS_MIGRATION_RATE_MAX need `credits.adjust_unlimited`. The API is a dry
run unless the body says "dry_run": false. Refusals answer in the error shape and write nothing.
"""

import io
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from rest_framework.test import APIClient

from billing.models import LegacyBilling
from migrations_app.models import MigrationRun, MigrationStatus, RunMode, UserMigration
from tests.admin.conftest import changelist_url, client_for, messages_of, post_action
from tests.factories import (
    BILLING_SUPER_ADMINS,
    CREDIT_ADMINS,
    LegacyBillingFactory,
    MigrationRunFactory,
    StaffUserFactory,
    UserFactory,
)
from tests.helpers import assert_error_shape, table_contents

pytestmark = pytest.mark.django_db

STATUS_URL = reverse("migrate-status")
MIGRATIONS = changelist_url("migrations_app.usermigration")


def client_of(user):
    client = APIClient()
    client.force_authenticate(user=user)
    return client


@pytest.fixture
def post(django_capture_on_commit_callbacks):
    def send(user, body):
        with django_capture_on_commit_callbacks(execute=True):
            return client_of(user).post(STATUS_URL, body, format="json")

    return send


@pytest.fixture
def unmigrated():
    """An unmigrated user with 100 USD."""
    return LegacyBillingFactory(balance_usd=Decimal("100.00")).user


CREDITS_FROM_NOTHING = {"sources": ["usd_balance"], "rates": {"USD": "999999"}, "dry_run": False}


@pytest.mark.parametrize(
    "who",
    [
        pytest.param(lambda: StaffUserFactory(), id="bare-staff"),
        pytest.param(lambda: StaffUserFactory(groups=[CREDIT_ADMINS]), id="credit-admin"),
        pytest.param(
            lambda: StaffUserFactory(permissions=["migrations_app.preview_migration"]),
            id="preview-only",
        ),
    ],
)
def test_staff_without_run_migration_cannot_execute(post, unmigrated, who):
    # given: the "credits from nothing"
    staff = who()
    body = {**CREDITS_FROM_NOTHING, "users": [unmigrated.pk]}
    before = table_contents()
    # when
    response = post(staff, body)
    # then
    error = assert_error_shape(response, 403, "permission_denied")
    assert error["details"] == {"permission": "migrations_app.run_migration"}
    assert table_contents() == before


@pytest.mark.parametrize(
    "who",
    [
        pytest.param(lambda: StaffUserFactory(), id="bare-staff"),
        pytest.param(lambda: StaffUserFactory(groups=[CREDIT_ADMINS]), id="credit-admin"),
        pytest.param(
            lambda: StaffUserFactory(permissions=["migrations_app.run_migration"]),
            id="run-only",
        ),
    ],
)
def test_staff_without_preview_migration_cannot_start_a_dry_run(post, unmigrated, who):
    # given
    staff = who()
    before = table_contents()
    # when
    response = post(staff, {"sources": ["usd_balance"]})
    # then
    error = assert_error_shape(response, 403, "permission_denied")
    assert error["details"] == {"permission": "migrations_app.preview_migration"}
    assert table_contents() == before


def test_without_dry_run_the_api_starts_a_dry_run(post, unmigrated):
    # given
    staff = StaffUserFactory(permissions=["migrations_app.preview_migration"])
    # when
    response = post(staff, {"sources": ["usd_balance"]})
    # then: planned, nothing migrated
    assert response.status_code == 202
    assert response.json()["mode"] == RunMode.DRY_RUN
    run = MigrationRun.objects.get()
    assert (run.mode, run.triggered_by) == (RunMode.DRY_RUN, staff)
    assert run.stats["credits"] == "100.00"
    assert not UserMigration.objects.exists()


def test_a_rate_above_the_max_is_refused_without_adjust_unlimited(post, unmigrated):
    # given: allowed to run, but not above the bound
    staff = StaffUserFactory(permissions=["migrations_app.run_migration"])
    before = table_contents()
    # when
    response = post(staff, {**CREDITS_FROM_NOTHING, "rates": {"USD": "1000.01"}})
    # then
    error = assert_error_shape(response, 400, "invalid")
    assert error["details"] == {
        "rates": [
            "USD: above CREDITS_MIGRATION_RATE_MAX (1000); a higher rate needs the permission "
            "credits.adjust_unlimited."
        ]
    }
    assert table_contents() == before


def test_a_rate_at_the_max_runs(post, unmigrated):
    # given
    staff = StaffUserFactory(permissions=["migrations_app.run_migration"])
    # when
    response = post(staff, {**CREDITS_FROM_NOTHING, "rates": {"USD": "1000"}, "notify": False})
    # then
    assert response.status_code == 202
    row = UserMigration.objects.get(user=unmigrated)
    assert (row.status, row.initial_credits_granted) == (
        MigrationStatus.COMPLETED,
        Decimal("100000.00"),
    )


def test_a_billing_super_admin_may_go_above_the_max(post, unmigrated):
    # given
    staff = StaffUserFactory(groups=[BILLING_SUPER_ADMINS])
    # when
    response = post(staff, {**CREDITS_FROM_NOTHING, "rates": {"USD": "5000"}, "notify": False})
    # then
    assert response.status_code == 202
    assert UserMigration.objects.get(user=unmigrated).initial_credits_granted == Decimal(
        "500000.00"
    )
    assert MigrationRun.objects.get().triggered_by == staff


def test_reading_status_and_runs_needs_view_migrationrun():
    # given
    run = MigrationRunFactory(triggered_by=UserFactory())
    bare, credit_admin = StaffUserFactory(), StaffUserFactory(groups=[CREDIT_ADMINS])
    viewer = StaffUserFactory(permissions=["migrations_app.view_migrationrun"])
    run_url = reverse("migrate-run", kwargs={"run_id": run.pk})
    # when / then
    for staff in (bare, credit_admin):
        for url in (STATUS_URL, run_url):
            error = assert_error_shape(client_of(staff).get(url), 403, "permission_denied")
            assert error["details"] == {"permission": "migrations_app.view_migrationrun"}
    assert client_of(viewer).get(STATUS_URL).status_code == 200
    assert client_of(viewer).get(run_url).status_code == 200


def test_the_billing_super_admins_group_holds_the_new_permissions():
    # given / when
    staff = StaffUserFactory(groups=[BILLING_SUPER_ADMINS])
    credit_admin = StaffUserFactory(groups=[CREDIT_ADMINS])
    # then
    for codename in ("run_migration", "preview_migration", "view_migrationrun"):
        assert staff.has_perm(f"migrations_app.{codename}")
        assert not credit_admin.has_perm(f"migrations_app.{codename}")


def test_a_retry_of_a_run_above_the_max_needs_adjust_unlimited(tmp_path, settings):
    # given: dee failed in an operator's run at a high rate; the rate bound is lower now
    dee = LegacyBillingFactory(user__username="dee", balance_usd=Decimal("-5.00")).user
    with pytest.raises(CommandError):
        call_command(
            "migrate_credits",
            "--execute",
            "--yes",
            "--source=usd_balance",
            "--rate=USD=500",
            f"--backup-dir={tmp_path}",
            stdout=io.StringIO(),
        )
    row = UserMigration.objects.get(user=dee)
    settings.CREDITS_MIGRATION_RATE_MAX = Decimal("100")
    LegacyBilling.objects.filter(user=dee).update(balance_usd=Decimal("5.00"))
    retrier = StaffUserFactory(
        permissions=["migrations_app.view_usermigration", "migrations_app.retry_migration"]
    )
    runs = MigrationRun.objects.count()
    # when
    response = post_action(client_for(retrier), MIGRATIONS, "retry_failed", [row.pk])
    # then
    row.refresh_from_db()
    assert row.status == MigrationStatus.FAILED
    assert row.attempts == 1
    assert MigrationRun.objects.count() == runs
    assert messages_of(response) == [
        "rates: USD: above CREDITS_MIGRATION_RATE_MAX (100); a higher rate needs the "
        "permission credits.adjust_unlimited."
    ]
