"""Reads across apps for staff: one customer as staff see them.

The profile, the account's figures, the newest ledger entries, pending approval requests and
the user's migrations, read in a handful of queries, each through its app's selectors. It lives
here, at the top of the dependency chain, because it reads every app.

The read itself (`customer_summary`) checks `billing.view_customer_summary`, so any caller, not
only the API's view, shares the rule; `is_staff` only lets a request reach it.
"""

from billing.selectors import profile_for_user
from credits.exceptions import StaffPermissionDenied
from credits.selectors import approvals_pending, credit_account_for_user, credit_history
from migrations_app.selectors import user_migrations

LAST_ENTRIES = 20
SUMMARY_PERMISSION = "billing.view_customer_summary"


def check_customer_summary_permission(*, actor) -> None:
    if actor is None or not actor.has_perm(SUMMARY_PERMISSION):
        raise StaffPermissionDenied(
            "You do not have the permission to view customer summaries.",
            permission=SUMMARY_PERMISSION,
        )


def customer_summary(*, actor, user) -> dict:
    """One customer as staff see them; refused without `billing.view_customer_summary`."""
    check_customer_summary_permission(actor=actor)
    account = credit_account_for_user(user=user)
    return {
        "user": user,
        "profile": profile_for_user(user=user),
        "account": account,
        "last_entries": list(credit_history(account=account)[:LAST_ENTRIES]) if account else [],
        "pending_approvals": list(approvals_pending(account=account)) if account else [],
        "migrations": list(user_migrations(user=user)),
    }
