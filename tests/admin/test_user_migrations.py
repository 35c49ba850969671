"""User migrations in the admin: filters, the "Roll back" action with its confirmation page (users,
credits, who needs force), "Retry failed", readable rollback data, and the dashboard."""

import io
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone

from billing.models import LegacyBilling
from credits.models import CreditAccount, CreditTransaction, EntryKind
from credits.services import credit_spend
from migrations_app.models import (
    MigrationRun,
    MigrationStatus,
    Notification,
    NotificationKind,
    NotificationStatus,
    RunMode,
    RunStatus,
    UserMigration,
)
from tests.admin.conftest import changelist_url, client_for, messages_of, post_action
from tests.factories import LegacyBillingFactory, StaffUserFactory
from tests.helpers import ledger_snapshot

pytestmark = pytest.mark.django_db

MIGRATIONS = changelist_url("migrations_app.usermigration")
DASHBOARD = reverse("admin:migrations_app_dashboard")


@pytest.fixture
def migrated(tmp_path):
    """usd_balance migrated: ada 30.00 (untouched), ben 12.50 (spent 10.00), cy failed."""
    LegacyBillingFactory(user__username="ada", balance_usd=Decimal("30.00"))
    ben = LegacyBillingFactory(user__username="ben", balance_usd=Decimal("12.50")).user
    LegacyBillingFactory(user__username="cy", balance_usd=Decimal("-5.00"))
    _execute(tmp_path)
    credit_spend(
        account=CreditAccount.objects.get(user=ben),
        amount=Decimal("10.00"),
        idempotency_key="ben-usage",
    )
    rows = {row.user.username: row for row in UserMigration.objects.select_related("user")}
    return rows["ada"], rows["ben"], rows["cy"]


def _execute(tmp_path, *options):
    try:
        call_command(
            "migrate_credits",
            "--execute",
            "--yes",
            "--source=usd_balance",
            f"--backup-dir={tmp_path}",
            *options,
            stdout=io.StringIO(),
            stderr=io.StringIO(),
        )
    except CommandError as error:  # exit 1: cy failed, as intended
        assert error.returncode == 1


def roll_back(client, rows, **data):
    return post_action(client, MIGRATIONS, "roll_back", [row.pk for row in rows], **data)


# --- list and page ------------------------------------------------------------------------


def test_list_filters_by_status_and_source(super_admin_client, migrated):
    ada, ben, cy = migrated

    # when
    failed = super_admin_client.get(MIGRATIONS, {"status__exact": "FAILED"})
    by_source = super_admin_client.get(MIGRATIONS, {"source": "usd_balance"})
    none = super_admin_client.get(MIGRATIONS, {"source": "user_fields"})

    # then
    assert [row.pk for row in failed.context["cl"].result_list] == [cy.pk]
    assert {row.pk for row in by_source.context["cl"].result_list} == {ada.pk, ben.pk, cy.pk}
    assert list(none.context["cl"].result_list) == []
    titles = {spec.title for spec in failed.context["cl"].filter_specs}
    assert {"status", "source"} <= titles


def test_the_page_shows_rollback_data_and_error_readably(super_admin_client, migrated):
    ada, _, cy = migrated

    # when
    page = super_admin_client.get(
        reverse("admin:migrations_app_usermigration_change", args=[ada.pk])
    )
    failed = super_admin_client.get(
        reverse("admin:migrations_app_usermigration_change", args=[cy.pk])
    )

    # then
    assert page.status_code == 200
    assert (
        '<pre class="pretty-json">{\n  &quot;balance_uah&quot;: &quot;0.00&quot;,\n'
        "  &quot;balance_usd&quot;: &quot;30.00&quot;," in page.content.decode()
    )
    assert "<pre>negative legacy balance (-5.00 USD, 0.00 UAH)</pre>" in failed.content.decode()


def test_a_credit_admin_cannot_see_migrations(credit_admin_client, migrated):
    # when
    listing = credit_admin_client.get(MIGRATIONS)
    dashboard = credit_admin_client.get(DASHBOARD)

    # then
    assert (listing.status_code, dashboard.status_code) == (403, 403)


