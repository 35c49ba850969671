"""The migration over HTTP, for staff: status, starting runs, following a run.

Celery is eager in the tests, so a started run goes through the real fan-out inline once the
request's transaction commits (captured and executed here). Refused requests answer in the
error shape and write nothing.
"""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from billing.models import LegacyBilling
from credits.models import CreditTransaction
from migrations_app.exceptions import RunAlreadyActive
from migrations_app.models import (
    BatchStatus,
    MigrationBatch,
    MigrationRun,
    MigrationStatus,
    RunMode,
    RunStatus,
    UserMigration,
)
from migrations_app.services import migration_run_start
from tests.factories import (
    BILLING_SUPER_ADMINS,
    LegacyBillingFactory,
    MigrationRunFactory,
    StaffUserFactory,
    UserFactory,
)
from tests.helpers import assert_error_shape, table_contents

STATUS_URL = reverse("migrate-status")

pytestmark = pytest.mark.django_db


def run_url(run_id):
    return reverse("migrate-run", kwargs={"run_id": run_id})


@pytest.fixture
def staff_user(db):
    """A billing super admin: the staff who may run, preview and follow the migration."""
    return StaffUserFactory(
        username="staff", email="staff@example.com", groups=[BILLING_SUPER_ADMINS]
    )


@pytest.fixture
def staff_client(staff_user):
    client = APIClient()
    client.force_authenticate(user=staff_user)
    return client


@pytest.fixture
def start(staff_client, django_capture_on_commit_callbacks):
    """POST a run as staff; the queued Celery work runs (eagerly) once the request commits."""

    def post(body):
        with django_capture_on_commit_callbacks(execute=True):
            return staff_client.post(STATUS_URL, body, format="json")

    return post


def balances():
    return dict(UserMigration.objects.values_list("user_id", "initial_credits_granted"))


# --- GET status ---------------------------------------------------------------------------


def test_status_gives_the_facts_of_the_command(staff_client, migrate, legacy_world):
    # given: the realistic legacy data, nothing migrated
    # when
    response = staff_client.get(STATUS_URL)
    # then: what `migrate_credits --status --format json` prints
    assert response.status_code == 200
    body = response.json()
    _, printed = migrate("--status", "--format", "json")
    assert body == printed
    assert body["status"] == "migration_needed"
    assert set(body["summary"]) == {
        "users",
        "profiles",
        "pro_users",
        "pro_profiles",
        "users_to_migrate",
        "failed",
        "data_mismatches",
        "sources",
    }
    assert body["summary"]["pro_users"] == 1
    assert "--dry-run" in body["recommendation"]


def test_status_lists_the_failed_users_as_the_command_does(staff_client, migrate):
    # given: one user whose legacy balance breaks a rule, recorded FAILED
    broken = LegacyBillingFactory(balance_usd=Decimal("-5.00"))
    LegacyBillingFactory(balance_usd=Decimal("5.00"))
    migrate("--execute", "--yes", "--source", "usd_balance", expect=1)
    # when
    response = staff_client.get(STATUS_URL)
    # then: the errors the recommendation points to are there
    assert response.status_code == 200
    body = response.json()
    _, printed = migrate("--status", "--format", "json")
    assert body["failures"] == printed["failures"]
    assert body["failures"] == [
        {
            "user_id": broken.user_id,
            "email": broken.user.email,
            "source": "usd_balance",
            "error": "negative legacy balance (-5.00 USD, 0.00 UAH)",
        }
    ]
    assert "1 failed: read their errors" in body["recommendation"]


def test_status_is_up_to_date_after_a_run_and_in_progress_during_one(staff_client, start):
    # given
    LegacyBillingFactory(balance_usd=Decimal("5.00"))
    assert start({"dry_run": False, "sources": ["usd_balance"]}).status_code == 202
    # when
    after = staff_client.get(STATUS_URL, {"unused": "1"}).json()
    MigrationRunFactory()
    during = staff_client.get(STATUS_URL).json()
    # then
    assert after["summary"]["sources"]["usd_balance"]["to_migrate"] == 0
    assert during["status"] == "in_progress"


@pytest.mark.parametrize("method", ["get", "post"])
def test_non_staff_are_refused_with_403_and_nothing_written(user_client, method):
    # given
    LegacyBillingFactory(balance_usd=Decimal("5.00"))
    # when
    response = getattr(user_client, method)(STATUS_URL, {}, format="json")
    # then
    assert_error_shape(response, 403, "permission_denied")
    assert not MigrationRun.objects.exists()


def test_anonymous_requests_get_401(api_client):
    for url in (STATUS_URL, run_url(1)):
        assert_error_shape(api_client.get(url), 401, "not_authenticated")


# --- POST: start a run --------------------------------------------------------------------


