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
        return f"{self.user_id} from {self.source}: {self.status}"
