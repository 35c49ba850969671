"""Billing's models: the live profile, and apart from it the legacy "before" world."""

from billing.models.legacy import (
    LegacyAccount,
    LegacyBilling,
    LegacyCreditTransaction,
    LegacyOperation,
    LegacyPayment,
    LegacyUsage,
)
from billing.models.profile import UserProfile

__all__ = [
    "LegacyAccount",
    "LegacyBilling",
    "LegacyCreditTransaction",
    "LegacyOperation",
    "LegacyPayment",
    "LegacyUsage",
    "UserProfile",
]
