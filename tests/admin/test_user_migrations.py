"""User migrations in the admin: filters, the "Roll back" action with its confirmation page (users,
credits, what was spent and what force takes back), "Retry failed", readable rollback data, and
the dashboard."""

import io
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone

from billing.models import LegacyBilling
from credits.models import CreditAccount, CreditTransaction, EntryKind
from credits.services import credit_grant, credit_spend
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


def test_the_confirmation_lists_users_credits_and_what_was_spent(super_admin_client, migrated):
    ada, ben, cy = migrated
    before = ledger_snapshot()

    # when
    response = roll_back(super_admin_client, [ada, ben, cy])

    # then
    assert response.status_code == 200
    lines = {line.row.user.username: line for line in response.context["lines"]}
    assert (lines["ada"].credits, lines["ada"].reversible, lines["ada"].has_spent) == (
        Decimal("30.00"),
        Decimal("30.00"),
        False,
    )
    assert (lines["ben"].credits, lines["ben"].balance, lines["ben"].spent) == (
        Decimal("12.50"),
        Decimal("2.50"),
        Decimal("10.00"),
    )
    assert (lines["cy"].is_possible, lines["cy"].note) == (False, "not migrated (failed)")
    # ben has nothing but what is left of his migration: force can take nothing more
    assert (lines["ben"].reversible, lines["ben"].recoverable, lines["ben"].shortfall) == (
        Decimal("2.50"),
        Decimal("0.00"),
        Decimal("10.00"),
    )
    # The counts agree with what rolling back does: ada and ben (what is left of his), cy not.
    totals = response.context["totals"]
    assert (totals.ready, totals.ready_credits) == (2, Decimal("32.50"))
    assert (totals.spent_users, totals.spent, totals.recoverable, totals.shortfall) == (
        1,
        Decimal("10.00"),
        Decimal("0.00"),
        Decimal("10.00"),
    )
    assert (totals.blocked, totals.skipped) == (0, 1)
    content = response.content.decode()
    assert (
        "<strong>2</strong> of 3 selected migrations can be rolled back, reversing the "
        "<strong>32.50</strong> credits left of them." in content
    )
    assert "users who spent <strong>10.00</strong> migrated credits: those stay spent" in content
    assert "records a shortfall of <strong>10.00</strong>" in content
    assert "2.50 (with force 2.50, shortfall 10.00)" in content
    assert "the user has spent 10.00 of the 12.50 migrated credits: they stay spent" in content
    assert "--force" not in content and "--rollback" not in content
    assert 'class="submit-row"' in content
    assert ledger_snapshot() == before


def test_confirming_rolls_back_what_is_left_and_what_was_spent_stays_spent(
    super_admin_client, super_admin, migrated
):
    ada, ben, _ = migrated

    # when
    response = roll_back(
        super_admin_client, [ada, ben], apply="1", reason="Customer asked to stay on legacy"
    )

    # then
    assert response.status_code == 302
    assert messages_of(response) == [
        "Rolled back ada@example.com (usd_balance): 30.00 credits reversed.",
        "Rolled back ben@example.com (usd_balance): 2.50 credits reversed; 10.00 spent before "
        "the rollback; shortfall 10.00.",
    ]
    ada.refresh_from_db()
    ben.refresh_from_db()
    assert (ada.status, ben.status) == (MigrationStatus.ROLLED_BACK, MigrationStatus.ROLLED_BACK)
    assert LegacyBilling.objects.get(user=ada.user).balance_usd == Decimal("30.00")
    reversals = CreditTransaction.objects.filter(kind=EntryKind.REVERSAL).order_by("pk")
    assert [(r.amount, r.actor_id, r.reason) for r in reversals] == [
        (Decimal("-30.00"), super_admin.pk, "Customer asked to stay on legacy"),
        (Decimal("-2.50"), super_admin.pk, "Customer asked to stay on legacy"),
    ]
    assert CreditAccount.objects.get(user=ada.user).balance == Decimal("0.00")
    assert CreditAccount.objects.get(user=ben.user).balance == Decimal("0.00")
    assert ben.rollback_data["rollback"]["spent_before_rollback"] == "10.00"
    run = MigrationRun.objects.get(mode=RunMode.ROLLBACK)
    assert (run.triggered_by_id, run.parameters["force"]) == (super_admin.pk, False)
    assert run.stats["spent_before_rollback"] == "10.00"


