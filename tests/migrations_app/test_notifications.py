"""Emails about the migration: rendered from templates (subject, text and HTML), sent after
the commit through Celery, and at most once per user and kind, whatever runs twice."""

import io
from decimal import Decimal

import pytest
from django.core import mail
from django.core.management import call_command

from billing.models import UserProfile
from migrations_app.models import (
    MigrationBatch,
    Notification,
    NotificationKind,
    NotificationStatus,
)
from migrations_app.notifications import notification_email, notifications_send
from migrations_app.run_request import RunRequest
from migrations_app.services import migration_batch_process, migration_run_launch
from tests.factories import LegacyAccountFactory, LegacyBillingFactory, UserFactory
from tests.helpers import sources_args

pytestmark = pytest.mark.django_db


def launch(django_capture_on_commit_callbacks, *, notify=True, sources=("usd_balance",)):
    request = RunRequest(sources=list(sources), batch_size=2, notify=notify, dry_run=False)
    with django_capture_on_commit_callbacks(execute=True):
        return migration_run_launch(request=request)


def emails_to(user):
    return [message for message in mail.outbox if message.to == [user.email]]


def test_a_migrated_user_is_told_the_credits_they_received(django_capture_on_commit_callbacks):
    # given
    ada = LegacyBillingFactory(
        user__username="ada", user__first_name="Ada", balance_usd=Decimal("12.50")
    ).user
    # when
    launch(django_capture_on_commit_callbacks)
    # then
    (email,) = emails_to(ada)
    assert email.subject == "Your credits are ready: you received 12.50 credits"
    assert "Hello Ada," in email.body
    assert "you received 12.50 credits" in email.body
    ((html, mimetype),) = email.alternatives
    assert mimetype == "text/html"
    assert "<strong>you received 12.50 credits</strong>" in html
    assert "Hello Ada," in html
    notification = Notification.objects.get(user=ada)
    assert (notification.kind, notification.status) == (
        NotificationKind.COMPLETE,
        NotificationStatus.SENT,
    )


def test_a_user_whose_migration_failed_is_told_their_service_is_uninterrupted(
    django_capture_on_commit_callbacks,
):
    # given
    overdrawn = LegacyBillingFactory(balance_usd=Decimal("-3.00")).user
    # when
    launch(django_capture_on_commit_callbacks)
    # then
    (email,) = emails_to(overdrawn)
    assert email.subject == "We hit a problem moving your account to credits"
    assert "Your service is uninterrupted" in email.body
    assert "<strong>Your service is uninterrupted</strong>" in email.alternatives[0][0]


def test_the_complete_email_waits_for_every_source_with_data_for_the_user(
    django_capture_on_commit_callbacks,
):
    # given: a user with data in both default sources
    both = LegacyAccountFactory(credits_balance=Decimal("20.00")).user
    LegacyBillingFactory(user=both, balance_usd=Decimal("5.00"))
    # when: one source, then the other
    launch(django_capture_on_commit_callbacks, sources=("user_fields",))
    after_first = len(emails_to(both))
    launch(django_capture_on_commit_callbacks, sources=("usd_balance",))
    # then: one email, with the credits of both
    assert after_first == 0
    (email,) = emails_to(both)
    assert "you received 25.00 credits" in email.body


def test_a_batch_or_a_send_task_running_twice_sends_nothing_twice(
    django_capture_on_commit_callbacks,
):
    # given: a finished run that sent its emails
    users = [LegacyBillingFactory(balance_usd=Decimal(n)).user for n in (1, 2, 3)]
    LegacyBillingFactory(balance_usd=Decimal("-1"))
    run = launch(django_capture_on_commit_callbacks)
    sent = len(mail.outbox)
    assert sent == 4
    # when: every batch comes back, and the send task runs again for every notification
    with django_capture_on_commit_callbacks(execute=True):
        for batch_id in MigrationBatch.objects.filter(run=run).values_list("pk", flat=True):
            migration_batch_process(batch_id=batch_id)
        notifications_send(notification_ids=list(Notification.objects.values_list("pk", flat=True)))
    # then
    assert len(mail.outbox) == sent
    assert [len(emails_to(user)) for user in users] == [1, 1, 1]
    assert Notification.objects.count() == 4


def test_a_second_run_does_not_tell_the_failed_user_again(django_capture_on_commit_callbacks):
    # given: a user who failed once and was told
    overdrawn = LegacyBillingFactory(balance_usd=Decimal("-3.00")).user
    launch(django_capture_on_commit_callbacks)
    # when: the next run fails them again
    launch(django_capture_on_commit_callbacks)
    # then
    assert len(emails_to(overdrawn)) == 1


