from django.apps import AppConfig


class MigrationsAppConfig(AppConfig):
    name = "migrations_app"
    verbose_name = "Credit migration"

    def ready(self):
        # The tasks in Celery's registry in every process, web ones too: the services queue
        # them by name (migrations_app.task_queue).
        # Billing says who is migrated without importing this app (see billing.selectors).
        from billing.selectors import migrated_by_source_register
        from migrations_app import tasks  # noqa: F401

        migrated_by_source_register(source_completed=_completed_migration)


def _completed_migration(user_id):
    from django.db.models import Exists

    from migrations_app.models import MigrationStatus, UserMigration

    return Exists(UserMigration.objects.filter(user_id=user_id, status=MigrationStatus.COMPLETED))
