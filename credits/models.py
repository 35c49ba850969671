"""The ledger: one account per user and an append-only list of entries.

The database holds the rules wherever it can (CHECK constraints, unique keys, and on PostgreSQL
a trigger that refuses UPDATE and DELETE on entries), so a write that skips `credits.services`
is refused rather than trusted. `ROUND(..., 2)` in the arithmetic checks is a no-op on
PostgreSQL's NUMERIC and keeps SQLite, which stores decimals as binary floats, exact to the cent.
"""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Round

from core.keys import IDEMPOTENCY_KEY_MAX_LENGTH
from credits.exceptions import LedgerEntryImmutable

AMOUNT_DIGITS = 14
AMOUNT_PLACES = 2
CENT = Decimal("0.01")


def _user_label(user) -> str:
    """How admin titles and logs name a user: the email staff search by, else the username."""
    return user.email or user.get_username()


def _amount_field(**kwargs):
    return models.DecimalField(
        max_digits=AMOUNT_DIGITS, decimal_places=AMOUNT_PLACES, default=Decimal("0"), **kwargs
    )


class CreditAccount(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="credit_account"
    )
    balance = _amount_field()
    # Net credits received (grants, purchases, migration, adjustments, less refunds) and net
    # credits consumed (spends, less reversed spends): balance = total_earned - total_spent.
    total_earned = _amount_field()
    total_spent = _amount_field()
    # Credits reserved by active holds (CreditHold): available = balance - held.
    held = _amount_field()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(balance__gte=0), name="credits_account_balance_non_negative"
            ),
            models.CheckConstraint(
                condition=Q(total_spent__gte=0), name="credits_account_total_spent_non_negative"
            ),
            models.CheckConstraint(
                condition=Q(balance=Round(F("total_earned") - F("total_spent"), AMOUNT_PLACES)),
                name="credits_account_balance_is_earned_minus_spent",
            ),
            models.CheckConstraint(
                condition=Q(held__gte=0, held__lte=F("balance")),
                name="credits_account_held_within_balance",
            ),
        ]

    def __str__(self):
        return f"{_user_label(self.user)} ({self.balance} credits)"


class EntryKind(models.TextChoices):
    GRANT = "grant", "Grant"
    PURCHASE = "purchase", "Purchase"
    SPEND = "spend", "Spend"
    REFUND = "refund", "Refund"
    ADJUSTMENT = "adjustment", "Adjustment"
    MIGRATION = "migration", "Migration"
    MONTHLY_GRANT = "monthly_grant", "Monthly grant"
    REVERSAL = "reversal", "Reversal"
    HISTORY = "history", "History"
    EXPIRY = "expiry", "Expiry"


CREDITING_KINDS = (
    EntryKind.GRANT,
    EntryKind.PURCHASE,
    EntryKind.MIGRATION,
    EntryKind.MONTHLY_GRANT,
)
DEBITING_KINDS = (EntryKind.SPEND, EntryKind.REFUND, EntryKind.EXPIRY)


class CreditTransactionQuerySet(models.QuerySet):
    """Entries are append-only: bulk updates and deletes through the ORM are refused too."""

    def update(self, **kwargs):
        raise LedgerEntryImmutable()

    def delete(self):
        raise LedgerEntryImmutable()