def test_no_notify_sends_nothing_and_records_nothing(django_capture_on_commit_callbacks):
    # given
    LegacyBillingFactory(balance_usd=Decimal("5.00"))
    LegacyBillingFactory(balance_usd=Decimal("-5.00"))
    # when
    launch(django_capture_on_commit_callbacks, notify=False)
    # then
    assert mail.outbox == []
    assert not Notification.objects.exists()


def test_the_command_notifies_unless_no_notify(migrate, django_capture_on_commit_callbacks):
    # given
    quiet = LegacyBillingFactory(balance_usd=Decimal("5.00")).user
    told = LegacyBillingFactory(balance_usd=Decimal("6.00")).user
    # when
    with django_capture_on_commit_callbacks(execute=True):
        migrate(
            "--execute",
            "--yes",
            "--no-notify",
            "--user",
            str(quiet.pk),
            *sources_args("usd_balance"),
        )
        migrate("--execute", "--yes", "--user", str(told.pk), *sources_args("usd_balance"))
    # then
    assert emails_to(quiet) == []
    (email,) = emails_to(told)
    assert "6.00 credits" in email.subject


def test_a_rolled_back_user_is_told(migrate, django_capture_on_commit_callbacks):
    # given: a migrated user
    user = LegacyBillingFactory(balance_usd=Decimal("5.00")).user
    with django_capture_on_commit_callbacks(execute=True):
        migrate("--execute", "--yes", "--no-notify", *sources_args("usd_balance"))
        # when
        migrate("--rollback", "--yes", "--user", str(user.pk), *sources_args("usd_balance"))
        migrate("--rollback", "--yes", "--user", str(user.pk), *sources_args("usd_balance"))
    # then: told once (the second rollback found nothing to roll back)
    (email,) = emails_to(user)
    assert email.subject == "Your account was rolled back to your previous billing"
    assert "balance and plan are restored" in email.body
    assert "<strong>Your account was rolled back</strong>" in email.alternatives[0][0]


def test_announce_migration_tells_users_not_yet_migrated_once(
    django_capture_on_commit_callbacks,
):
    # given: two users to migrate, one already migrated, one without legacy data
    waiting = [LegacyBillingFactory(balance_usd=Decimal(n)).user for n in (1, 2)]
    done = LegacyBillingFactory(balance_usd=Decimal("3")).user
    UserProfile.objects.create(user=done, migration_completed_at="2026-11-01T00:00:00Z")
    UserFactory()
    out = io.StringIO()
    # when: announced twice
    with django_capture_on_commit_callbacks(execute=True):
        call_command("announce_migration", "--source", "usd_balance", stdout=out)
        call_command("announce_migration", "--source", "usd_balance", stdout=out)
    # then
    assert sorted(message.to[0] for message in mail.outbox) == sorted(u.email for u in waiting)
    assert mail.outbox[0].subject == "Your balance is moving to credits"
    assert "service continues as usual" in mail.outbox[0].body
    assert "2 users announced (0 had been already)." in out.getvalue()
    assert "0 users announced (2 had been already)." in out.getvalue()


def test_announce_migration_dry_run_sends_nothing(django_capture_on_commit_callbacks):
    LegacyBillingFactory(balance_usd=Decimal("1"))
    out = io.StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("announce_migration", "--dry-run", stdout=out)
    assert "1 users not yet migrated; nothing sent (dry run)." in out.getvalue()
    assert mail.outbox == []
    assert not Notification.objects.exists()


def test_an_email_that_cannot_be_sent_is_marked_failed_and_not_retried():
    # given: a user with no email address
    user = UserFactory(email="")
    notification = Notification.objects.create(user=user, kind=NotificationKind.PROBLEM)
    # when
    sent = notifications_send(notification_ids=[notification.pk, notification.pk])
    # then
    notification.refresh_from_db()
    assert sent == 0
    assert notification.status == NotificationStatus.FAILED
    assert "no email address" in notification.error
    assert mail.outbox == []


@pytest.mark.parametrize("kind", NotificationKind.values)
def test_every_kind_renders_text_and_html(kind):
    user = UserFactory(first_name="Grace")
    email = notification_email(Notification(user=user, kind=kind, context={"credits": "260.00"}))
    assert email.subject and "\n" not in email.subject
    assert "Hello Grace," in email.body
    assert "<html" in email.alternatives[0][0]
    assert "{{" not in email.body + email.alternatives[0][0]
