"""Schedule the expiry of holds and credit lots on Celery beat: every 5 minutes.

As billing's monthly grant schedule, it lives in django-celery-beat's tables so staff see and
change it in the admin (Periodic tasks). A run is idempotent, so a late or doubled one writes
nothing twice. Reversing removes the task, and its interval if nothing else uses it.
"""

from django.db import migrations
from django.utils import timezone

TASK_NAME = "Expire credits"
TASK = "credits.tasks.expire_credits"
INTERVAL = dict(every=5, period="minutes")


def _changed(apps, db):
    # The beat scheduler reloads its tasks when this timestamp moves; the historical models
    # used here do not fire the signals that normally move it.
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    PeriodicTasks.objects.using(db).update_or_create(
        ident=1, defaults={"last_update": timezone.now()}
    )


def schedule(apps, schema_editor):
    db = schema_editor.connection.alias
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    interval = IntervalSchedule.objects.using(db).filter(**INTERVAL).first()
    if interval is None:
        interval = IntervalSchedule.objects.using(db).create(**INTERVAL)
    PeriodicTask.objects.using(db).get_or_create(
        name=TASK_NAME,
        defaults=dict(
            task=TASK,
            interval=interval,
            enabled=True,
            description=(
                "Releases expired holds and writes one expiry entry per credit lot whose "
                "expiry has come (every 5 minutes; manage.py expire_credits does the same)."
            ),
        ),
    )
    _changed(apps, db)


def unschedule(apps, schema_editor):
    db = schema_editor.connection.alias
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.using(db).filter(name=TASK_NAME, task=TASK).delete()
    IntervalSchedule.objects.using(db).filter(**INTERVAL, periodictask__isnull=True).delete()
    _changed(apps, db)


class Migration(migrations.Migration):
    dependencies = [
        ("credits", "0011_lot_functions"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(schedule, unschedule)]
