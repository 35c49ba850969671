"""The transfer's own records: one `MigrationRun` per command or API run, one `UserMigration`
per user and source (unique), which is what makes the migration resumable, verifiable and
reversible."""

from django.conf import settings
from django.db import models


class RunMode(models.TextChoices):
    DRY_RUN = "dry_run", "Dry run"
    EXECUTE = "execute", "Execute"
    ROLLBACK = "rollback", "Rollback"


class RunStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    COMPLETED_WITH_ERRORS = "completed_with_errors", "Completed with errors"
    FAILED = "failed", "Failed"


class MigrationRun(models.Model):
    source = models.CharField(max_length=200, help_text="Comma-separated source names.")
    mode = models.CharField(max_length=16, choices=RunMode.choices)
    parameters = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=32, choices=RunStatus.choices, default=RunStatus.PENDING)
    processed = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    stats = models.JSONField(default=dict, blank=True)
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    error = models.TextField(blank=True, default="")
    started_at = models.DateTimeField(auto_now_add=True)
    # Moved on with every batch, so a run whose process died shows as stale, not running.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        permissions = [
            ("run_migration", "Can start a credit migration run that writes"),
            ("preview_migration", "Can start a dry run of the credit migration"),
        ]

    def __str__(self):
        return f"run {self.pk}: {self.mode} {self.source} ({self.status})"


class MigrationStatus(models.TextChoices):
    PENDING = "PENDING", "Pending"
    IN_PROGRESS = "IN_PROGRESS", "In progress"
    COMPLETED = "COMPLETED", "Completed"
    FAILED = "FAILED", "Failed"
    ROLLED_BACK = "ROLLED_BACK", "Rolled back"


class UserMigration(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="credit_migrations"
    )
    source = models.CharField(max_length=64)
    status = models.CharField(
        max_length=16, choices=MigrationStatus.choices, default=MigrationStatus.PENDING
    )
    # One currency: its amount and rate. Several (USD and UAH): legacy_currency "MIXED", and
    # the per-currency figures in legacy_amounts and rates.
    legacy_amount = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)
    legacy_currency = models.CharField(max_length=16, blank=True, default="")
    rate = models.DecimalField(max_digits=18, decimal_places=6, null=True, blank=True)
    legacy_amounts = models.JSONField(default=dict, blank=True)
    rates = models.JSONField(default=dict, blank=True)
    initial_credits_granted = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    # Exact value minus granted credits (the cents' fractions rounding left out).
    rounding_remainder = models.DecimalField(max_digits=18, decimal_places=8, default=0)
    historical_operations = models.PositiveIntegerField(default=0)
    data_mismatch = models.BooleanField(default=False)
    mismatch_detail = models.CharField(max_length=255, blank=True, default="")
    rollback_data = models.JSONField(default=dict, blank=True)
    error_message = models.TextField(blank=True, default="")
    attempts = models.PositiveIntegerField(default=0)
    # Bumped by each rollback, so that migrating again writes new entries under new keys.
    generation = models.PositiveIntegerField(default=0)
    run = models.ForeignKey(
        MigrationRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    migration_date = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "source"], name="user_migration_once_per_source"
            )
        ]
        indexes = [models.Index(fields=["source", "status"], name="user_migration_source_status")]
        permissions = [
            ("rollback_migration", "Can roll back a user's credit migration"),
            ("retry_migration", "Can retry a user's failed credit migration"),
        ]

    def __str__(self):
        user = self.user.email or self.user.get_username()
        return f"{user} from {self.source} ({self.get_status_display().lower()})"


class MigrationLock(models.Model):
    """One row per source. Starting an execute run locks the rows of its sources, so two
    starts of the same source are serialized and the second sees the first (never a
    check-then-insert race)."""

    source = models.CharField(max_length=64, unique=True)

    def __str__(self):
        return self.source


class BatchStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DONE = "done", "Done"


class MigrationBatch(models.Model):
    """One batch of an execute run fanned out over Celery workers: its users, and once done
    what it did (a report, merged into the run's stats when the run finishes).

    The batch row is locked inside the batch's own transaction and marked done in it, so a
    batch delivered twice, retried or processed by two workers at once is recorded once."""

    run = models.ForeignKey(MigrationRun, on_delete=models.CASCADE, related_name="batches")
    source = models.CharField(max_length=64)
    number = models.PositiveIntegerField()
    user_ids = models.JSONField(default=list)
    size = models.PositiveIntegerField()
    status = models.CharField(
        max_length=16, choices=BatchStatus.choices, default=BatchStatus.PENDING
    )
    stats = models.JSONField(default=dict, blank=True)
    # When the batch falls back to one transaction per user: the users already recorded.
    recorded_user_ids = models.JSONField(default=list, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # The worker that last took the batch (Celery's hostname), for following a stuck batch.
    worker = models.CharField(max_length=255, blank=True, default="")
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "number"]
        constraints = [
            models.UniqueConstraint(fields=["run", "number"], name="migration_batch_once_per_run")
        ]
        indexes = [models.Index(fields=["run", "status"], name="migration_batch_run_status")]

    def __str__(self):
        return f"run {self.run_id} batch {self.number} ({self.source}, {self.status})"


class NotificationKind(models.TextChoices):
    ANNOUNCEMENT = "migration_announcement", "Migration announcement"
    COMPLETE = "migration_complete", "Migration complete"
    PROBLEM = "migration_problem", "Migration problem"
    ROLLED_BACK = "migration_rolled_back", "Migration rolled back"


class NotificationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class Notification(models.Model):
    """An email to a user about their migration. The row is claimed (pending -> sent) before
    the email leaves, under a unique (user, kind, key): a retried task or a batch processed
    twice sends nothing twice."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="migration_notifications"
    )
    kind = models.CharField(max_length=32, choices=NotificationKind.choices)
    # What makes a second notification of a kind a different one (e.g. the run that
    # completed the migration); empty when a user gets this kind once.
    key = models.CharField(max_length=64, blank=True, default="")
    status = models.CharField(
        max_length=16, choices=NotificationStatus.choices, default=NotificationStatus.PENDING
    )
    context = models.JSONField(default=dict, blank=True)
    run = models.ForeignKey(
        MigrationRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "kind", "key"], name="migration_notification_once"
            )
        ]
        indexes = [models.Index(fields=["status", "run"], name="migration_notification_status")]

    def __str__(self):
        return f"{self.kind} to {self.user_id} ({self.status})"