def test_viewers_without_rollback_permission_see_no_actions(migrated):
    # given
    viewer = StaffUserFactory(permissions=["migrations_app.view_usermigration"])

    # when
    response = client_for(viewer).get(MIGRATIONS)

    # then
    assert response.status_code == 200
    assert response.context["action_form"] is None


# --- roll back ----------------------------------------------------------------------------


def test_the_confirmation_lists_users_credits_and_who_needs_force(super_admin_client, migrated):
    ada, ben, cy = migrated
    before = ledger_snapshot()

    # when
    response = roll_back(super_admin_client, [ada, ben, cy])

    # then
    assert response.status_code == 200
    lines = {line.row.user.username: line for line in response.context["lines"]}
    assert (lines["ada"].credits, lines["ada"].needs_force) == (Decimal("30.00"), False)
    assert (lines["ben"].credits, lines["ben"].balance, lines["ben"].needs_force) == (
        Decimal("12.50"),
        Decimal("2.50"),
        True,
    )
    assert (lines["cy"].is_possible, lines["cy"].note) == (False, "not migrated (failed)")
    assert response.context["to_reverse"] == Decimal("42.50")
    content = response.content.decode()
    assert "2 of 3 selected migrations can be rolled back, reversing <strong>42.50</strong>" in (
        content
    )
    assert "<strong>1</strong> needs force" in content
    assert "has spent migrated credits (2.50 of 12.50 left)" in content
    assert 'class="submit-row"' in content
    assert ledger_snapshot() == before


def test_confirming_rolls_back_and_refuses_those_needing_force(
    super_admin_client, super_admin, migrated
):
    ada, ben, _ = migrated
    ben_before = CreditAccount.objects.get(user=ben.user).balance

    # when
    response = roll_back(
        super_admin_client, [ada, ben], apply="1", reason="Customer asked to stay on legacy"
    )

    # then
    assert response.status_code == 302
    assert messages_of(response) == [
        "Rolled back ada@example.com (usd_balance): 30.00 credits reversed.",
        "Refused for ben@example.com (usd_balance): has spent migrated credits (12.50 granted, "
        "2.50 left); --force reverses what is left and records the shortfall",
    ]
    ada.refresh_from_db()
    ben.refresh_from_db()
    assert (ada.status, ben.status) == (MigrationStatus.ROLLED_BACK, MigrationStatus.COMPLETED)
    assert LegacyBilling.objects.get(user=ada.user).balance_usd == Decimal("30.00")
    reversal = CreditTransaction.objects.get(kind=EntryKind.REVERSAL)
    assert (reversal.amount, reversal.actor_id, reversal.reason) == (
        Decimal("-30.00"),
        super_admin.pk,
        "Customer asked to stay on legacy",
    )
    assert CreditAccount.objects.get(user=ada.user).balance == Decimal("0.00")
    assert CreditAccount.objects.get(user=ben.user).balance == ben_before
    run = MigrationRun.objects.get(mode=RunMode.ROLLBACK)
    assert (run.triggered_by_id, run.parameters["force"]) == (super_admin.pk, False)


def test_the_users_rolled_back_are_emailed_when_asked(
    super_admin_client, migrated, mailoutbox, django_capture_on_commit_callbacks
):
    ada, ben, _ = migrated

    # when ada is rolled back with "Email the users" ticked (the page's default), and ben is
    # refused (he needs force)
    page = roll_back(super_admin_client, [ada, ben])
    assert page.context["form"]["notify"].initial is True
    with django_capture_on_commit_callbacks(execute=True):
        roll_back(super_admin_client, [ada, ben], apply="1", reason="Asked", notify="on")

    # then ada alone gets the rollback email, once
    assert [message.to for message in mailoutbox] == [["ada@example.com"]]
    assert mailoutbox[0].subject == "Your account was rolled back to your previous billing"
    notification = Notification.objects.get(kind=NotificationKind.ROLLED_BACK)
    assert (notification.user_id, notification.kind, notification.status) == (
        ada.user_id,
        NotificationKind.ROLLED_BACK,
        NotificationStatus.SENT,
    )


def test_no_email_when_the_box_is_cleared(
    super_admin_client, migrated, mailoutbox, django_capture_on_commit_callbacks
):
    ada, _, _ = migrated

    # when
    with django_capture_on_commit_callbacks(execute=True):
        roll_back(super_admin_client, [ada], apply="1", reason="Quietly")

    # then rolled back, and nobody emailed
    ada.refresh_from_db()
    assert ada.status == MigrationStatus.ROLLED_BACK
    assert mailoutbox == []
    assert not Notification.objects.filter(kind=NotificationKind.ROLLED_BACK).exists()


