"""Billing's models: the live profile, what Stripe money buys, and apart from them the legacy
"before" world."""

from billing.models.legacy import (
    LegacyAccount,
    LegacyBilling,
    LegacyCreditTransaction,
    LegacyOperation,
    LegacyPayment,
    LegacyUsage,
)
from billing.models.profile import UserProfile
from billing.models.stripe import (
    BillingInterval,
    CreditPack,
    IssueKind,
    PlanPrice,
    StripeEventIssue,
)

__all__ = [
    "BillingInterval",
    "CreditPack",
    "IssueKind",
    "LegacyAccount",
    "LegacyBilling",
    "LegacyCreditTransaction",
    "LegacyOperation",
    "LegacyPayment",
    "LegacyUsage",
    "PlanPrice",
    "StripeEventIssue",
    "UserProfile",
]
