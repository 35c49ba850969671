"""Schedule the monthly credit grant on Celery beat: 00:00 UTC on the 1st of every month.

The schedule lives in django-celery-beat's tables so staff see and change it in the admin
(Periodic tasks). Reversing removes the task, and its crontab if nothing else uses it.
"""

from django.db import migrations
from django.utils import timezone

TASK_NAME = "Monthly credit grants"
TASK = "billing.tasks.grant_monthly_credits"
CRONTAB = dict(
    minute="0", hour="0", day_of_month="1", month_of_year="*", day_of_week="*", timezone="UTC"
)


def _changed(apps, db):
    # The beat scheduler reloads its tasks when this timestamp moves; the historical models
    # used here do not fire the signals that normally move it.
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    PeriodicTasks.objects.using(db).update_or_create(
        ident=1, defaults={"last_update": timezone.now()}
    )


def schedule(apps, schema_editor):
    db = schema_editor.connection.alias
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    crontab = CrontabSchedule.objects.using(db).filter(**CRONTAB).first()
    if crontab is None:
        crontab = CrontabSchedule.objects.using(db).create(**CRONTAB)
    PeriodicTask.objects.using(db).get_or_create(
        name=TASK_NAME,
        defaults=dict(
            task=TASK,
            crontab=crontab,
            enabled=True,
            description="Grants each active subscription's monthly plan credits (once a month).",
        ),
    )
    _changed(apps, db)


def unschedule(apps, schema_editor):
    db = schema_editor.connection.alias
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.using(db).filter(name=TASK_NAME, task=TASK).delete()
    CrontabSchedule.objects.using(db).filter(**CRONTAB, periodictask__isnull=True).delete()
    _changed(apps, db)


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0004_stripe_packs_plans_issues"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(schedule, unschedule)]
