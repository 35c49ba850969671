"""Ledger admin: balances and entries are read-only; staff move credits only through actions
that call the staff services (`credits.services.staff`), which hold the roles, the limits and
the two-person approval. The admin parses a form, calls a service, and reports.

One module per page: accounts (with their lots, holds and staff actions), entries, approval
requests, holds. The names other apps' admins build on are exported here.
"""

from credits.admin.accounts import CreditAccountAdmin, MigratedFilter
from credits.admin.approvals import CreditApprovalRequestAdmin
from credits.admin.common import (
    CompactListMedia,
    ReadOnlyAdminMixin,
    error_with_figures,
    truncated,
    user_label,
)
from credits.admin.entries import CreditTransactionAdmin
from credits.admin.forms import STAFF_ACTIONS, StaffAdjustForm, StaffAmountForm, StaffGrantForm
from credits.admin.holds import CreditHoldAdmin

__all__ = [
    "STAFF_ACTIONS",
    "CompactListMedia",
    "CreditAccountAdmin",
    "CreditApprovalRequestAdmin",
    "CreditHoldAdmin",
    "CreditTransactionAdmin",
    "MigratedFilter",
    "ReadOnlyAdminMixin",
    "StaffAdjustForm",
    "StaffAmountForm",
    "StaffGrantForm",
    "error_with_figures",
    "truncated",
    "user_label",
]