def test_a_super_admin_forces_the_rollback(super_admin_client, migrated):
    _, ben, _ = migrated

    # when
    response = roll_back(super_admin_client, [ben], apply="1", reason="Fraud", force="on")

    # then
    assert messages_of(response) == [
        "Rolled back ben@example.com (usd_balance): 2.50 credits reversed; shortfall 10.00."
    ]
    ben.refresh_from_db()
    assert ben.status == MigrationStatus.ROLLED_BACK
    assert ben.rollback_data["rollback"]["shortfall"] == "10.00"
    assert CreditAccount.objects.get(user=ben.user).balance == Decimal("0.00")


def test_force_needs_the_super_admin_permission(migrated):
    _, ben, _ = migrated
    operator = StaffUserFactory(
        permissions=["migrations_app.view_usermigration", "migrations_app.rollback_migration"]
    )
    before = ledger_snapshot()

    # when
    response = roll_back(client_for(operator), [ben], apply="1", reason="Fraud", force="on")

    # then
    assert response.status_code == 200
    assert "Only a billing super admin may force a rollback." in response.content.decode()
    ben.refresh_from_db()
    assert ben.status == MigrationStatus.COMPLETED
    assert ledger_snapshot() == before


def test_a_rollback_needs_a_reason(super_admin_client, migrated):
    ada, _, _ = migrated
    before = ledger_snapshot()

    # when
    response = roll_back(super_admin_client, [ada], apply="1", reason="  ")

    # then
    assert "Nothing was rolled back: correct the errors below." in response.content.decode()
    ada.refresh_from_db()
    assert ada.status == MigrationStatus.COMPLETED
    assert ledger_snapshot() == before


def test_a_credit_admin_cannot_roll_back(credit_admin_client, migrated):
    ada, _, _ = migrated
    before = ledger_snapshot()

    # when
    response = roll_back(credit_admin_client, [ada], apply="1", reason="No")

    # then
    assert response.status_code == 403
    ada.refresh_from_db()
    assert ada.status == MigrationStatus.COMPLETED
    assert ledger_snapshot() == before


# --- retry failed -------------------------------------------------------------------------


def test_retry_failed_migrates_the_fixed_users(super_admin_client, super_admin, migrated):
    ada, _, cy = migrated
    LegacyBilling.objects.filter(user=cy.user).update(balance_usd=Decimal("5.00"))

    # when
    response = post_action(super_admin_client, MIGRATIONS, "retry_failed", [ada.pk, cy.pk])

    # then
    assert messages_of(response) == [
        "Migrated cy@example.com (usd_balance): 5.00 credits granted.",
        "1 selected migrations had not failed; left alone.",
    ]
    cy.refresh_from_db()
    assert (cy.status, cy.initial_credits_granted, cy.attempts) == (
        MigrationStatus.COMPLETED,
        Decimal("5.00"),
        2,
    )
    assert CreditAccount.objects.get(user=cy.user).balance == Decimal("5.00")
    assert LegacyBilling.objects.get(user=cy.user).balance_usd == Decimal("0.00")
    run = MigrationRun.objects.order_by("-pk").first()
    assert (run.mode, run.triggered_by_id, run.parameters["retry"]) == (
        RunMode.EXECUTE,
        super_admin.pk,
        True,
    )


def test_a_second_retry_keeps_the_rates_and_options_of_the_first_run(super_admin_client, tmp_path):
    # given dee failed in a run with --rate USD=2 --keep-legacy
    dee = LegacyBillingFactory(user__username="dee", balance_usd=Decimal("-5.00")).user
    _execute(tmp_path, "--rate=USD=2", "--keep-legacy")
    row = UserMigration.objects.get(user=dee)

    # when a first retry fails again, the balance is fixed, and a second retry runs
    post_action(super_admin_client, MIGRATIONS, "retry_failed", [row.pk])
    row.refresh_from_db()
    assert (row.status, row.attempts) == (MigrationStatus.FAILED, 2)
    LegacyBilling.objects.filter(user=dee).update(balance_usd=Decimal("5.00"))
    response = post_action(super_admin_client, MIGRATIONS, "retry_failed", [row.pk])

    # then it migrated at USD=2 and left the legacy balance alone, as the first run would have
    assert messages_of(response)[-1] == (
        "Migrated dee@example.com (usd_balance): 10.00 credits granted."
    )
    assert CreditAccount.objects.get(user=dee).balance == Decimal("10.00")
    assert LegacyBilling.objects.get(user=dee).balance_usd == Decimal("5.00")


