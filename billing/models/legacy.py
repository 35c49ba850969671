"""The legacy billing tables: the "before" world that the migration moves onto the ledger.

They keep their historical table names, so a host project points them at its real tables
(on a second database through LEGACY_DATABASE_URL, see project/routers.py). Nothing but the
migration engine writes them, and it only writes what it can restore from
`UserMigration.rollback_data`. Links to users carry no database constraint: the legacy data is
someone else's, possibly in another database, and may name users that no longer exist.
"""

from decimal import Decimal

from django.conf import settings
from django.db import models


def _user(**kwargs):
    return models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
        **kwargs,
    )


def _money(**kwargs):
    return models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"), **kwargs)


class LegacyBilling(models.Model):
    """A USD/UAH balance per user (`user_billing`)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    balance_usd = _money()
    balance_uah = _money()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "user_billing"
        verbose_name = "legacy billing balance"

    def __str__(self):
        return f"{self.user_id}: {self.balance_usd} USD, {self.balance_uah} UAH"


class LegacyAccount(models.Model):
    """Plan, credits and subscription fields kept beside the user (`legacy_accounts`)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    plan = models.CharField(max_length=32, default="free")
    credits_balance = _money()
    subscription_status = models.CharField(max_length=32, blank=True, default="")
    subscription_started_at = models.DateTimeField(null=True, blank=True)
    subscription_ends_at = models.DateTimeField(null=True, blank=True)
    stripe_customer_id = models.CharField(max_length=255, blank=True, default="")
    stripe_price_id = models.CharField(max_length=255, blank=True, default="")
    preferences = models.JSONField(default=dict, blank=True)
    usage_stats = models.JSONField(default=dict, blank=True)

    class Meta:
        db_table = "legacy_accounts"
        verbose_name = "legacy account"

    def __str__(self):
        return f"{self.user_id}: {self.plan}, {self.credits_balance} credits"


class LegacyPayment(models.Model):
    """A Stripe payment of the legacy system (`payments`), amount in cents."""

    user = _user()
    stripe_payment_intent_id = models.CharField(max_length=255, blank=True, default="")
    amount = models.BigIntegerField(help_text="In cents.")
    currency = models.CharField(max_length=3, default="usd")
    status = models.CharField(max_length=16, default="PAID")
    created_at = models.DateTimeField()

    class Meta:
        db_table = "payments"
        verbose_name = "legacy payment"
        indexes = [models.Index(fields=["user", "id"], name="legacy_payments_user")]

    def __str__(self):
        return f"{self.user_id}: {self.amount} {self.currency} {self.status}"


class LegacyCreditTransaction(models.Model):
    """A row of the legacy credit ledger (`legacy_credit_transactions`)."""

    user = _user()
    delta = models.DecimalField(max_digits=14, decimal_places=2)
    reason = models.CharField(max_length=255, blank=True, default="")
    stripe_event_id = models.CharField(max_length=255, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        db_table = "legacy_credit_transactions"
        verbose_name = "legacy credit transaction"
        indexes = [models.Index(fields=["user", "id"], name="legacy_credit_tx_user")]

    def __str__(self):
        return f"{self.user_id}: {self.delta} ({self.reason})"


class LegacyOperation(models.Model):
    """One rate-limited operation of the rate-limit era (`legacy_operations`)."""

    user = _user()
    kind = models.CharField(max_length=64, default="request")
    created_at = models.DateTimeField()

    class Meta:
        db_table = "legacy_operations"
        verbose_name = "legacy operation"
        indexes = [models.Index(fields=["user", "created_at"], name="legacy_operations_user")]

    def __str__(self):
        return f"{self.user_id}: {self.kind} at {self.created_at:%Y-%m-%d %H:%M}"


class LegacyUsage(models.Model):
    """Credits used in one period of the usage-tier era (`legacy_usage`)."""

    user = _user()
    period = models.CharField(max_length=7, help_text='A month, "2026-11".')
    amount_used = _money()

    class Meta:
        db_table = "legacy_usage"
        verbose_name = "legacy usage"
        constraints = [
            models.UniqueConstraint(fields=["user", "period"], name="legacy_usage_user_period")
        ]

    def __str__(self):
        return f"{self.user_id}: {self.amount_used} in {self.period}"
