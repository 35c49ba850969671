"""Celery tasks of the migration: thin, each calls a service.

Every task acknowledges late and is rejected back to the queue when its worker dies, so a
killed worker's batch comes back for another worker (with Redis, after the broker's
visibility timeout, CELERY_VISIBILITY_TIMEOUT). That is safe because each task is idempotent.
A lost database connection is retried with backoff. With Redis, set the broker's sweep for
unacknowledged messages (CELERY_UNACKED_RESTORE_INTERVAL) well below the visibility timeout.
"""

from celery import shared_task
from django.db import InterfaceError, OperationalError

from migrations_app import services
from migrations_app.notifications import notifications_send

RELIABLE = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": (OperationalError, InterfaceError),
    "retry_backoff": True,
    "max_retries": 5,
}


@shared_task(name="migrations_app.tasks.plan_run", **RELIABLE)
def plan_run(run_id: int) -> int:
    """Split an execute run into batches and queue them."""
    return len(services.migration_run_fan_out(run_id=run_id))


@shared_task(name="migrations_app.tasks.process_batch", bind=True, **RELIABLE)
def process_batch(self, batch_id: int) -> str:
    """Migrate one batch of a run."""
    return services.migration_batch_process(batch_id=batch_id, worker=self.request.hostname or "")


@shared_task(name="migrations_app.tasks.finalize_run", **RELIABLE)
def finalize_run(run_id: int) -> bool:
    """Finish a run whose batches are all done."""
    return services.migration_run_finalize(run_id=run_id)


@shared_task(name="migrations_app.tasks.dry_run", **RELIABLE)
def dry_run(run_id: int) -> None:
    """Plan a dry run and keep its report on the run."""
    services.migration_run_dry(run_id=run_id)


@shared_task(name="migrations_app.tasks.send_notifications", **RELIABLE)
def send_notifications(notification_ids: list[int]) -> int:
    """Send notifications, each at most once."""
    return notifications_send(notification_ids=notification_ids)