def test_retry_reports_a_user_that_fails_again(super_admin_client, migrated):
    _, _, cy = migrated

    # when
    response = post_action(super_admin_client, MIGRATIONS, "retry_failed", [cy.pk])

    # then
    assert messages_of(response) == [
        "Failed for cy@example.com (usd_balance): negative legacy balance (-5.00 USD, 0.00 UAH)"
    ]
    cy.refresh_from_db()
    assert (cy.status, cy.attempts) == (MigrationStatus.FAILED, 2)


def test_retry_is_refused_while_an_execute_run_of_the_source_is_live(super_admin_client, migrated):
    _, _, cy = migrated
    LegacyBilling.objects.filter(user=cy.user).update(balance_usd=Decimal("5.00"))
    live = MigrationRun.objects.create(
        source="usd_balance",
        mode=RunMode.EXECUTE,
        status=RunStatus.RUNNING,
        heartbeat_at=timezone.now(),
    )
    runs_before = MigrationRun.objects.count()

    # when
    response = post_action(super_admin_client, MIGRATIONS, "retry_failed", [cy.pk])

    # then nothing is retried, and the staff member is told why
    assert messages_of(response) == [
        "An execute run of these sources is already running; wait for it to finish."
    ]
    cy.refresh_from_db()
    assert (cy.status, cy.attempts) == (MigrationStatus.FAILED, 1)
    assert not CreditAccount.objects.filter(user=cy.user, balance__gt=0).exists()
    assert MigrationRun.objects.count() == runs_before

    # and once that run is over, the retry goes ahead
    live.status = RunStatus.COMPLETED
    live.save(update_fields=["status"])
    response = post_action(super_admin_client, MIGRATIONS, "retry_failed", [cy.pk])
    assert messages_of(response)[-1] == (
        "Migrated cy@example.com (usd_balance): 5.00 credits granted."
    )
    cy.refresh_from_db()
    assert cy.status == MigrationStatus.COMPLETED


def test_retry_with_nothing_failed_says_so(super_admin_client, migrated):
    ada, _, _ = migrated

    # when
    response = post_action(super_admin_client, MIGRATIONS, "retry_failed", [ada.pk])

    # then
    assert messages_of(response) == ["None of the selected migrations failed."]


# --- dashboard ----------------------------------------------------------------------------


def test_the_dashboard_shows_counts_totals_failures_and_runs(super_admin_client, migrated):
    # when
    response = super_admin_client.get(DASHBOARD)

    # then
    assert response.status_code == 200
    row = next(item for item in response.context["sources"] if item["source"] == "usd_balance")
    assert dict(row["statuses"]) == {
        "Pending": 0,
        "In progress": 0,
        "Completed": 2,
        "Failed": 1,
        "Rolled back": 0,
    }
    assert row["credits_granted"] == Decimal("42.50")
    assert row["legacy"] == [("USD", Decimal("42.50"))]
    assert row["discrepancies"] == 0
    assert [failure.user.username for failure in response.context["failures"]] == ["cy"]
    assert [run.mode for run in response.context["runs"]] == [RunMode.EXECUTE]
    content = response.content.decode()
    assert "<svg" in content
    assert "usd_balance: Completed: 2" in content
    assert "usd_balance: Failed: 1" in content
    assert "negative legacy balance" in content
    assert 'class="breadcrumbs"' in content


def test_the_index_links_to_the_dashboard(super_admin_client, credit_admin_client):
    # when
    super_index = super_admin_client.get(reverse("admin:index"))
    credit_index = credit_admin_client.get(reverse("admin:index"))

    # then
    assert f'href="{DASHBOARD}"' in super_index.content.decode()
    assert f'href="{DASHBOARD}"' not in credit_index.content.decode()
