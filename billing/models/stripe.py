"""What Stripe money buys, and the webhook events the ledger could not take.

A `CreditPack` says how many credits a one-off Stripe price buys, and a `PlanPrice` which plan a
subscription price means; both are edited by staff in the admin. Plans and their monthly credits
are the `CREDITS_PLANS` setting. A `StripeEventIssue` is a webhook event that granted nothing (or
less than asked) for a reason retrying cannot fix: it is kept for staff instead of dropped.
"""

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models


class CreditPack(models.Model):
    stripe_price_id = models.CharField(max_length=255, unique=True)
    name = models.CharField(max_length=100)
    credits = models.DecimalField(
        max_digits=14, decimal_places=2, validators=[MinValueValidator(Decimal("0.01"))]
    )
    # What Stripe must have charged for this price; a checkout that paid anything else is
    # recorded as an issue rather than granted.
    amount_cents = models.PositiveBigIntegerField(help_text="The price in cents.")
    currency = models.CharField(max_length=3, default="usd", help_text="Lower case, e.g. usd.")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["credits"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(credits__gt=0), name="billing_credit_pack_credits_positive"
            ),
        ]

    def __str__(self):
        return f"{self.name} ({self.credits} credits)"

    def clean(self):
        self.currency = self.currency.lower()


class BillingInterval(models.TextChoices):
    MONTH = "month", "Monthly"
    YEAR = "year", "Yearly"


class PlanPrice(models.Model):
    """A Stripe subscription price and the plan it means (monthly credits: CREDITS_PLANS)."""

    stripe_price_id = models.CharField(max_length=255, unique=True)
    plan = models.CharField(max_length=32)
    interval = models.CharField(
        max_length=8, choices=BillingInterval.choices, default=BillingInterval.MONTH
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["plan", "interval"]

    def __str__(self):
        return f"{self.plan} ({self.get_interval_display().lower()}): {self.stripe_price_id}"

    def clean(self):
        if self.plan not in settings.CREDITS_PLANS:
            raise ValidationError(
                {"plan": f"Unknown plan; CREDITS_PLANS has {', '.join(settings.CREDITS_PLANS)}."}
            )


class IssueKind(models.TextChoices):
    UNKNOWN_PRICE = "unknown_price", "Unknown price"
    UNKNOWN_CUSTOMER = "unknown_customer", "Unknown customer"
    MALFORMED_PAYLOAD = "malformed_payload", "Malformed payload"
    AMOUNT_MISMATCH = "amount_mismatch", "Amount mismatch"
    PURCHASE_NOT_ALLOWED = "purchase_not_allowed", "Purchase not allowed for the plan"
    REFUND_SHORTFALL = "refund_shortfall", "Refund larger than the credits left"
    REFUND_WITHOUT_PURCHASE = "refund_without_purchase", "Refund of no known purchase"
    PERIOD_ALREADY_GRANTED = "period_already_granted", "Period already granted another amount"
    LEDGER_REFUSED = "ledger_refused", "Ledger refused the entry"
    STALE_EVENT = "stale_event", "Older than the state held"
    DISPUTE_OPENED = "dispute_opened", "Payment disputed: credits taken back"
    CHECKOUT_EXPIRED = "checkout_expired", "Checkout expired unpaid"


class StripeEventIssue(models.Model):
    stripe_event_id = models.CharField(max_length=255)
    event_type = models.CharField(max_length=100)
    kind = models.CharField(max_length=32, choices=IssueKind.choices)
    detail = models.TextField()
    stripe_customer_id = models.CharField(max_length=255, blank=True, default="")
    customer_email = models.EmailField(blank=True, default="")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    data = models.JSONField(default=dict, blank=True)
    is_resolved = models.BooleanField(default=False)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["stripe_event_id", "kind"], name="billing_stripe_issue_event_kind"
            ),
        ]
        indexes = [
            models.Index(
                fields=["kind"],
                condition=models.Q(is_resolved=False),
                name="billing_stripe_issue_open",
            )
        ]

    def __str__(self):
        return f"{self.get_kind_display()}: {self.stripe_event_id}"
