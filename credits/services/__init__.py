"""The only writers of the ledger.

Every balance change is one conditional `UPDATE ... WHERE balance + amount >= 0 RETURNING`
on the account row and one INSERT of the entry, in one transaction (on PostgreSQL one
statement; entries that threads post at the same moment may share one call and commit, each
still checked and refused on its own, and written as one UPDATE and one INSERT for the whole
call when their accounts are distinct: see _combining). The UPDATE takes the row lock, so
concurrent writers queue on it, never lose an update and never overdraw; it is also the whole
check.
Every call carries an idempotency key under a unique constraint: a replay returns the original
entry and changes nothing, the same key for a different operation raises `IdempotencyConflict`.
Races between two callers with one key are settled by that constraint, not by a pre-check.

These services are called on their own and from inside other units of work (a user's migration,
a Stripe webhook), so they use `atomic()` (a savepoint when nested) rather than `durable=True`.
Refunds give money back to a customer, so they remove credits (a negative entry).

Staff actions go through `credits.services.staff` (`credit_staff_grant`, `credit_staff_refund`,
`credit_staff_adjust`, approvals), which check the actor's permissions and limits first; the
plain services above check nothing about their caller.
"""

from credits.services._posting import IDEMPOTENCY_KEY_MAX_LENGTH, MAX_AMOUNT
from credits.services._posting import _check_key as check_idempotency_key
from credits.services._posting import _positive_amount as positive_amount
from credits.services.accounts import credit_account_open, credit_accounts_open
from credits.services.batch import BatchEntry, credit_post_batch
from credits.services.entries import (
    credit_adjust,
    credit_grant,
    credit_refund,
    credit_reverse,
    credit_spend,
)
from credits.services.staff import (
    credit_approval_approve,
    credit_approval_reject,
    credit_staff_adjust,
    credit_staff_authorize,
    credit_staff_grant,
    credit_staff_refund,
)

__all__ = [
    "IDEMPOTENCY_KEY_MAX_LENGTH",
    "MAX_AMOUNT",
    "BatchEntry",
    "check_idempotency_key",
    "credit_account_open",
    "credit_accounts_open",
    "credit_adjust",
    "credit_approval_approve",
    "credit_approval_reject",
    "credit_grant",
    "credit_post_batch",
    "credit_refund",
    "credit_reverse",
    "credit_spend",
    "credit_staff_adjust",
    "credit_staff_authorize",
    "credit_staff_grant",
    "credit_staff_refund",
    "positive_amount",
]
