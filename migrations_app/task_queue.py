"""Queue the migration's Celery tasks by name.

The tasks call the services (`tasks` imports `services` and `notifications`), so the services
that queue tasks cannot import `tasks` back without a cycle. They name the task instead, and
this module finds it in the Celery app's registry (filled when the app is ready, see
`migrations_app.apps`) and calls `.delay()`. Not `app.send_task`: it always goes to the broker
and ignores CELERY_TASK_ALWAYS_EAGER, which the embedded default and the tests rely on to run
tasks inline.
"""

from celery import current_app
from django.db import transaction

PLAN_RUN = "migrations_app.tasks.plan_run"
PROCESS_BATCH = "migrations_app.tasks.process_batch"
FINALIZE_RUN = "migrations_app.tasks.finalize_run"
DRY_RUN = "migrations_app.tasks.dry_run"
SEND_NOTIFICATIONS = "migrations_app.tasks.send_notifications"


def task_enqueue(name: str, *args) -> None:
    """Queue the task now (inline when Celery is eager)."""
    current_app.tasks[name].delay(*args)


def task_enqueue_on_commit(name: str, *args) -> None:
    """Queue the task once the current transaction commits (now when there is none)."""
    transaction.on_commit(lambda: task_enqueue(name, *args))