def test_an_execute_run_answers_202_and_migrates_everyone(start, staff_client, staff_user):
    # given: five legacy balances, batches of two
    users = [LegacyBillingFactory(balance_usd=Decimal(n)).user for n in (1, 2, 3, 4, 5)]
    # when
    response = start(
        {"dry_run": False, "sources": ["usd_balance"], "batch_size": 2, "notify": False}
    )
    # then
    assert response.status_code == 202
    body = response.json()
    run = MigrationRun.objects.get()
    assert body == {
        "run_id": run.pk,
        "mode": "execute",
        "status": "running",
        "status_url": run_url(run.pk),
    }
    assert response["Location"] == run_url(run.pk)
    run.refresh_from_db()
    assert (run.status, run.processed, run.total, run.triggered_by) == (
        RunStatus.COMPLETED,
        5,
        5,
        staff_user,
    )
    assert balances() == {
        user.pk: Decimal(n) for user, n in zip(users, (1, 2, 3, 4, 5), strict=True)
    }
    assert MigrationBatch.objects.filter(run=run, status=BatchStatus.DONE).count() == 3
    # and the run's page shows it
    progress = staff_client.get(body["status_url"]).json()
    assert progress["status"] == "completed"
    assert progress["progress"] == {
        "processed": 5,
        "total": 5,
        "percent": 100.0,
        "batches_done": 3,
        "batches_total": 3,
    }
    assert progress["stats"]["credits"] == "15.00"
    assert progress["stats"]["users"] == {"migrated": 5}
    assert progress["errors"] == []


def test_a_run_with_failures_lists_them(start, staff_client):
    # given: one balance the source refuses
    LegacyBillingFactory(balance_usd=Decimal("5.00"))
    overdrawn = LegacyBillingFactory(balance_usd=Decimal("-1.00")).user
    # when
    run_id = start({"dry_run": False, "sources": ["usd_balance"], "notify": False}).json()["run_id"]
    # then
    body = staff_client.get(run_url(run_id)).json()
    assert body["status"] == "completed_with_errors"
    assert body["failed"] == 1
    assert [error["user_id"] for error in body["errors"]] == [overdrawn.pk]
    assert body["stats"]["credits"] == "5.00"


def test_a_dry_run_keeps_its_report_on_the_run_and_writes_nothing_else(start, legacy_world):
    # given
    before = table_contents()
    # when
    response = start({"dry_run": True, "sources": ["usd_balance", "user_fields"]})
    # then
    assert response.status_code == 202
    after = table_contents()
    changed = [label for label in before if before[label] != after[label]]
    assert changed == ["migrations_app.MigrationRun"]
    run = MigrationRun.objects.get()
    assert (run.mode, run.status) == (RunMode.DRY_RUN, RunStatus.COMPLETED)
    assert run.stats["mode"] == "dry_run"
    assert run.stats["users"]["migrate"] > 0
    assert sum(run.stats["users"].values()) == run.total == run.processed


def test_parameters_reach_the_run(start):
    # given: two users, one named
    named = LegacyBillingFactory(balance_usd=Decimal("10.00"), balance_uah=Decimal("100")).user
    LegacyBillingFactory(balance_usd=Decimal("7.00"))
    # when
    response = start(
        {
            "dry_run": False,
            "sources": ["usd_balance"],
            "users": [named.pk],
            "rates": {"USD": "2", "UAH": "0.5"},
            "keep_legacy": True,
            "notify": False,
        }
    )
    # then: 10 x 2 + 100 x 0.5
    assert response.status_code == 202
    assert balances() == {named.pk: Decimal("70.00")}
    assert LegacyBilling.objects.get(user=named).balance_usd == Decimal("10.00")


BAD_BODIES = [
    pytest.param({"sources": ["nope"]}, "sources", id="unknown-source"),
    pytest.param({"sources": []}, "sources", id="no-source"),
    pytest.param({"sources": "usd_balance"}, "sources", id="source-not-a-list"),
    pytest.param({"percent": "0"}, "percent", id="percent-zero"),
    pytest.param({"percent": "100.5"}, "percent", id="percent-over-100"),
    pytest.param({"percent": "NaN"}, "percent", id="percent-nan"),
    pytest.param({"rates": {"EUR": "1"}}, "rates", id="unknown-currency"),
    pytest.param({"rates": {"USD": "-1"}}, "rates", id="negative-rate"),
    pytest.param({"rates": {"USD": "0.0000001"}}, "rates", id="rate-too-precise"),
    pytest.param({"rates": ["USD"]}, "rates", id="rates-not-an-object"),
    pytest.param({"users": [999999]}, "users", id="no-such-user"),
    pytest.param({"users": [0]}, "users", id="user-id-zero"),
    pytest.param({"batch_size": 0}, "batch_size", id="batch-size-zero"),
    pytest.param({"dry_run": "maybe"}, "dry_run", id="dry-run-not-boolean"),
    pytest.param({"execute": True}, "execute", id="unknown-field"),
    pytest.param(["usd_balance"], "non_field_errors", id="not-an-object"),
]