def test_the_users_rolled_back_are_emailed_when_asked(
    super_admin_client, migrated, mailoutbox, django_capture_on_commit_callbacks
):
    ada, ben, _ = migrated

    # when ada is rolled back with "Email the users" ticked (the page's default), and ben
    # without it
    page = roll_back(super_admin_client, [ada, ben])
    assert page.context["form"]["notify"].initial is True
    with django_capture_on_commit_callbacks(execute=True):
        roll_back(super_admin_client, [ada], apply="1", reason="Asked", notify="on")
        roll_back(super_admin_client, [ben], apply="1", reason="Asked")

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
    # ben bought 8.00 credits after spending 10.00 of his 12.50 migrated ones
    credit_grant(
        account=CreditAccount.objects.get(user=ben.user),
        amount=Decimal("8.00"),
        idempotency_key="ben-purchase",
        kind=EntryKind.PURCHASE,
    )

    # when
    response = roll_back(super_admin_client, [ben], apply="1", reason="Fraud", force="on")

    # then: what is left of the migration (2.50) and 8.00 of the 10.00 spent, from the purchase
    assert messages_of(response) == [
        "Rolled back ben@example.com (usd_balance): 10.50 credits reversed; 10.00 spent before "
        "the rollback; 8.00 taken from the account's other credits; shortfall 2.00."
    ]
    ben.refresh_from_db()
    assert ben.status == MigrationStatus.ROLLED_BACK
    figures = ben.rollback_data["rollback"]
    assert (figures["spent_before_rollback"], figures["taken_from_account"]) == ("10.00", "8.00")
    assert (figures["shortfall"], figures["forced"]) == ("2.00", True)
    reversal = CreditTransaction.objects.get(kind=EntryKind.REVERSAL)
    assert (reversal.amount, reversal.metadata["taken_from_account"]) == (Decimal("-10.50"), "8.00")
    assert reversal.metadata["shortfall"] == "2.00"
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
    # the advice speaks the admin's words, never the command's flags
    assert "1 failed: their errors are listed below" in content
    assert "Retry failed" in content
    assert "--" not in response.context["advice"]


def test_the_index_links_to_the_dashboard(super_admin_client, credit_admin_client):
    # when
    super_index = super_admin_client.get(reverse("admin:index"))
    credit_index = credit_admin_client.get(reverse("admin:index"))

    # then
    assert f'href="{DASHBOARD}"' in super_index.content.decode()
    assert f'href="{DASHBOARD}"' not in credit_index.content.decode()


# --- Roll back and Retry as buttons on a migration's page ---------------------------------


def change_url(row):
    return reverse("admin:migrations_app_usermigration_change", args=[row.pk])


def object_action_url(row, action):
    return reverse("admin:migrations_app_usermigration_object_action", args=[row.pk, action])


def change_messages(row):
    from django.contrib.admin.models import LogEntry
    from django.contrib.contenttypes.models import ContentType

    return [
        entry.get_change_message()
        for entry in LogEntry.objects.filter(
            content_type=ContentType.objects.get_for_model(row), object_id=str(row.pk)
        ).order_by("pk")
    ]


def test_the_page_offers_roll_back_on_a_completed_and_retry_on_a_failed_migration(
    super_admin_client, migrated
):
    ada, _, cy = migrated

    # when
    completed = super_admin_client.get(change_url(ada)).content.decode()
    failed = super_admin_client.get(change_url(cy)).content.decode()

    # then
    assert object_action_url(ada, "roll_back") in completed
    assert object_action_url(ada, "retry_failed") not in completed
    assert object_action_url(cy, "retry_failed") in failed
    assert object_action_url(cy, "roll_back") not in failed


