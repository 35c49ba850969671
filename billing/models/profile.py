"""Plans and the customer's billing profile.

The balance lives only in `credits.CreditAccount`; a profile says what the user pays for.
"""

from django.conf import settings
from django.db import models


class UserProfile(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile"
    )
    plan = models.CharField(max_length=32, default="free", db_index=True)
    subscription_status = models.CharField(max_length=32, blank=True, default="")
    subscription_started_at = models.DateTimeField(null=True, blank=True)
    subscription_ends_at = models.DateTimeField(null=True, blank=True)
    stripe_customer_id = models.CharField(max_length=255, null=True, blank=True, unique=True)
    stripe_price_id = models.CharField(max_length=255, blank=True, default="")
    # When Stripe made the subscription state this profile holds (the event's `created`): an
    # older event, delivered late, changes nothing.
    stripe_state_at = models.DateTimeField(null=True, blank=True)
    preferences = models.JSONField(default=dict, blank=True)
    usage_stats = models.JSONField(default=dict, blank=True)
    # When this user's legacy billing was settled: fully moved onto the ledger, or, for a user
    # who signs up after the move and has nothing to migrate, at signup; null while it is not.
    # Settled is not "migrated": that takes a source (billing.selectors.migrated_q).
    migration_completed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        permissions = [
            ("view_customer_summary", "Can view a customer's billing summary (staff API)"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(stripe_customer_id=""),
                name="billing_profile_stripe_customer_id_null_not_empty",
            )
        ]

    def __str__(self):
        return f"{self.user} ({self.plan})"

    @property
    def is_legacy_settled(self) -> bool:
        return self.migration_completed_at is not None
