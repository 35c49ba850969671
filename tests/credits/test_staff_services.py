"""credits.services.staff: roles, limits and two-person approval, enforced in the services so the
admin and a staff API share them. A refused call changes nothing: balance, totals and entry
count are checked after each, and no approval request is left behind."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from credits.exceptions import (
    ApprovalDecided,
    IdempotencyConflict,
    InsufficientCredits,
    InvalidAmount,
    OverLimit,
    ReasonRequired,
    SelfApproval,
    StaffPermissionDenied,
)
from credits.models import ApprovalStatus, CreditApprovalRequest, CreditTransaction, EntryKind
from credits.selectors import ledger_sum
from credits.services import (
    credit_account_open,
    credit_approval_approve,
    credit_approval_reject,
    credit_grant,
    credit_staff_adjust,
    credit_staff_grant,
    credit_staff_refund,
)
from tests.factories import CreditAdminFactory, StaffUserFactory, SuperAdminFactory, UserFactory
from tests.helpers import fund, ledger_state

pytestmark = pytest.mark.django_db


@pytest.fixture
def funded(account):
    return fund(account)


@pytest.fixture
def credit_admin(db):
    return CreditAdminFactory()


@pytest.fixture
def super_admin(db):
    return SuperAdminFactory()


@pytest.fixture
def second_super_admin(db):
    return SuperAdminFactory()


# --- grants, refunds, adjustments within the rules ----------------------------------------


def test_credit_admin_grants_with_actor_and_reason_on_the_entry(funded, credit_admin):
    # when
    entry = credit_staff_grant(
        account=funded,
        amount=Decimal("50.00"),
        idempotency_key="staff-1",
        actor=credit_admin,
        reason="Goodwill after an outage",
    )

    # then
    assert entry.kind == EntryKind.GRANT
    assert entry.amount == Decimal("50.00")
    assert entry.actor_id == credit_admin.pk
    assert entry.reason == "Goodwill after an outage"
    assert entry.source == "staff"
    # The customer's history shows a description, never the staff reason.
    assert entry.description == "Credits granted by support"
    funded.refresh_from_db()
    assert funded.balance == Decimal("150.00") == ledger_sum(account=funded)
    assert funded.total_earned == Decimal("150.00")


def test_credit_admin_grants_exactly_the_limit(funded, credit_admin, settings):
    # given
    settings.CREDITS_ADMIN_LIMIT = Decimal("1000")

    # when
    entry = credit_staff_grant(
        account=funded,
        amount=Decimal("1000.00"),
        idempotency_key="staff-limit",
        actor=credit_admin,
        reason="At the limit",
    )

    # then
    assert entry.amount == Decimal("1000.00")
    funded.refresh_from_db()
    assert funded.balance == Decimal("1100.00")


def test_credit_admin_adjusts_down_within_the_limit(funded, credit_admin):
    # when
    entry = credit_staff_adjust(
        account=funded,
        amount=Decimal("-30.25"),
        idempotency_key="staff-adjust",
        actor=credit_admin,
        reason="Double-counted usage",
    )

    # then
    assert (entry.kind, entry.amount, entry.actor_id) == (
        EntryKind.ADJUSTMENT,
        Decimal("-30.25"),
        credit_admin.pk,
    )
    assert entry.description == "Balance adjusted by support"
    funded.refresh_from_db()
    assert funded.balance == Decimal("69.75") == ledger_sum(account=funded)


def test_super_admin_refunds_and_goes_above_the_limit(funded, super_admin, settings):
    # given
    settings.CREDITS_ADMIN_LIMIT = Decimal("10")

    # when
    refund = credit_staff_refund(
        account=funded,
        amount=Decimal("40.00"),
        idempotency_key="staff-refund",
        actor=super_admin,
        reason="Charged twice",
    )

    # then
    assert (refund.kind, refund.amount, refund.reason) == (
        EntryKind.REFUND,
        Decimal("-40.00"),
        "Charged twice",
    )
    assert refund.description == "Credits refunded by support"
    funded.refresh_from_db()
    assert funded.balance == Decimal("60.00") == ledger_sum(account=funded)
    assert funded.total_earned == Decimal("60.00")


def test_a_replayed_key_writes_once(funded, credit_admin):
    # given
    first = credit_staff_grant(
        account=funded,
        amount=Decimal("5.00"),
        idempotency_key="staff-twice",
        actor=credit_admin,
        reason="Once",
    )

    # when
    second = credit_staff_grant(
        account=funded,
        amount=Decimal("5.00"),
        idempotency_key="staff-twice",
        actor=credit_admin,
        reason="Once",
    )

    # then
    assert second.pk == first.pk
    assert second.replayed
    funded.refresh_from_db()
    assert funded.balance == Decimal("105.00")
    assert funded.entries.count() == 2


# --- refusals -----------------------------------------------------------------------------


def test_credit_admin_is_refused_a_refund(funded, credit_admin):
    # given
    before = ledger_state(funded)

    # when
    with pytest.raises(StaffPermissionDenied) as refused:
        credit_staff_refund(
            account=funded,
            amount=Decimal("1.00"),
            idempotency_key="staff-refund",
            actor=credit_admin,
            reason="Try",
        )

    # then
    assert refused.value.code == "permission_denied"
    assert refused.value.status_code == 403
    assert ledger_state(funded) == before


@pytest.mark.parametrize(
    ("service", "amount"),
    [(credit_staff_grant, "1000.01"), (credit_staff_adjust, "-1000.01")],
    ids=["grant", "adjust-down"],
)
def test_credit_admin_is_refused_above_the_limit(funded, credit_admin, service, amount):
    # given
    before = ledger_state(funded)

    # when
    with pytest.raises(OverLimit) as refused:
        service(
            account=funded,
            amount=Decimal(amount),
            idempotency_key="staff-over",
            actor=credit_admin,
            reason="Too much",
        )

    # then
    assert refused.value.code == "over_limit"
    assert refused.value.details == {"limit": "1000", "amount": "1000.01"}
    assert ledger_state(funded) == before


def test_the_limit_follows_the_setting(funded, credit_admin, settings):
    # given
    settings.CREDITS_ADMIN_LIMIT = Decimal("10")
    before = ledger_state(funded)

    # when
    with pytest.raises(OverLimit):
        credit_staff_grant(
            account=funded,
            amount=Decimal("10.01"),
            idempotency_key="staff-over",
            actor=credit_admin,
            reason="Just over",
        )

    # then
    assert ledger_state(funded) == before


def test_staff_without_permissions_is_refused_everything(funded):
    # given
    nobody = StaffUserFactory()
    before = ledger_state(funded)

    # when / then
    for service in (credit_staff_grant, credit_staff_refund, credit_staff_adjust):
        with pytest.raises(StaffPermissionDenied):
            service(
                account=funded,
                amount=Decimal("1.00"),
                idempotency_key=f"nobody-{service.__name__}",
                actor=nobody,
                reason="No role",
            )
    assert ledger_state(funded) == before


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_a_reason_is_required(funded, credit_admin, reason):
    # given
    before = ledger_state(funded)

    # when
    with pytest.raises(ReasonRequired):
        credit_staff_grant(
            account=funded,
            amount=Decimal("1.00"),
            idempotency_key="staff-no-reason",
            actor=credit_admin,
            reason=reason,
        )

    # then
    assert ledger_state(funded) == before


def test_an_actor_is_required(funded):
    # given
    before = ledger_state(funded)

    # when
    with pytest.raises(ReasonRequired):
        credit_staff_grant(
            account=funded,
            amount=Decimal("1.00"),
            idempotency_key="staff-no-actor",
            actor=None,
            reason="System",
        )

    # then
    assert ledger_state(funded) == before


@pytest.mark.parametrize("amount", [Decimal("0"), Decimal("-1.00"), Decimal("1.001"), 1.5, "2"])
def test_bad_amounts_are_refused(funded, super_admin, amount):
    # given
    before = ledger_state(funded)

    # when
    with pytest.raises(InvalidAmount):
        credit_staff_grant(
            account=funded,
            amount=amount,
            idempotency_key="staff-bad",
            actor=super_admin,
            reason="Bad amount",
        )

    # then
    assert ledger_state(funded) == before


def test_a_refund_of_more_than_the_balance_is_refused(funded, super_admin):
    # given
    before = ledger_state(funded)

    # when
    with pytest.raises(InsufficientCredits):
        credit_staff_refund(
            account=funded,
            amount=Decimal("100.01"),
            idempotency_key="staff-too-much",
            actor=super_admin,
            reason="More than held",
        )

    # then
    assert ledger_state(funded) == before


def test_plain_services_still_check_nobody(funded):
    # given: the system callers' path (Stripe, the migration, monthly grants)
    # when
    entry = credit_grant(account=funded, amount=Decimal("5000.00"), idempotency_key="system")

    # then
    assert entry.actor_id is None
    funded.refresh_from_db()
    assert funded.balance == Decimal("5100.00")


# --- two-person approval ------------------------------------------------------------------


@pytest.fixture
def pending(funded, super_admin):
    return credit_staff_grant(
        account=funded,
        amount=Decimal("6000.00"),
        idempotency_key="staff-big",
        actor=super_admin,
        reason="Enterprise contract",
    )


def test_above_the_threshold_a_request_waits_and_nothing_is_written(funded, super_admin):
    # given
    entries_before = CreditTransaction.objects.count()

    # when
    request = credit_staff_grant(
        account=funded,
        amount=Decimal("5000.01"),
        idempotency_key="staff-big",
        actor=super_admin,
        reason="Enterprise contract",
    )

    # then
    assert isinstance(request, CreditApprovalRequest)
    assert request.status == ApprovalStatus.PENDING
    assert (request.kind, request.amount) == (EntryKind.GRANT, Decimal("5000.01"))
    assert request.requested_by_id == super_admin.pk
    assert request.entry_id is None
    funded.refresh_from_db()
    assert funded.balance == Decimal("100.00")
    assert CreditTransaction.objects.count() == entries_before


def test_the_same_submission_makes_one_request(funded, super_admin, pending):
    # when
    again = credit_staff_grant(
        account=funded,
        amount=Decimal("6000.00"),
        idempotency_key="staff-big",
        actor=super_admin,
        reason="Enterprise contract",
    )

    # then
    assert again.pk == pending.pk
    assert again.replayed
    assert CreditApprovalRequest.objects.count() == 1


def test_the_same_key_for_another_amount_is_a_conflict(funded, super_admin, pending):
    # when
    with pytest.raises(IdempotencyConflict):
        credit_staff_grant(
            account=funded,
            amount=Decimal("7000.00"),
            idempotency_key="staff-big",
            actor=super_admin,
            reason="Enterprise contract",
        )

    # then
    assert CreditApprovalRequest.objects.count() == 1


def test_the_same_key_for_another_account_or_kind_is_a_conflict(funded, super_admin, pending):
    other = credit_account_open(user=UserFactory())
    # when the request's key comes again for another account, then as a refund
    with pytest.raises(IdempotencyConflict):
        credit_staff_grant(
            account=other,
            amount=Decimal("6000.00"),
            idempotency_key="staff-big",
            actor=super_admin,
            reason="Enterprise contract",
        )
    with pytest.raises(IdempotencyConflict):
        credit_staff_refund(
            account=funded,
            amount=Decimal("6000.00"),
            idempotency_key="staff-big",
            actor=super_admin,
            reason="Enterprise contract",
        )

    # then
    assert CreditApprovalRequest.objects.count() == 1


def test_a_key_of_a_request_is_a_conflict_below_the_threshold(funded, super_admin, pending):
    # given: "staff-big" names a pending request
    before = ledger_state(funded)
    # when
    with pytest.raises(IdempotencyConflict):
        credit_staff_grant(
            account=funded,
            amount=Decimal("50.00"),
            idempotency_key="staff-big",
            actor=super_admin,
            reason="Enterprise contract",
        )
    # then
    assert ledger_state(funded) == before


def test_a_key_of_an_entry_is_a_conflict_above_the_threshold(funded, super_admin):
    # given: "staff-small" names a written entry
    credit_staff_grant(
        account=funded,
        amount=Decimal("50.00"),
        idempotency_key="staff-small",
        actor=super_admin,
        reason="Goodwill",
    )
    before = ledger_state(funded)
    # when
    with pytest.raises(IdempotencyConflict):
        credit_staff_grant(
            account=funded,
            amount=Decimal("6000.00"),
            idempotency_key="staff-small",
            actor=super_admin,
            reason="Goodwill",
        )
    # then
    assert ledger_state(funded) == before


def test_nobody_approves_their_own_request(funded, super_admin, pending):
    # given
    before = ledger_state(funded)

    # when
    with pytest.raises(SelfApproval):
        credit_approval_approve(approval=pending, actor=super_admin)

    # then
    assert ledger_state(funded) == before
    pending.refresh_from_db()
    assert pending.status == ApprovalStatus.PENDING


def test_another_super_admin_approves_and_one_entry_is_written(
    funded, super_admin, second_super_admin, pending
):
    # when
    entry = credit_approval_approve(approval=pending, actor=second_super_admin)

    # then
    assert (entry.kind, entry.amount) == (EntryKind.GRANT, Decimal("6000.00"))
    assert entry.actor_id == super_admin.pk
    assert entry.reason == "Enterprise contract"
    assert entry.metadata == {"approval_request": pending.pk, "approved_by": second_super_admin.pk}
    pending.refresh_from_db()
    assert pending.status == ApprovalStatus.APPROVED
    assert pending.decided_by_id == second_super_admin.pk
    assert pending.decided_at is not None
    assert pending.entry_id == entry.pk
    funded.refresh_from_db()
    assert funded.balance == Decimal("6100.00") == ledger_sum(account=funded)


def test_approving_twice_writes_once(funded, second_super_admin, pending):
    # given
    first = credit_approval_approve(approval=pending, actor=second_super_admin)
    third = SuperAdminFactory()

    # when
    again = credit_approval_approve(approval=pending, actor=third)

    # then
    assert again.pk == first.pk
    assert again.replayed
    funded.refresh_from_db()
    assert funded.balance == Decimal("6100.00")
    assert funded.entries.count() == 2


def test_rejection_writes_nothing(funded, second_super_admin, pending):
    # given
    before = ledger_state(funded)

    # when
    rejected = credit_approval_reject(approval=pending, actor=second_super_admin)

    # then
    assert rejected.status == ApprovalStatus.REJECTED
    assert rejected.decided_by_id == second_super_admin.pk
    assert rejected.entry_id is None
    assert ledger_state(funded) == before


def test_a_rejection_keeps_its_reason(funded, second_super_admin, pending):
    # when
    rejected = credit_approval_reject(
        approval=pending, actor=second_super_admin, reason="  No contract on file "
    )

    # then
    assert rejected.status == ApprovalStatus.REJECTED
    pending.refresh_from_db()
    assert pending.decision_reason == "No contract on file"


def test_a_rejected_request_cannot_be_approved(funded, second_super_admin, pending):
    # given
    credit_approval_reject(approval=pending, actor=second_super_admin)
    before = ledger_state(funded)

    # when
    with pytest.raises(ApprovalDecided):
        credit_approval_approve(approval=pending, actor=SuperAdminFactory())

    # then
    assert ledger_state(funded) == before


def test_an_approved_request_cannot_be_rejected(funded, second_super_admin, pending):
    # given
    credit_approval_approve(approval=pending, actor=second_super_admin)

    # when
    with pytest.raises(ApprovalDecided):
        credit_approval_reject(approval=pending, actor=SuperAdminFactory())

    # then
    pending.refresh_from_db()
    assert pending.status == ApprovalStatus.APPROVED


def test_a_credit_admin_cannot_approve_above_their_limit(funded, credit_admin, pending):
    # given
    before = ledger_state(funded)

    # when
    with pytest.raises(OverLimit):
        credit_approval_approve(approval=pending, actor=credit_admin)

    # then
    assert ledger_state(funded) == before


def test_an_approved_refund_removes_credits(funded, super_admin, second_super_admin, settings):
    # given
    settings.CREDITS_APPROVAL_THRESHOLD = Decimal("50")
    request = credit_staff_refund(
        account=funded,
        amount=Decimal("60.00"),
        idempotency_key="staff-big-refund",
        actor=super_admin,
        reason="Contract cancelled",
    )

    # when
    entry = credit_approval_approve(approval=request, actor=second_super_admin)

    # then
    assert (entry.kind, entry.amount) == (EntryKind.REFUND, Decimal("-60.00"))
    funded.refresh_from_db()
    assert funded.balance == Decimal("40.00") == ledger_sum(account=funded)


def test_an_approval_the_ledger_refuses_leaves_the_request_pending(
    funded, super_admin, second_super_admin, settings
):
    # given: a refund request, then a smaller refund that leaves too little for it
    settings.CREDITS_APPROVAL_THRESHOLD = Decimal("50")
    request = credit_staff_refund(
        account=funded,
        amount=Decimal("60.00"),
        idempotency_key="staff-big-refund",
        actor=super_admin,
        reason="Contract cancelled",
    )
    credit_staff_refund(
        account=funded,
        amount=Decimal("50.00"),
        idempotency_key="staff-small-refund",
        actor=super_admin,
        reason="Partly refunded already",
    )
    before = ledger_state(funded)

    # when
    with pytest.raises(InsufficientCredits):
        credit_approval_approve(approval=request, actor=second_super_admin)

    # then
    assert ledger_state(funded) == before
    request.refresh_from_db()
    assert request.status == ApprovalStatus.PENDING


def test_the_database_refuses_a_self_decided_request(super_admin, pending):
    # when / then: bypassing the services
    with pytest.raises(IntegrityError), transaction.atomic():
        CreditApprovalRequest.objects.filter(pk=pending.pk).update(
            status=ApprovalStatus.REJECTED, decided_by=super_admin
        )


def test_the_database_refuses_an_approval_without_its_entry(second_super_admin, pending):
    # when / then: bypassing the services
    with pytest.raises(IntegrityError), transaction.atomic():
        CreditApprovalRequest.objects.filter(pk=pending.pk).update(
            status=ApprovalStatus.APPROVED, decided_by=second_super_admin
        )