def test_a_viewer_sees_no_buttons_and_is_refused_their_urls(migrated):
    ada, _, cy = migrated
    viewer = client_for(StaffUserFactory(permissions=["migrations_app.view_usermigration"]))
    before = ledger_snapshot()

    # when
    page = viewer.get(change_url(ada)).content.decode()
    rollback = viewer.post(
        object_action_url(ada, "roll_back"), {"apply": "1", "reason": "r", "notify": ""}
    )
    retry = viewer.post(object_action_url(cy, "retry_failed"))

    # then
    assert "/do/" not in page
    assert (rollback.status_code, retry.status_code) == (403, 403)
    assert ledger_snapshot() == before


def test_roll_back_from_the_page_confirms_then_rolls_back_and_logs(
    super_admin_client, super_admin, migrated
):
    ada, _, _ = migrated
    before = ledger_snapshot()

    # when
    confirmation = super_admin_client.get(object_action_url(ada, "roll_back"))
    after_confirmation = ledger_snapshot()
    response = super_admin_client.post(
        object_action_url(ada, "roll_back"),
        {"apply": "1", "reason": "Asked to stay on legacy", "notify": ""},
    )

    # then
    assert confirmation.status_code == 200
    content = confirmation.content.decode()
    assert "reversing the <strong>30.00</strong> credits left of them" in content
    assert f'href="{change_url(ada)}" class="closelink"' in content
    assert after_confirmation == before  # the confirmation writes nothing
    assert (response.status_code, response["Location"]) == (302, change_url(ada))
    ada.refresh_from_db()
    assert ada.status == MigrationStatus.ROLLED_BACK
    assert CreditAccount.objects.get(user=ada.user).balance == Decimal("0.00")
    assert change_messages(ada) == [
        "Rolled back ada@example.com (usd_balance): 30.00 credits reversed. "
        "Reason: Asked to stay on legacy"
    ]


def test_retry_from_the_page_confirms_then_migrates_and_logs(super_admin_client, migrated):
    _, _, cy = migrated
    LegacyBilling.objects.filter(user=cy.user).update(balance_usd=Decimal("5.00"))
    before = ledger_snapshot()

    # when
    confirmation = super_admin_client.get(object_action_url(cy, "retry_failed"))
    after_confirmation = ledger_snapshot()
    response = super_admin_client.post(object_action_url(cy, "retry_failed"))

    # then
    assert "Migrate cy@example.com from usd_balance again: attempt 2." in (
        confirmation.content.decode()
    )
    assert after_confirmation == before
    assert (response.status_code, response["Location"]) == (302, change_url(cy))
    cy.refresh_from_db()
    assert (cy.status, cy.attempts) == (MigrationStatus.COMPLETED, 2)
    assert CreditAccount.objects.get(user=cy.user).balance == Decimal("5.00")
    assert change_messages(cy) == [
        "Retried: Migrated cy@example.com (usd_balance): 5.00 credits granted."
    ]


# --- a customer found before migration ----------------------------------------------------

FIND = reverse("admin:migrations_app_usermigration_find")


def migrate_user_url(user):
    return reverse("admin:migrations_app_usermigration_migrate_user", args=[user.pk])


@pytest.fixture
def legacy_customer(db):
    """dora: 30.00 USD of legacy balance, never migrated, no credit account."""
    return LegacyBillingFactory(
        user__username="dora", user__email="dora@example.com", balance_usd=Decimal("30.00")
    ).user


def test_a_legacy_customer_is_found_with_what_migrating_would_give(
    super_admin_client, legacy_customer
):
    before = ledger_snapshot()

    # when
    response = super_admin_client.get(FIND, {"q": "DORA@example.com"})

    # then
    assert response.status_code == 200
    [(user, account, lines, migratable)] = response.context["users"]
    assert (user, account, migratable) == (legacy_customer, None, True)
    usd = next(line for line in lines if line.source == "usd_balance")
    assert (usd.status, usd.credits, usd.legacy_amounts) == (
        "not migrated",
        Decimal("30.00"),
        {"USD": "30.00"},
    )
    content = response.content.decode()
    assert "No credit account yet." in content
    assert "30.00 if migrated now" in content
    assert "Migrate this user" in content
    assert ledger_snapshot() == before  # the preview writes nothing
    assert not UserMigration.objects.filter(user=legacy_customer).exists()


