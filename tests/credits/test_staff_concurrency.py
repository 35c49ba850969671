"""Approvals under concurrency on PostgreSQL: approvers in real threads, each with its own
connection, race on one request; the row lock on the request makes exactly one entry."""

from decimal import Decimal

import pytest

from credits.exceptions import ApprovalDecided, OverDailyLimit
from credits.models import (
    ApprovalStatus,
    CreditAccount,
    CreditApprovalRequest,
    CreditTransaction,
    EntryKind,
)
from credits.selectors import ledger_sum
from credits.services import (
    credit_account_open,
    credit_approval_approve,
    credit_approval_reject,
    credit_staff_grant,
)
from tests.factories import CreditAdminFactory, SuperAdminFactory, UserFactory
from tests.helpers import run_in_threads

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 8


@pytest.fixture
def pending():
    account = credit_account_open(user=UserFactory())
    return credit_staff_grant(
        account=account,
        amount=Decimal("6000.00"),
        idempotency_key="big-grant",
        actor=SuperAdminFactory(),
        reason="Enterprise contract",
    )


def test_concurrent_approvals_write_one_entry(pending):
    # given 8 other super admins approving at once
    approvers = [SuperAdminFactory() for _ in range(THREADS)]

    def approve(index):
        request = CreditApprovalRequest.objects.get(pk=pending.pk)
        return credit_approval_approve(approval=request, actor=approvers[index]).pk

    # when
    results, errors = run_in_threads(approve, THREADS)

    # then
    assert errors == []
    assert len(set(results)) == 1
    account = CreditAccount.objects.get(pk=pending.account_id)
    assert account.balance == Decimal("6000.00") == ledger_sum(account=account)
    assert account.entries.filter(kind=EntryKind.GRANT).count() == 1
    pending.refresh_from_db()
    assert pending.status == ApprovalStatus.APPROVED
    assert pending.entry_id == results[0]


def test_approval_racing_rejection_decides_once(pending):
    # given half the threads approve and half reject
    deciders = [SuperAdminFactory() for _ in range(THREADS)]

    def decide(index):
        request = CreditApprovalRequest.objects.get(pk=pending.pk)
        try:
            if index % 2:
                credit_approval_approve(approval=request, actor=deciders[index])
                return "approved"
            credit_approval_reject(approval=request, actor=deciders[index])
            return "rejected"
        except ApprovalDecided:
            return "refused"

    # when
    results, errors = run_in_threads(decide, THREADS)

    # then
    assert errors == []
    pending.refresh_from_db()
    account = CreditAccount.objects.get(pk=pending.account_id)
    if pending.status == ApprovalStatus.APPROVED:
        assert sorted(set(results)) == ["approved", "refused"]
        assert account.balance == Decimal("6000.00")
        assert account.entries.count() == 1
    else:
        assert pending.status == ApprovalStatus.REJECTED
        assert sorted(set(results)) == ["refused", "rejected"]
        assert account.balance == Decimal("0.00")
        assert account.entries.count() == 0
    assert results.count("refused") == THREADS // 2


def test_concurrent_submissions_of_one_key_make_one_request():
    # given 8 threads submitting the same form (one key) above the approval threshold
    account = credit_account_open(user=UserFactory())
    staff = SuperAdminFactory()

    def submit(index):
        request = credit_staff_grant(
            account=CreditAccount.objects.get(pk=account.pk),
            amount=Decimal("6000.00"),
            idempotency_key="big-grant-once",
            actor=staff,
            reason="Enterprise contract",
        )
        return request.pk, getattr(request, "replayed", False)

    # when
    results, errors = run_in_threads(submit, THREADS)

    # then one request, every other submission a replay of it, and nothing on the ledger
    assert errors == []
    assert len({pk for pk, _ in results}) == 1
    assert sorted(replayed for _, replayed in results) == [False] + [True] * (THREADS - 1)
    assert CreditApprovalRequest.objects.filter(idempotency_key="big-grant-once").count() == 1
    account.refresh_from_db()
    assert account.balance == Decimal("0.00") == ledger_sum(account=account)


def test_parallel_grants_of_one_credit_admin_stop_at_the_daily_limit(settings):
    # given: one credit admin, 8 grants of 1000 at once (8000) against a daily limit of 5000
    settings.CREDITS_ADMIN_DAILY_LIMIT = Decimal("5000")
    actor = CreditAdminFactory()
    accounts = [credit_account_open(user=UserFactory()) for _ in range(2)]

    def grant(index):
        try:
            credit_staff_grant(
                account=CreditAccount.objects.get(pk=accounts[index % 2].pk),
                amount=Decimal("1000.00"),
                idempotency_key=f"daily-{index}",
                actor=actor,
                reason="Goodwill",
            )
            return "written"
        except OverDailyLimit:
            return "refused"

    # when
    results, errors = run_in_threads(grant, THREADS)

    # then: exactly the allowed total is written, the rest refused
    assert errors == []
    assert sorted(results) == ["refused"] * 3 + ["written"] * 5
    written = CreditTransaction.objects.filter(actor=actor)
    assert written.count() == 5
    assert sum(entry.amount for entry in written) == Decimal("5000.00")
    for account in accounts:
        account.refresh_from_db()
        assert account.balance == ledger_sum(account=account)
    assert sum(account.balance for account in accounts) == Decimal("5000.00")
