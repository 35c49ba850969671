"""Every row lock on credits' tables, taken in primary-key order.

Two transactions that lock the same rows in the same order queue one behind the other; in
different orders each can hold the row the other waits for, and PostgreSQL kills one of them
(a deadlock). So every lock on these tables, whoever takes it (credits' own services, billing's
Stripe refunds, the migration's batches), goes through this module, ordered by pk, as Saleor's
`lock_objects.py` does. `of=("self",)` keeps a lock on these rows alone when a caller joins.

Each function relies on the caller's transaction: a lock outside one ends with its statement.
"""

from collections.abc import Iterable

from django.db.models import QuerySet

from credits.models import CreditAccount, CreditApprovalRequest


def accounts_lock(*, account_ids: Iterable[int]) -> QuerySet[CreditAccount]:
    """The accounts `account_ids`, locked in pk order when the queryset is evaluated."""
    return (
        CreditAccount.objects.filter(pk__any_of=set(account_ids))
        .order_by("pk")
        .select_for_update(of=("self",))
    )


def account_lock(*, account_id: int) -> CreditAccount:
    """Lock one account and return it as it stands under the lock."""
    return CreditAccount.objects.select_for_update(of=("self",)).get(pk=account_id)


def approval_request_lock(*, approval_id: int) -> CreditApprovalRequest:
    """Lock one approval request and return it as it stands under the lock."""
    return CreditApprovalRequest.objects.select_for_update(of=("self",)).get(pk=approval_id)
