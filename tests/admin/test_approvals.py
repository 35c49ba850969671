"""Two-person approval in the admin: above CREDITS_APPROVAL_THRESHOLD a grant waits as a request;
another staff member approves it (one entry, however often approved) or rejects it (none)."""

from decimal import Decimal

import pytest

from credits.models import ApprovalStatus, CreditApprovalRequest, CreditTransaction, EntryKind
from credits.services import credit_staff_grant
from tests.admin.conftest import changelist_url, client_for, messages_of, post_action
from tests.helpers import ledger_state

pytestmark = pytest.mark.django_db

REQUESTS = changelist_url("credits.creditapprovalrequest")


@pytest.fixture
def pending(account, super_admin):
    return credit_staff_grant(
        account=account,
        amount=Decimal("6000.00"),
        idempotency_key="admin:grant:big",
        actor=super_admin,
        reason="Enterprise contract",
    )


def test_pending_requests_are_listed(second_super_admin, pending):
    # when
    response = client_for(second_super_admin).get(REQUESTS, {"status__exact": "pending"})

    # then
    assert response.status_code == 200
    assert [row.pk for row in response.context["cl"].result_list] == [pending.pk]
    content = response.content.decode()
    assert "alice@example.com" in content
    assert "6000.00" in content
    assert "approve_requests" in content


def test_self_approval_is_refused(super_admin_client, account, pending):
    # given
    before = ledger_state(account)

    # when
    response = post_action(super_admin_client, REQUESTS, "approve_requests", [pending.pk])

    # then
    assert messages_of(response) == [
        f"Request #{pending.pk}: not approved. Nobody approves or rejects their own request; "
        "another staff member must."
    ]
    assert ledger_state(account) == before
    pending.refresh_from_db()
    assert pending.status == ApprovalStatus.PENDING


def test_another_approver_writes_one_entry(second_super_admin, super_admin, account, pending):
    # given
    entries_before = CreditTransaction.objects.count()

    # when
    response = post_action(
        client_for(second_super_admin), REQUESTS, "approve_requests", [pending.pk]
    )

    # then
    pending.refresh_from_db()
    entry = pending.entry
    assert messages_of(response) == [
        f"Request #{pending.pk} approved: entry #{entry.pk}, alice@example.com balance now 6015.75."
    ]
    assert (entry.kind, entry.amount, entry.actor_id) == (
        EntryKind.GRANT,
        Decimal("6000.00"),
        super_admin.pk,
    )
    assert pending.decided_by_id == second_super_admin.pk
    assert CreditTransaction.objects.count() == entries_before + 1
    account.refresh_from_db()
    assert account.balance == Decimal("6015.75")


def test_double_approval_still_writes_one_entry(second_super_admin, account, pending):
    # given
    client = client_for(second_super_admin)
    post_action(client, REQUESTS, "approve_requests", [pending.pk])
    before = ledger_state(account)

    # when
    again = post_action(client, REQUESTS, "approve_requests", [pending.pk])

    # then
    pending.refresh_from_db()
    assert messages_of(again)[-1] == (
        f"Request #{pending.pk} was already approved (entry #{pending.entry_id})."
    )
    assert ledger_state(account) == before
    assert account.balance == Decimal("6015.75")


def test_rejection_writes_nothing(second_super_admin, account, pending):
    # given
    before = ledger_state(account)

    # when
    response = post_action(
        client_for(second_super_admin), REQUESTS, "reject_requests", [pending.pk]
    )

    # then
    assert messages_of(response) == [
        f"Request #{pending.pk} rejected; nothing written to the ledger."
    ]
    assert ledger_state(account) == before
    pending.refresh_from_db()
    assert pending.status == ApprovalStatus.REJECTED
    assert CreditApprovalRequest.objects.get().entry_id is None


def test_a_credit_admin_cannot_approve_a_request_above_their_limit(
    credit_admin_client, account, pending
):
    # given
    before = ledger_state(account)

    # when
    response = post_action(credit_admin_client, REQUESTS, "approve_requests", [pending.pk])

    # then
    assert messages_of(response)[0].startswith(
        f"Request #{pending.pk}: not approved. The amount is above your limit"
    )
    assert ledger_state(account) == before


def test_staff_without_permission_cannot_see_requests(bare_staff, pending):
    # when
    response = client_for(bare_staff).get(REQUESTS)

    # then
    assert response.status_code == 403
