"""The only writers of the ledger.

Every balance change is one conditional `UPDATE ... WHERE balance + amount >= 0 RETURNING`
on the account row and one INSERT of the entry, in one transaction. The UPDATE takes the row
lock, so concurrent writers queue on it, never lose an update and never overdraw; it is also
the whole check. It is written one of two ways (`credits.services.posting`): a portable path
(the UPDATE, then the ORM's INSERT) on every database, and on PostgreSQL a fast path that does
both in one prepared statement. Combining the entries of concurrent threads into shared calls
was tried and measured against it (benchmarks/bench_spend.py, alternating on and off): it won
on one hot account but not clearly with one account per thread, so it was removed, with its
SQL function (credits migration 0007).

Every call carries an idempotency key under a unique constraint: a replay returns the original
entry and changes nothing, the same key for a different operation raises `IdempotencyConflict`.
Races between two callers with one key are settled by that constraint, not by a pre-check.

These services are called on their own and from inside other units of work (a user's migration,
a Stripe webhook), so they use `atomic()` (a savepoint when nested) rather than `durable=True`.
Refunds give money back to a customer, so they remove credits (a negative entry).

Staff actions go through `credits.services.staff` (`credit_staff_grant`, `credit_staff_refund`,
`credit_staff_adjust`, approvals, `credit_staff_release_hold`), which check the actor's
permissions and limits first; the plain services above check nothing about their caller.
"""

from credits.services.accounts import credit_account_open, credit_accounts_open
from credits.services.batch import BatchEntry, credit_post_batch
from credits.services.entries import (
    credit_adjust,
    credit_grant,
    credit_refund,
    credit_reverse,
    credit_spend,
)
from credits.services.expiry import ExpiryRun, credit_expiry_run, credit_lots_expire
from credits.services.holds import (
    credit_hold_capture,
    credit_hold_create,
    credit_hold_release,
    credit_holds_expire,
)
from credits.services.posting import IDEMPOTENCY_KEY_MAX_LENGTH, MAX_AMOUNT, positive_amount
from credits.services.posting import check_key as check_idempotency_key
from credits.services.posting.lots import category_for as lot_category_for
from credits.services.staff import (
    credit_approval_approve,
    credit_approval_reject,
    credit_staff_adjust,
    credit_staff_authorize,
    credit_staff_grant,
    credit_staff_refund,
    credit_staff_release_hold,
)

__all__ = [
    "IDEMPOTENCY_KEY_MAX_LENGTH",
    "MAX_AMOUNT",
    "BatchEntry",
    "ExpiryRun",
    "check_idempotency_key",
    "credit_account_open",
    "credit_accounts_open",
    "credit_adjust",
    "credit_approval_approve",
    "credit_approval_reject",
    "credit_expiry_run",
    "credit_grant",
    "credit_hold_capture",
    "credit_hold_create",
    "credit_hold_release",
    "credit_holds_expire",
    "credit_lots_expire",
    "credit_post_batch",
    "credit_refund",
    "credit_reverse",
    "credit_spend",
    "credit_staff_adjust",
    "credit_staff_authorize",
    "credit_staff_grant",
    "credit_staff_refund",
    "credit_staff_release_hold",
    "lot_category_for",
    "positive_amount",
]