def test_a_migrated_customer_shows_their_migration_and_balance(super_admin_client, migrated):
    _, _, cy = migrated

    # when
    found_ada = super_admin_client.get(FIND, {"q": "ada"}).context["users"]
    found_cy = super_admin_client.get(FIND, {"q": str(cy.user_id)}).context["users"]

    # then
    [(_, account, lines, migratable)] = found_ada
    assert account.balance == Decimal("30.00")
    usd = next(line for line in lines if line.source == "usd_balance")
    assert (usd.status, usd.credits, migratable) == (
        MigrationStatus.COMPLETED,
        Decimal("30.00"),
        False,
    )
    [(_, _, lines, _)] = found_cy
    usd = next(line for line in lines if line.source == "usd_balance")
    assert usd.status == MigrationStatus.FAILED and usd.error


def test_migrate_this_user_migrates_that_user_alone(
    super_admin_client, super_admin, legacy_customer, django_capture_on_commit_callbacks
):
    other = LegacyBillingFactory(user__username="eve", balance_usd=Decimal("7.00")).user

    # when: the run is queued after the commit (Celery runs it inline here)
    with django_capture_on_commit_callbacks(execute=True):
        response = super_admin_client.post(migrate_user_url(legacy_customer))

    # then
    assert response.status_code == 302
    assert messages_of(response)[0].startswith("Migration run #")
    row = UserMigration.objects.get(user=legacy_customer, source="usd_balance")
    assert (row.status, row.initial_credits_granted) == (
        MigrationStatus.COMPLETED,
        Decimal("30.00"),
    )
    assert CreditAccount.objects.get(user=legacy_customer).balance == Decimal("30.00")
    assert not UserMigration.objects.filter(user=other).exists()
    run = MigrationRun.objects.get(mode=RunMode.EXECUTE)
    assert (run.triggered_by_id, run.parameters["users"]) == (super_admin.pk, [legacy_customer.pk])


def test_without_the_run_permission_there_is_no_button_and_the_post_is_refused(legacy_customer):
    viewer = client_for(
        StaffUserFactory(
            permissions=["migrations_app.view_usermigration", "migrations_app.rollback_migration"]
        )
    )
    before = ledger_snapshot()

    # when
    page = viewer.get(FIND, {"q": "dora@example.com"})
    posted = viewer.post(migrate_user_url(legacy_customer))

    # then
    assert "Migrate this user" not in page.content.decode()
    assert posted.status_code == 302
    assert "permission" in messages_of(posted)[0].lower()
    assert ledger_snapshot() == before
    assert not UserMigration.objects.filter(user=legacy_customer).exists()
    assert not MigrationRun.objects.exists()


def test_the_find_page_needs_the_view_permission_and_takes_any_query(
    credit_admin_client, super_admin_client, legacy_customer
):
    # when
    refused = credit_admin_client.get(FIND, {"q": "dora"})
    empty = super_admin_client.get(FIND, {"q": ""})
    odd = super_admin_client.get(FIND, {"q": "x" * 5000 + "\u202e%_'\""})
    huge_id = super_admin_client.get(FIND, {"q": "9" * 40})
    nobody = super_admin_client.get(migrate_user_url(legacy_customer))

    # then
    assert refused.status_code == 403
    assert (empty.status_code, empty.context["users"]) == (200, [])
    assert (odd.status_code, odd.context["users"]) == (200, [])
    assert (huge_id.status_code, huge_id.context["users"]) == (200, [])
    assert nobody.status_code == 403  # a GET never migrates
    assert not UserMigration.objects.filter(user=legacy_customer).exists()