class CreditTransaction(models.Model):
    # Indexed by credits_entry_account_newest (account, -id), which serves lookups by account too.
    account = models.ForeignKey(
        CreditAccount, on_delete=models.PROTECT, related_name="entries", db_index=False
    )
    kind = models.CharField(max_length=20, choices=EntryKind.choices)
    amount = models.DecimalField(max_digits=AMOUNT_DIGITS, decimal_places=AMOUNT_PLACES)
    balance_before = models.DecimalField(max_digits=AMOUNT_DIGITS, decimal_places=AMOUNT_PLACES)
    balance_after = models.DecimalField(max_digits=AMOUNT_DIGITS, decimal_places=AMOUNT_PLACES)
    source = models.CharField(max_length=64, blank=True, default="")
    description = models.CharField(max_length=255, blank=True, default="")
    # Every insert maintains every index, so the ledger keeps few: the primary key, the unique
    # idempotency key, (account, -id) for an account's history, and partial indexes that only
    # rows with a Stripe event, a legacy id, an actor or a reversed entry enter. Uniqueness is
    # declared by UniqueConstraint, which (unlike unique=True) adds no LIKE index on PostgreSQL.
    idempotency_key = models.CharField(max_length=IDEMPOTENCY_KEY_MAX_LENGTH)
    # NULL, not "", for "none": unique constraints let many NULLs through.
    stripe_event_id = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    legacy_transaction_id = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    migrated_from = models.CharField(max_length=64, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Staff user who caused this entry.",
        db_index=False,
    )
    reason = models.TextField(blank=True, default="")
    # Unique (below): an entry is reversed at most once.
    reverses = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="reversals",
        db_index=False,
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = CreditTransactionQuerySet.as_manager()

    # Set (not stored) by the services when a call replays an existing idempotency key.
    replayed = False

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["account", "-id"], name="credits_entry_account_newest"),
            models.Index(
                fields=["actor"], condition=Q(actor__isnull=False), name="credits_entry_actor"
            ),
        ]
        permissions = [
            ("grant_credits", "Can grant credits"),
            ("refund_credits", "Can refund credits"),
            ("adjust_credits", "Can adjust balances"),
            ("adjust_unlimited", "Can grant, refund or adjust above the admin limit"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["idempotency_key"], name="credits_entry_unique_key"),
            models.UniqueConstraint(
                fields=["stripe_event_id"],
                condition=Q(stripe_event_id__isnull=False),
                name="credits_entry_unique_stripe_event",
            ),
            models.UniqueConstraint(
                fields=["legacy_transaction_id"],
                condition=Q(legacy_transaction_id__isnull=False),
                name="credits_entry_unique_legacy_transaction",
            ),
            models.UniqueConstraint(
                fields=["reverses"],
                condition=Q(reverses__isnull=False),
                name="credits_entry_reversed_once",
            ),
            models.CheckConstraint(
                condition=Q(balance_after=Round(F("balance_before") + F("amount"), AMOUNT_PLACES)),
                name="credits_entry_balance_after_is_before_plus_amount",
            ),
            models.CheckConstraint(
                condition=Q(balance_before__gte=0, balance_after__gte=0),
                name="credits_entry_balances_non_negative",
            ),
            models.CheckConstraint(
                condition=(Q(kind=EntryKind.HISTORY) & Q(amount=0))
                | (~Q(kind=EntryKind.HISTORY) & ~Q(amount=0)),
                name="credits_entry_amount_zero_only_for_history",
            ),
            models.CheckConstraint(
                condition=~Q(kind__in=CREDITING_KINDS) | Q(amount__gt=0),
                name="credits_entry_crediting_kinds_positive",
            ),
            models.CheckConstraint(
                condition=~Q(kind__in=DEBITING_KINDS) | Q(amount__lt=0),
                name="credits_entry_debiting_kinds_negative",
            ),
            models.CheckConstraint(
                condition=Q(kind=EntryKind.REVERSAL, reverses__isnull=False)
                | (~Q(kind=EntryKind.REVERSAL) & Q(reverses__isnull=True)),
                name="credits_entry_reversal_names_its_entry",
            ),
            models.CheckConstraint(
                condition=~Q(idempotency_key=""), name="credits_entry_idempotency_key_not_empty"
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} of {self.amount} for {_user_label(self.account.user)}"

    # Refused by core.bulk's set-based updates too (invariant 3).
    APPEND_ONLY = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise LedgerEntryImmutable()
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise LedgerEntryImmutable()


class LotCategory(models.TextChoices):
    PAID = "paid", "Paid"
    PROMOTIONAL = "promotional", "Promotional"
    MIGRATION = "migration", "Migration"
    MONTHLY = "monthly", "Monthly"


class ApprovalStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"


APPROVAL_KINDS = (EntryKind.GRANT, EntryKind.REFUND, EntryKind.ADJUSTMENT)
APPROVAL_KIND_CHOICES = [(kind.value, kind.label) for kind in APPROVAL_KINDS]


class CreditApprovalRequest(models.Model):
    """A staff grant, refund or adjustment above CREDITS_APPROVAL_THRESHOLD, waiting for a
    second staff member. Only its approval writes the ledger entry, once: `entry` holds it.

    The database refuses a request decided by the staff member who made it, an approved request
    without its entry, and a decided one without a decider.
    """

    account = models.ForeignKey(
        CreditAccount, on_delete=models.PROTECT, related_name="approval_requests"
    )
    kind = models.CharField(max_length=20, choices=APPROVAL_KIND_CHOICES)
    # Signed like the entry it asks for: positive for a grant, negative for a refund.
    amount = models.DecimalField(max_digits=AMOUNT_DIGITS, decimal_places=AMOUNT_PLACES)
    reason = models.TextField()
    idempotency_key = models.CharField(max_length=IDEMPOTENCY_KEY_MAX_LENGTH)
    status = models.CharField(
        max_length=16, choices=ApprovalStatus.choices, default=ApprovalStatus.PENDING
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField(auto_now_add=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    # Why the decider decided so (a rejection says why; optional on approval).
    decision_reason = models.TextField(blank=True, default="")
    entry = models.OneToOneField(
        CreditTransaction,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="approval_request",
    )
    # The terms of the lot a grant's approval makes: a category ("" for CREDITS_LOT_CATEGORIES'
    # staff grant) and an expiry (none: never). Kept so the approval grants what was asked.
    lot_category = models.CharField(max_length=16, blank=True, default="")
    lot_expires_at = models.DateTimeField(null=True, blank=True)

    # Set (not stored) by the staff services when a call replays an existing idempotency key.
    replayed = False

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["idempotency_key"], name="credits_approval_unique_key"),
            models.CheckConstraint(
                condition=~Q(reason=""), name="credits_approval_reason_not_empty"
            ),
            models.CheckConstraint(condition=~Q(amount=0), name="credits_approval_amount_not_zero"),
            models.CheckConstraint(
                condition=Q(decided_by__isnull=True) | ~Q(decided_by=F("requested_by")),
                name="credits_approval_not_self_decided",
            ),
            models.CheckConstraint(
                condition=(
                    Q(status=ApprovalStatus.PENDING, decided_by__isnull=True, entry__isnull=True)
                    | Q(
                        status=ApprovalStatus.APPROVED,
                        decided_by__isnull=False,
                        entry__isnull=False,
                    )
                    | Q(
                        status=ApprovalStatus.REJECTED, decided_by__isnull=False, entry__isnull=True
                    )
                ),
                name="credits_approval_status_matches_decision",
            ),
            models.CheckConstraint(
                condition=Q(kind=EntryKind.GRANT) | Q(lot_category="", lot_expires_at__isnull=True),
                name="credits_approval_lot_terms_only_for_grants",
            ),
            models.CheckConstraint(
                condition=Q(lot_category="") | Q(lot_category__in=LotCategory.values),
                name="credits_approval_lot_category_known",
            ),
        ]

    def __str__(self):
        return (
            f"{self.get_kind_display()} of {abs(self.amount)} for "
            f"{_user_label(self.account.user)} ({self.get_status_display().lower()})"
        )


class SpendRefusal(models.Model):
    """A spend the ledger refused for want of credits: kept (outside the ledger, which holds
    only what happened to balances) so monitoring can count them (`check_credits`)."""

    account = models.ForeignKey(
        CreditAccount, on_delete=models.CASCADE, related_name="spend_refusals"
    )
    amount = models.DecimalField(max_digits=AMOUNT_DIGITS, decimal_places=AMOUNT_PLACES)
    balance = models.DecimalField(max_digits=AMOUNT_DIGITS, decimal_places=AMOUNT_PLACES)
    code = models.CharField(max_length=32)
    source = models.CharField(max_length=32, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self):
        return f"{self.code}: {self.amount} for {_user_label(self.account.user)}"


class CreditLot(models.Model):
    """Credits added by one entry, drawn down by later ones (credits.lots has the order).

    An account's balance is the sum of its lots' remaining (invariant 11), and each lot's
    remaining is its amount less what its allocations took: both always, so "which purchase
    paid for this spend" has an answer. Lots are changed only by the services, under the
    account's lock, in the same transaction as the entry that moves them.
    """

    account = models.ForeignKey(CreditAccount, on_delete=models.PROTECT, related_name="lots")
    category = models.CharField(max_length=16, choices=LotCategory.choices)
    amount = models.DecimalField(max_digits=AMOUNT_DIGITS, decimal_places=AMOUNT_PLACES)
    remaining = models.DecimalField(max_digits=AMOUNT_DIGITS, decimal_places=AMOUNT_PLACES)
    # Lower is drawn first among lots of one rank and expiry (as Stripe's credit grants).
    priority = models.PositiveSmallIntegerField(default=0)
    effective_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    # A monthly lot kept past its period by CREDITS_MONTHLY_ROLLOVER_CAP rolls over once.
    rolled_over = models.BooleanField(default=False)
    entry = models.OneToOneField(CreditTransaction, on_delete=models.PROTECT, related_name="lot")

    class Meta:
        ordering = ["id"]
        # A spend updates a lot's remaining, so no index names remaining (not even in a
        # condition): then PostgreSQL updates the row in place (a HOT update, no index
        # entries written), which measured a quarter less WAL a spend. A draw-down reads an
        # account's lots through the account's index (an account holds few).
        indexes = [
            # The lots the expiry task reads (those spent to nothing are skipped by its filter).
            models.Index(
                fields=["expires_at"],
                condition=Q(expires_at__isnull=False),
                name="credits_lot_expiring",
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="credits_lot_amount_positive"),
            models.CheckConstraint(
                condition=Q(remaining__gte=0, remaining__lte=F("amount")),
                name="credits_lot_remaining_within_amount",
            ),
            models.CheckConstraint(
                condition=Q(category__in=LotCategory.values), name="credits_lot_category_known"
            ),
        ]

    def __str__(self):
        return f"{self.get_category_display()} lot: {self.remaining} of {self.amount}"


class CreditAllocation(models.Model):
    """How much of one lot one entry moved: positive when the entry took credits from the lot
    (a spend, a refund, an expiry), negative when it gave them back (the reversal of one)."""

    # Every spend inserts one, so it keeps few indexes: the unique (entry, lot) serves lookups
    # by entry too, so the entry's own index is left out.
    entry = models.ForeignKey(
        CreditTransaction, on_delete=models.PROTECT, related_name="allocations", db_index=False
    )
    lot = models.ForeignKey(CreditLot, on_delete=models.PROTECT, related_name="allocations")
    amount = models.DecimalField(max_digits=AMOUNT_DIGITS, decimal_places=AMOUNT_PLACES)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(amount=0), name="credits_allocation_amount_not_zero"
            ),
            models.UniqueConstraint(fields=["entry", "lot"], name="credits_allocation_once"),
        ]

    def __str__(self):
        return f"{self.amount} of lot {self.lot_id} by entry {self.entry_id}"


class HoldStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    CAPTURED = "captured", "Captured"
    RELEASED = "released", "Released"
    EXPIRED = "expired", "Expired"


class CreditHold(models.Model):
    """Credits reserved for an operation whose final cost is not known yet.

    While active, its amount counts in the account's `held` (so spends and other holds cannot
    take it); capture writes the spend entry (at most the amount, the rest released), release
    and expiry free it. The database keeps a captured hold tied to its entry and the captured
    amount within the hold.
    """

    account = models.ForeignKey(CreditAccount, on_delete=models.PROTECT, related_name="holds")
    amount = models.DecimalField(max_digits=AMOUNT_DIGITS, decimal_places=AMOUNT_PLACES)
    captured = _amount_field()
    status = models.CharField(max_length=16, choices=HoldStatus.choices, default=HoldStatus.ACTIVE)
    expires_at = models.DateTimeField()
    idempotency_key = models.CharField(max_length=IDEMPOTENCY_KEY_MAX_LENGTH)
    description = models.CharField(max_length=255, blank=True, default="")
    # The spend entry its capture wrote.
    entry = models.OneToOneField(
        CreditTransaction,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="hold",
    )
    # Who released it and why, when a staff member did.
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    reason = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    # Set (not stored) by the services when a call replays an existing idempotency key.
    replayed = False

    class Meta:
        ordering = ["-id"]
        permissions = [("release_hold", "Can release a customer's hold")]
        indexes = [
            models.Index(
                fields=["expires_at"],
                condition=Q(status="active"),
                name="credits_hold_active_expiry",
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["idempotency_key"], name="credits_hold_unique_key"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="credits_hold_amount_positive"),
            models.CheckConstraint(
                condition=Q(captured__gte=0, captured__lte=F("amount")),
                name="credits_hold_captured_within_amount",
            ),
            models.CheckConstraint(
                condition=(
                    Q(status=HoldStatus.ACTIVE, entry__isnull=True, captured=0)
                    | Q(status=HoldStatus.CAPTURED, entry__isnull=False, captured__gt=0)
                    | Q(
                        status__in=[HoldStatus.RELEASED, HoldStatus.EXPIRED],
                        entry__isnull=True,
                        captured=0,
                    )
                ),
                name="credits_hold_status_matches_capture",
            ),
            models.CheckConstraint(
                condition=~Q(idempotency_key=""), name="credits_hold_idempotency_key_not_empty"
            ),
        ]

    def __str__(self):
        return f"Hold of {self.amount} for {_user_label(self.account.user)} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status == HoldStatus.ACTIVE
