"""Emails to users about their migration: announced, complete, a problem, rolled back.

A notification is a `Notification` row first, written in the same transaction as what it is
about (a batch's migrations, a rollback), under a unique (user, kind, key): a batch processed
twice or a duplicated task writes no second row. After the commit (`transaction.on_commit`) a
Celery task sends the rows: each is claimed (pending -> sent, one conditional UPDATE that
commits) before its email leaves, so a retried task sends nothing twice. An email that fails to
send is marked failed with the error, not retried: at most once, never twice.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import Sum
from django.template.loader import render_to_string
from django.utils import timezone

from billing.models import UserProfile
from migrations_app.engine.report import Outcome, UserOutcome
from migrations_app.models import (
    MigrationRun,
    MigrationStatus,
    Notification,
    NotificationKind,
    NotificationStatus,
    UserMigration,
)
from migrations_app.task_queue import SEND_NOTIFICATIONS, task_enqueue_on_commit

SEND_CHUNK = 200


def notifications_queue_for_batch(*, run: MigrationRun, outcomes: list[UserOutcome]) -> None:
    """Inside a batch's transaction: 'complete' for users this batch finished migrating, and
    'a problem' for users it recorded FAILED."""
    migrated = [item.user_id for item in outcomes if item.outcome == Outcome.MIGRATED]
    failed = [item.user_id for item in outcomes if item.outcome == Outcome.FAILED]
    complete = list(
        UserProfile.objects.filter(
            user_id__any_of=migrated, migration_completed_at__isnull=False
        ).values_list("user_id", flat=True)
    )
    credits = _credits_granted(complete)
    rows = [
        Notification(
            user_id=user_id,
            kind=NotificationKind.COMPLETE,
            key=f"run:{run.pk}",
            context={"credits": str(credits[user_id])},
            run=run,
        )
        for user_id in complete
    ]
    rows += [
        Notification(user_id=user_id, kind=NotificationKind.PROBLEM, key="", run=run)
        for user_id in failed
    ]
    _queue(rows)


def notifications_queue_rolled_back(*, run: MigrationRun, user_ids: list[int]) -> None:
    """Tell users their migration was rolled back (one email per user and rollback run)."""
    with transaction.atomic():
        _queue(
            [
                Notification(
                    user_id=user_id, kind=NotificationKind.ROLLED_BACK, key=f"run:{run.pk}", run=run
                )
                for user_id in sorted(set(user_ids))
            ]
        )


def notifications_announce(*, user_ids: list[int], key: str = "") -> int:
    """Announce the migration to these users; return how many were not announced before."""
    with transaction.atomic():
        known = set(
            Notification.objects.filter(
                kind=NotificationKind.ANNOUNCEMENT, key=key, user_id__any_of=user_ids
            ).values_list("user_id", flat=True)
        )
        new = [user_id for user_id in user_ids if user_id not in known]
        _queue(
            [
                Notification(user_id=user_id, kind=NotificationKind.ANNOUNCEMENT, key=key)
                for user_id in new
            ]
        )
    return len(new)


def notifications_queue_pending(*, run: MigrationRun) -> None:
    """Queue the run's notifications still pending (their batch's task died before queueing)."""
    ids = list(
        Notification.objects.filter(run=run, status=NotificationStatus.PENDING).values_list(
            "pk", flat=True
        )
    )
    _send_after_commit(ids)


def _queue(rows: list[Notification]) -> None:
    if not rows:
        return
    # A row that exists already (same user, kind and key) is left as it is: sent at most once.
    Notification.objects.bulk_create(rows, ignore_conflicts=True)
    by_kind = defaultdict(list)
    for row in rows:
        by_kind[(row.kind, row.key)].append(row.user_id)
    ids = []
    for (kind, key), user_ids in by_kind.items():
        ids += Notification.objects.filter(
            kind=kind, key=key, user_id__any_of=user_ids, status=NotificationStatus.PENDING
        ).values_list("pk", flat=True)
    _send_after_commit(sorted(ids))


def _send_after_commit(ids: list[int]) -> None:
    for start in range(0, len(ids), SEND_CHUNK):
        task_enqueue_on_commit(SEND_NOTIFICATIONS, ids[start : start + SEND_CHUNK])


def _credits_granted(user_ids: list[int]) -> dict[int, Decimal]:
    totals = dict(
        UserMigration.objects.filter(user_id__any_of=user_ids, status=MigrationStatus.COMPLETED)
        .values("user_id")
        .annotate(total=Sum("initial_credits_granted"))
        .order_by()
        .values_list("user_id", "total")
    )
    # SQLite sums decimals as floats: back to cents.
    return {
        user_id: Decimal(str(totals.get(user_id) or 0)).quantize(Decimal("0.01"))
        for user_id in user_ids
    }


# --- sending ------------------------------------------------------------------------------


def notifications_send(*, notification_ids: list[int]) -> int:
    """Send these notifications, each claimed first; return how many this call sent."""
    sent = 0
    for pk in notification_ids:
        claimed = Notification.objects.filter(pk=pk, status=NotificationStatus.PENDING).update(
            status=NotificationStatus.SENT, sent_at=timezone.now()
        )
        if not claimed:
            continue  # sent (or being sent) by another delivery of this task
        notification = Notification.objects.select_related("user").get(pk=pk)
        try:
            notification_email(notification).send()
        except Exception as error:  # the claim stands: never sent twice
            Notification.objects.filter(pk=pk).update(
                status=NotificationStatus.FAILED, error=f"{type(error).__name__}: {error}"[:2000]
            )
            continue
        sent += 1
    return sent


def notification_email(notification: Notification) -> EmailMultiAlternatives:
    """The email of a notification, rendered from templates/emails/<kind>.{txt,html}."""
    user = notification.user
    if not user.email:
        raise ValueError("the user has no email address")
    context = {
        "user": user,
        "name": user.get_full_name() or user.get_username(),
        "kind": notification.kind,
        **notification.context,
    }
    subject = render_to_string(f"emails/{notification.kind}_subject.txt", context)
    text = render_to_string(f"emails/{notification.kind}.txt", context)
    html = render_to_string(f"emails/{notification.kind}.html", context)
    email = EmailMultiAlternatives(
        subject=" ".join(subject.split()),
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[user.email],
    )
    email.attach_alternative(html, "text/html")
    return email