@pytest.mark.parametrize(("body", "field"), BAD_BODIES)
def test_bad_input_is_refused_with_400_and_nothing_written(start, body, field):
    # given
    LegacyBillingFactory(balance_usd=Decimal("5.00"))
    before = table_contents()
    # when
    response = start(body)
    # then
    error = assert_error_shape(response, 400, "invalid")
    assert field in error["details"]
    assert table_contents() == before


def test_a_body_that_is_not_json_is_refused(staff_client):
    response = staff_client.post(STATUS_URL, "{not json", content_type="application/json")
    assert_error_shape(response, 400, "parse_error")
    assert not MigrationRun.objects.exists()


# --- one execute run per source at a time --------------------------------------------------


def live_run(source="usd_balance", **fields):
    return MigrationRunFactory(source=source, **fields)


def test_a_second_execute_run_of_a_running_source_is_refused_with_409(start):
    # given: a live execute run of two sources
    LegacyBillingFactory(balance_usd=Decimal("5.00"))
    running = live_run("user_fields,usd_balance")
    before = table_contents()
    # when
    response = start({"dry_run": False, "sources": ["usd_balance"]})
    # then
    error = assert_error_shape(response, 409, "run_already_active")
    assert error["details"]["run_id"] == running.pk
    assert table_contents() == before


def test_a_dry_run_or_another_source_is_not_blocked(start):
    # given
    live_run("user_fields")
    LegacyBillingFactory(balance_usd=Decimal("5.00"))
    # when
    dry = start({"sources": ["user_fields"], "dry_run": True})
    other = start({"dry_run": False, "sources": ["usd_balance"], "notify": False})
    # then
    assert (dry.status_code, other.status_code) == (202, 202)


def test_a_run_without_a_heartbeat_for_too_long_is_abandoned_and_no_longer_blocks(start):
    # given: a run whose workers died long ago
    LegacyBillingFactory(balance_usd=Decimal("5.00"))
    dead = live_run()
    MigrationRun.objects.filter(pk=dead.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    # when
    response = start({"dry_run": False, "sources": ["usd_balance"], "notify": False})
    # then
    assert response.status_code == 202
    dead.refresh_from_db()
    assert dead.status == RunStatus.FAILED
    assert dead.error.startswith("Abandoned")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_starts_at_the_same_moment_make_one_run():
    # given: eight threads, each its own connection, starting the same source at once
    barrier = threading.Barrier(8)
    outcomes = []

    def starter():
        try:
            barrier.wait()
            run = migration_run_start(
                sources=["usd_balance"], mode=RunMode.EXECUTE, parameters={"rates": {}}
            )
            outcomes.append(run.pk)
        except RunAlreadyActive:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=starter) for _ in range(8)]
    # when
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then
    assert outcomes.count("refused") == 7
    assert MigrationRun.objects.filter(status=RunStatus.RUNNING).count() == 1


# --- GET a run ----------------------------------------------------------------------------


def test_an_unknown_run_is_404(staff_client):
    assert_error_shape(staff_client.get(run_url(999999)), 404, "not_found")


def test_a_run_shows_its_progress_while_it_runs(staff_client):
    # given: a fanned-out run with one of two batches done
    run = live_run(total=5, processed=3)
    MigrationBatch.objects.create(
        run=run,
        source="usd_balance",
        number=0,
        user_ids=[1, 2, 3],
        size=3,
        status=BatchStatus.DONE,
        stats={"users": {"migrated": 3}, "credits": "9.00"},
    )
    MigrationBatch.objects.create(run=run, source="usd_balance", number=1, user_ids=[4, 5], size=2)
    # when
    body = staff_client.get(run_url(run.pk)).json()
    # then
    assert body["status"] == "running"
    assert body["progress"] == {
        "processed": 3,
        "total": 5,
        "percent": 60.0,
        "batches_done": 1,
        "batches_total": 2,
    }
    assert body["stats"]["credits"] == "9.00"
    assert body["stats"]["users"] == {"migrated": 3}


def test_nothing_migrated_twice_when_the_api_runs_again(start):
    # given
    LegacyBillingFactory(balance_usd=Decimal("5.00"))
    start({"dry_run": False, "sources": ["usd_balance"], "notify": False})
    entries = CreditTransaction.objects.count()
    # when
    response = start({"dry_run": False, "sources": ["usd_balance"], "notify": False})
    # then
    assert response.status_code == 202
    assert CreditTransaction.objects.count() == entries
    second = MigrationRun.objects.get(pk=response.json()["run_id"])
    assert second.stats["users"] == {"skipped": 1}
    assert UserMigration.objects.get().status == MigrationStatus.COMPLETED


def test_staff_may_follow_any_run_and_users_may_not(user_client, staff_client):
    run = live_run(triggered_by=UserFactory())
    assert staff_client.get(run_url(run.pk)).status_code == 200
    assert_error_shape(user_client.get(run_url(run.pk)), 403, "permission_denied")
