"""credits.services.staff with lots and holds: a staff grant names its lot's category and a
future expiry (kept by an approval request and granted so by its approval), and a staff member
with `credits.release_hold` releases a customer's active hold with a reason. A refused call
changes nothing: the ledger, the lots and the holds are checked after each."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from credits.exceptions import (
    HoldNotActive,
    IdempotencyConflict,
    InvalidAmount,
    ReasonRequired,
    StaffPermissionDenied,
)
from credits.models import (
    ApprovalStatus,
    CreditApprovalRequest,
    CreditHold,
    CreditLot,
    HoldStatus,
    LotCategory,
)
from credits.services import (
    credit_approval_approve,
    credit_hold_capture,
    credit_hold_create,
    credit_holds_expire,
    credit_staff_grant,
    credit_staff_release_hold,
)
from credits.services.staff import GRANT_EXPIRY_IN_PAST, GRANT_EXPIRY_PASSED
from tests.factories import CreditAdminFactory, StaffUserFactory, SuperAdminFactory
from tests.helpers import assert_ledger_consistent, fund, ledger_state

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


def lots_and_holds(account):
    """What a refused call must leave as it was, beyond the ledger."""
    account.refresh_from_db()
    return (
        account.held,
        list(CreditLot.objects.filter(account=account).values_list("pk", "remaining")),
        list(CreditHold.objects.filter(account=account).values_list("pk", "status", "reason")),
    )


def in_days(days: int):
    return timezone.now() + timedelta(days=days)


# --- a staff grant's lot ------------------------------------------------------------------


def test_a_staff_grant_makes_a_lot_of_the_category_and_expiry_asked(funded, credit_admin):
    # given
    expires = in_days(30)

    # when
    entry = credit_staff_grant(
        account=funded,
        amount=Decimal("40.00"),
        idempotency_key="staff-lot",
        actor=credit_admin,
        reason="Conference voucher",
        category=LotCategory.MIGRATION,
        expires_at=expires,
    )

    # then
    lot = CreditLot.objects.get(entry=entry)
    assert (lot.category, lot.amount, lot.remaining) == (
        LotCategory.MIGRATION,
        Decimal("40.00"),
        Decimal("40.00"),
    )
    assert lot.expires_at == expires
    funded.refresh_from_db()
    assert funded.balance == Decimal("140.00")
    assert_ledger_consistent()


def test_a_staff_grant_without_terms_makes_the_settings_lot_that_never_expires(
    funded, credit_admin, settings
):
    # given: staff grants are paid credits in this deployment
    settings.CREDITS_LOT_CATEGORIES = {**settings.CREDITS_LOT_CATEGORIES, "grant:staff": "paid"}

    # when
    entry = credit_staff_grant(
        account=funded,
        amount=Decimal("5.00"),
        idempotency_key="staff-default-lot",
        actor=credit_admin,
        reason="Goodwill",
    )

    # then
    lot = CreditLot.objects.get(entry=entry)
    assert (lot.category, lot.expires_at) == (LotCategory.PAID, None)


@pytest.mark.parametrize(
    ("terms", "message"),
    [
        ({"expires_at": timezone.now() - timedelta(minutes=1)}, GRANT_EXPIRY_IN_PAST),
        ({"category": "vip"}, None),
        ({"expires_at": timezone.now().replace(tzinfo=None) + timedelta(days=1)}, None),
    ],
    ids=["past-expiry", "unknown-category", "naive-expiry"],
)
@pytest.mark.parametrize("amount", ["40.00", "6000.00"], ids=["at-once", "for-approval"])
def test_a_staff_grant_with_bad_terms_is_refused_and_changes_nothing(
    funded, super_admin, terms, message, amount
):
    # given
    before = ledger_state(funded), lots_and_holds(funded)

    # when
    with pytest.raises(InvalidAmount) as refused:
        credit_staff_grant(
            account=funded,
            amount=Decimal(amount),
            idempotency_key="staff-bad-terms",
            actor=super_admin,
            reason="Goodwill",
            **terms,
        )

    # then
    if message is not None:
        assert refused.value.message == message
    assert (ledger_state(funded), lots_and_holds(funded)) == before


def test_bad_terms_from_staff_without_the_permission_are_refused_for_the_permission(funded):
    # given: who may act is checked before what they asked for
    viewer = StaffUserFactory(permissions=["credits.view_creditaccount"])
    before = ledger_state(funded), lots_and_holds(funded)

    # when
    with pytest.raises(StaffPermissionDenied):
        credit_staff_grant(
            account=funded,
            amount=Decimal("5.00"),
            idempotency_key="staff-no-permission",
            actor=viewer,
            reason="Goodwill",
            category="vip",
        )

    # then
    assert (ledger_state(funded), lots_and_holds(funded)) == before


# --- through an approval request -----------------------------------------------------------


@pytest.fixture
def pending_with_terms(funded, super_admin):
    """A grant of 6000.00 (above the default threshold of 5000) as monthly credits expiring
    in 30 days, waiting for approval."""
    return credit_staff_grant(
        account=funded,
        amount=Decimal("6000.00"),
        idempotency_key="staff-big-lot",
        actor=super_admin,
        reason="Enterprise contract",
        category=LotCategory.MONTHLY,
        expires_at=in_days(30),
    )


def test_an_approval_grants_the_lot_its_request_asked_for(funded, pending_with_terms):
    # given
    assert isinstance(pending_with_terms, CreditApprovalRequest)
    assert not CreditLot.objects.filter(amount=Decimal("6000.00")).exists()

    # when
    entry = credit_approval_approve(approval=pending_with_terms, actor=SuperAdminFactory())

    # then
    lot = CreditLot.objects.get(entry=entry)
    pending_with_terms.refresh_from_db()
    assert (lot.category, lot.amount) == (LotCategory.MONTHLY, Decimal("6000.00"))
    assert lot.expires_at == pending_with_terms.lot_expires_at
    funded.refresh_from_db()
    assert funded.balance == Decimal("6100.00")
    assert_ledger_consistent()


def test_an_approval_after_the_expiry_passed_is_refused_and_the_request_waits(
    funded, pending_with_terms
):
    # given: the expiry passes while the request waits
    CreditApprovalRequest.objects.filter(pk=pending_with_terms.pk).update(
        lot_expires_at=timezone.now() - timedelta(minutes=1)
    )
    pending_with_terms.refresh_from_db()
    before = ledger_state(funded), lots_and_holds(funded)

    # when
    with pytest.raises(InvalidAmount) as refused:
        credit_approval_approve(approval=pending_with_terms, actor=SuperAdminFactory())

    # then
    assert refused.value.message == GRANT_EXPIRY_PASSED
    assert (ledger_state(funded), lots_and_holds(funded)) == before
    pending_with_terms.refresh_from_db()
    assert pending_with_terms.status == ApprovalStatus.PENDING


def test_a_replay_of_a_request_with_other_terms_is_a_conflict(
    funded, super_admin, pending_with_terms
):
    # given
    before = ledger_state(funded), lots_and_holds(funded)

    # when
    with pytest.raises(IdempotencyConflict):
        credit_staff_grant(
            account=funded,
            amount=Decimal("6000.00"),
            idempotency_key="staff-big-lot",
            actor=super_admin,
            reason="Enterprise contract",
            category=LotCategory.PAID,
        )

    # then
    assert (ledger_state(funded), lots_and_holds(funded)) == before


@pytest.mark.parametrize(
    "change", [{"lot_category": "vip"}, {"kind": "refund", "amount": Decimal("-6000.00")}]
)
def test_the_database_refuses_unknown_or_misplaced_lot_terms(pending_with_terms, change):
    # when / then: a write that skips the services
    with pytest.raises(IntegrityError), transaction.atomic():
        CreditApprovalRequest.objects.filter(pk=pending_with_terms.pk).update(**change)


# --- releasing a hold ---------------------------------------------------------------------


@pytest.fixture
def hold(funded):
    return credit_hold_create(
        account=funded,
        amount=Decimal("30.00"),
        idempotency_key="job-1",
        description="Render job",
    )


def test_a_credit_admin_releases_a_hold_with_a_reason(funded, hold, credit_admin):
    # given
    funded.refresh_from_db()
    assert funded.held == Decimal("30.00")

    # when
    released = credit_staff_release_hold(
        actor=credit_admin, hold=hold, reason="  Job crashed; customer asked  "
    )

    # then
    assert released.replayed is False
    hold.refresh_from_db()
    assert hold.status == HoldStatus.RELEASED
    assert (hold.released_by_id, hold.reason) == (credit_admin.pk, "Job crashed; customer asked")
    assert hold.resolved_at is not None
    funded.refresh_from_db()
    assert (funded.balance, funded.held) == (Decimal("100.00"), Decimal("0.00"))
    assert_ledger_consistent()


@pytest.mark.parametrize(
    "permissions",
    [[], ["credits.view_credithold", "credits.view_creditaccount", "credits.grant_credits"]],
    ids=["staff-only", "other-permissions"],
)
def test_staff_without_release_hold_are_refused(funded, hold, permissions):
    # given
    staff = StaffUserFactory(permissions=permissions)
    before = ledger_state(funded), lots_and_holds(funded)

    # when
    with pytest.raises(StaffPermissionDenied) as refused:
        credit_staff_release_hold(actor=staff, hold=hold, reason="Job crashed")

    # then
    assert refused.value.details == {"permission": "credits.release_hold"}
    assert (ledger_state(funded), lots_and_holds(funded)) == before


@pytest.mark.parametrize("reason", ["", "   \n"], ids=["empty", "blank"])
def test_a_release_needs_a_reason(funded, hold, credit_admin, reason):
    # given
    before = ledger_state(funded), lots_and_holds(funded)

    # when
    with pytest.raises(ReasonRequired):
        credit_staff_release_hold(actor=credit_admin, hold=hold, reason=reason)

    # then
    assert (ledger_state(funded), lots_and_holds(funded)) == before


def test_a_captured_hold_cannot_be_released(funded, hold, credit_admin):
    # given
    credit_hold_capture(hold=hold, idempotency_key="job-1-capture", amount=Decimal("12.00"))
    before = ledger_state(funded), lots_and_holds(funded)

    # when
    with pytest.raises(HoldNotActive):
        credit_staff_release_hold(actor=credit_admin, hold=hold, reason="Job crashed")

    # then
    assert (ledger_state(funded), lots_and_holds(funded)) == before
    assert ledger_state(funded).balance == Decimal("88.00")


def test_an_expired_hold_cannot_be_released(funded, hold, credit_admin):
    # given
    assert credit_holds_expire(now=hold.expires_at + timedelta(seconds=1)) == 1
    before = ledger_state(funded), lots_and_holds(funded)

    # when
    with pytest.raises(HoldNotActive):
        credit_staff_release_hold(actor=credit_admin, hold=hold, reason="Job crashed")

    # then
    assert (ledger_state(funded), lots_and_holds(funded)) == before


def test_releasing_a_released_hold_changes_nothing(funded, hold, credit_admin):
    # given
    credit_staff_release_hold(actor=credit_admin, hold=hold, reason="Job crashed")
    before = ledger_state(funded), lots_and_holds(funded)

    # when
    again = credit_staff_release_hold(actor=SuperAdminFactory(), hold=hold, reason="Asked twice")

    # then
    assert again.replayed is True
    assert (again.released_by_id, again.reason) == (credit_admin.pk, "Job crashed")
    assert (ledger_state(funded), lots_and_holds(funded)) == before
