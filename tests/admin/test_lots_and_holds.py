"""Lots and holds in the admin: the account's page shows held, available, its lots (open ones
first) and its active holds; the grant form takes a lot category and a future expiry; staff with
`credits.release_hold` release a hold with a reason, from the account's page, the hold's page or
the holds' list. A refusal is a form error or a message, never a 500, and changes nothing."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse
from django.utils import timezone

from credits.models import (
    ApprovalStatus,
    CreditApprovalRequest,
    CreditHold,
    CreditLot,
    HoldStatus,
    LotCategory,
)
from credits.services import (
    credit_grant,
    credit_hold_capture,
    credit_hold_create,
    credit_hold_release,
    credit_spend,
)
from credits.services.staff import GRANT_EXPIRY_IN_PAST
from tests.admin.conftest import changelist_url, client_for, messages_of, post_action
from tests.factories import StaffUserFactory
from tests.helpers import assert_ledger_consistent, ledger_state

pytestmark = pytest.mark.django_db

HOLDS = changelist_url("credits.credithold")
REQUESTS = changelist_url("credits.creditapprovalrequest")


def change_url(account):
    return reverse("admin:credits_creditaccount_change", args=[account.pk])


def grant_url(account):
    return reverse("admin:credits_creditaccount_object_action", args=[account.pk, "grant_credits"])


def release_url(hold, **query):
    url = reverse("admin:credits_credithold_release", args=[hold.pk])
    return url + ("?from=account" if query.get("from_account") else "")


def form_local(moment) -> str:
    """A moment as the grant form's date-time input sends it (the server's time zone, UTC)."""
    return timezone.localtime(moment).strftime("%Y-%m-%dT%H:%M")


def lots_and_holds(account):
    account.refresh_from_db()
    return (
        account.held,
        list(CreditLot.objects.filter(account=account).values_list("pk", "remaining")),
        list(CreditHold.objects.filter(account=account).values_list("pk", "status", "reason")),
    )


def open_grant_form(client, account):
    response = client.get(grant_url(account))
    assert response.status_code == 200
    return str(response.context["form"].initial["submission_key"])


def submit_grant(client, account, *, key, **fields):
    return client.post(
        grant_url(account),
        {"reason": "Conference voucher", "submission_key": key, "apply": "1", **fields},
    )


@pytest.fixture
def hold(account):
    return credit_hold_create(
        account=account,
        amount=Decimal("5.00"),
        idempotency_key="render-1",
        description="Render job",
    )


# --- the account's page -------------------------------------------------------------------


def test_account_page_shows_held_available_lots_open_first_and_active_holds(
    credit_admin_client, account
):
    # given: the signup lot (15.75 of 20.00 left), a paid lot expiring in 60 days, a
    # promotional lot of 10.00 spent entirely (drawn first: soonest expiry), a hold of 30.00
    paid = credit_grant(
        account=account,
        amount=Decimal("50.00"),
        idempotency_key="paid-lot",
        category=LotCategory.PAID,
        expires_at=timezone.now() + timedelta(days=60),
    )
    spent = credit_grant(
        account=account,
        amount=Decimal("10.00"),
        idempotency_key="soon-lot",
        expires_at=timezone.now() + timedelta(days=10),
    )
    credit_spend(account=account, amount=Decimal("10.00"), idempotency_key="use-soon-lot")
    hold = credit_hold_create(
        account=account, amount=Decimal("30.00"), idempotency_key="job-1", description="Video job"
    )
    released = credit_hold_create(
        account=account, amount=Decimal("1.00"), idempotency_key="job-0", description="Old job"
    )
    credit_hold_release(hold=released)  # so only `hold` is active

    # when
    response = credit_admin_client.get(change_url(account))

    # then
    assert response.status_code == 200
    signup = CreditLot.objects.get(account=account, amount=Decimal("20.00"))
    lots = list(response.context["lots_page"])
    # (open lots as spends draw them: promotional before paid; the spent one last)
    assert [lot.pk for lot in lots] == [signup.pk, paid.lot.pk, spent.lot.pk]
    assert [hold.pk for hold in response.context["active_holds"]] == [hold.pk]
    content = response.content.decode()
    for text in (
        "15.75 of 20.00",
        "50.00 of 50.00",
        "0.00 of 10.00",
        "Paid",
        "Promotional",
        "never",
        "Video job",
        "30.00 held",
        release_url(hold, from_account=True),
    ):
        assert text in content, text
    assert "Old job" not in content
    fields = {
        line.field["name"]: line.contents()
        for fieldset in response.context["adminform"]
        for row in fieldset
        for line in row
    }
    assert (fields["balance"], fields["held"], fields["available"]) == (
        "65.75",
        "30.00",
        "35.75",
    )


def test_account_page_offers_no_release_to_staff_without_the_permission(account, hold):
    # given
    viewer = StaffUserFactory(permissions=["credits.view_creditaccount"])

    # when
    response = client_for(viewer).get(change_url(account))

    # then
    assert response.status_code == 200
    content = response.content.decode()
    assert "Render job" in content
    assert release_url(hold) not in content


# --- the grant form's lot terms -----------------------------------------------------------


def test_grant_with_expiry_and_category_makes_that_lot(credit_admin_client, account):
    # given
    key = open_grant_form(credit_admin_client, account)
    expires = (timezone.now() + timedelta(days=30)).replace(second=0, microsecond=0)

    # when
    response = submit_grant(
        credit_admin_client,
        account,
        key=key,
        amount="40",
        category=LotCategory.MIGRATION,
        expires_at=form_local(expires),
    )

    # then
    assert response.status_code == 302
    lot = CreditLot.objects.get(account=account, amount=Decimal("40.00"))
    assert (lot.category, lot.remaining, lot.expires_at) == (
        LotCategory.MIGRATION,
        Decimal("40.00"),
        expires,
    )
    (message,) = messages_of(response)
    assert message == (
        "Granted 40.00 credits to alice@example.com; balance now 55.75 "
        f"(migration lot, expires {expires:%Y-%m-%d %H:%M})."
    )
    assert_ledger_consistent()


def test_grant_without_terms_makes_a_lot_of_the_default_category(credit_admin_client, account):
    # given
    key = open_grant_form(credit_admin_client, account)

    # when
    submit_grant(credit_admin_client, account, key=key, amount="7", category="", expires_at="")

    # then
    lot = CreditLot.objects.get(account=account, amount=Decimal("7.00"))
    assert (lot.category, lot.expires_at) == (LotCategory.PROMOTIONAL, None)


def test_grant_form_names_the_default_category(credit_admin_client, account, settings):
    # given
    settings.CREDITS_LOT_CATEGORIES = {**settings.CREDITS_LOT_CATEGORIES, "grant:staff": "paid"}

    # when
    response = credit_admin_client.get(grant_url(account))

    # then
    choices = response.context["form"].fields["category"].choices
    assert choices[0] == ("", "Default (paid)")
    assert [value for value, _ in choices[1:]] == LotCategory.values


@pytest.mark.parametrize(
    ("fields", "field", "error"),
    [
        (
            {"expires_at": form_local(timezone.now() - timedelta(hours=1))},
            "expires_at",
            GRANT_EXPIRY_IN_PAST,
        ),
        ({"category": "vip"}, "category", None),
        ({"expires_at": "next tuesday"}, "expires_at", None),
    ],
    ids=["past-expiry", "unknown-category", "not-a-date"],
)
def test_grant_with_bad_terms_is_a_form_error_and_changes_nothing(
    credit_admin_client, account, fields, field, error
):
    # given
    key = open_grant_form(credit_admin_client, account)
    before = ledger_state(account, admin_log=True), lots_and_holds(account)

    # when
    response = submit_grant(credit_admin_client, account, key=key, amount="40", **fields)

    # then
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert list(errors) == [field]
    if error is not None:
        assert errors[field] == [error]
    assert "Nothing was written" in messages_of(response)[0]
    assert (ledger_state(account, admin_log=True), lots_and_holds(account)) == before


def test_a_grant_above_the_threshold_keeps_its_terms_until_approved(
    super_admin_client, second_super_admin, account, settings
):
    # given: a billing super admin asks for 500 as monthly credits expiring in 30 days
    settings.CREDITS_APPROVAL_THRESHOLD = Decimal("100")
    key = open_grant_form(super_admin_client, account)
    expires = (timezone.now() + timedelta(days=30)).replace(second=0, microsecond=0)
    submit_grant(
        super_admin_client,
        account,
        key=key,
        amount="500",
        category=LotCategory.MONTHLY,
        expires_at=form_local(expires),
    )
    request = CreditApprovalRequest.objects.get(account=account)
    assert (request.lot_category, request.lot_expires_at) == (LotCategory.MONTHLY, expires)
    assert not CreditLot.objects.filter(amount=Decimal("500.00")).exists()
    approver = client_for(second_super_admin)
    page = approver.get(reverse("admin:credits_creditapprovalrequest_change", args=[request.pk]))
    assert f"monthly, expires {expires:%Y-%m-%d %H:%M}" in page.content.decode()

    # when another approves it
    response = post_action(approver, REQUESTS, "approve_requests", [request.pk])

    # then
    assert response.status_code == 302
    request.refresh_from_db()
    assert request.status == ApprovalStatus.APPROVED
    lot = CreditLot.objects.get(entry=request.entry)
    assert (lot.category, lot.amount, lot.expires_at) == (
        LotCategory.MONTHLY,
        Decimal("500.00"),
        expires,
    )
    assert_ledger_consistent()


# --- releasing a hold ---------------------------------------------------------------------


def test_release_from_the_account_page_asks_a_reason_and_frees_the_hold(
    credit_admin_client, credit_admin, account, hold
):
    # given
    page = credit_admin_client.get(release_url(hold, from_account=True))
    assert page.status_code == 200
    assert "Render job" in page.content.decode()

    # when
    response = credit_admin_client.post(
        release_url(hold, from_account=True),
        {"reason": "Job crashed", "apply": "1"},
    )

    # then
    assert response.status_code == 302
    assert response["Location"] == change_url(account)
    hold.refresh_from_db()
    assert (hold.status, hold.released_by_id, hold.reason) == (
        HoldStatus.RELEASED,
        credit_admin.pk,
        "Job crashed",
    )
    account.refresh_from_db()
    assert (account.balance, account.held) == (Decimal("15.75"), Decimal("0.00"))
    assert messages_of(response) == [
        f"Released hold #{hold.pk} of alice@example.com: 5.00 credits free again "
        "(available now 15.75)."
    ]
    logged = LogEntry.objects.filter(change_message__contains="Reason: Job crashed")
    assert {entry.object_id for entry in logged} == {str(hold.pk), str(account.pk)}
    assert_ledger_consistent()


def test_release_without_a_reason_is_a_form_error_and_changes_nothing(
    credit_admin_client, account, hold
):
    # given
    before = ledger_state(account, admin_log=True), lots_and_holds(account)

    # when
    response = credit_admin_client.post(release_url(hold), {"reason": "  ", "apply": "1"})

    # then
    assert response.status_code == 200
    assert list(response.context["form"].errors) == ["reason"]
    assert (ledger_state(account, admin_log=True), lots_and_holds(account)) == before


def test_staff_without_the_permission_are_refused_the_release(account, hold):
    # given: staff who may see holds but not release them
    viewer = StaffUserFactory(permissions=["credits.view_creditaccount", "credits.view_credithold"])
    client = client_for(viewer)
    before = ledger_state(account, admin_log=True), lots_and_holds(account)

    # when
    shown = client.get(release_url(hold))
    posted = client.post(release_url(hold), {"reason": "Job crashed", "apply": "1"})
    listed = post_action(client, HOLDS, "release_holds", [hold.pk], reason="x", apply="1")
    page = client.get(reverse("admin:credits_credithold_change", args=[hold.pk]))

    # then
    assert (shown.status_code, posted.status_code) == (403, 403)
    assert listed.status_code < 500
    assert page.status_code == 200
    assert release_url(hold) not in page.content.decode()
    assert (ledger_state(account, admin_log=True), lots_and_holds(account)) == before


def test_release_of_a_captured_hold_is_refused_with_a_message(credit_admin_client, account, hold):
    # given
    credit_hold_capture(hold=hold, idempotency_key="render-1-capture")
    before = ledger_state(account, admin_log=True), lots_and_holds(account)

    # when
    response = post_action(
        credit_admin_client, HOLDS, "release_holds", [hold.pk], reason="Job crashed", apply="1"
    )

    # then
    assert response.status_code == 302
    (message,) = messages_of(response)
    assert message.startswith(f"Hold #{hold.pk} of alice@example.com: not released.")
    assert "no longer active" in message
    assert (ledger_state(account, admin_log=True), lots_and_holds(account)) == before


def test_release_of_a_released_hold_says_so_and_changes_nothing(credit_admin_client, account, hold):
    # given
    credit_admin_client.post(
        release_url(hold), {"reason": "Job crashed", "apply": "1"}, follow=True
    )
    before = ledger_state(account, admin_log=True), lots_and_holds(account)

    # when
    response = credit_admin_client.post(release_url(hold), {"reason": "Again", "apply": "1"})

    # then
    assert messages_of(response) == [
        f"Hold #{hold.pk} of alice@example.com was already released; nothing changed."
    ]
    assert (ledger_state(account, admin_log=True), lots_and_holds(account)) == before


# --- the holds' list ----------------------------------------------------------------------


def test_hold_list_filters_by_status_and_is_read_only(credit_admin_client, account, hold):
    # given
    other = credit_hold_create(account=account, amount=Decimal("1.00"), idempotency_key="r-2")
    credit_hold_capture(hold=other, idempotency_key="r-2-capture")

    # when
    active = credit_admin_client.get(HOLDS, {"status__exact": "active"})
    captured = credit_admin_client.get(HOLDS, {"status__exact": "captured"})
    page = credit_admin_client.get(reverse("admin:credits_credithold_change", args=[hold.pk]))

    # then
    assert [row.pk for row in active.context["cl"].result_list] == [hold.pk]
    assert [row.pk for row in captured.context["cl"].result_list] == [other.pk]
    assert reverse("admin:credits_credithold_add") not in active.content.decode()
    assert credit_admin_client.get(reverse("admin:credits_credithold_add")).status_code == 403
    assert page.status_code == 200
    assert release_url(hold) in page.content.decode()
    assert b'name="reason"' not in page.content  # the page itself edits nothing
