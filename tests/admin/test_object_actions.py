"""Grant, Refund and Adjust as buttons on the account's page: the same form and service as the
list action for that one account, offered only to staff whose permissions allow it. Every staff
action through the admin (grant, refund, adjust, approve, reject) is an admin LogEntry with the
amount and the reason; a refused one writes none."""

from decimal import Decimal

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse

from credits.models import (
    ApprovalStatus,
    CreditAccount,
    CreditApprovalRequest,
    CreditTransaction,
    EntryKind,
)
from credits.services import credit_staff_grant
from tests.admin.conftest import changelist_url, client_for, messages_of, post_action
from tests.factories import StaffUserFactory
from tests.helpers import ledger_state

pytestmark = pytest.mark.django_db

REQUESTS = changelist_url("credits.creditapprovalrequest")


def change_url(account):
    return reverse("admin:credits_creditaccount_change", args=[account.pk])


def button_url(account, action):
    return reverse("admin:credits_creditaccount_object_action", args=[account.pk, action])


def open_form(client, account, action):
    """The button's form page; returns its submission key."""
    response = client.get(button_url(account, action))
    assert response.status_code == 200
    return str(response.context["form"].initial["submission_key"])


def submit(client, account, action, *, amount, reason, key):
    return client.post(
        button_url(account, action),
        {"amount": amount, "reason": reason, "submission_key": key, "apply": "1"},
    )


def log_entries(obj):
    return list(
        LogEntry.objects.filter(
            content_type=ContentType.objects.get_for_model(obj), object_id=str(obj.pk)
        ).order_by("pk")
    )


# --- the buttons --------------------------------------------------------------------------


def test_credit_admin_sees_grant_and_adjust_buttons(credit_admin_client, account):
    # when
    response = credit_admin_client.get(change_url(account))

    # then
    assert response.status_code == 200
    content = response.content.decode()
    assert button_url(account, "grant_credits") in content
    assert button_url(account, "adjust_credits") in content
    assert button_url(account, "refund_credits") not in content


def test_super_admin_sees_all_three_buttons(super_admin_client, account):
    # when
    content = super_admin_client.get(change_url(account)).content.decode()

    # then
    for action in ("grant_credits", "refund_credits", "adjust_credits"):
        assert button_url(account, action) in content


def test_staff_with_view_permission_only_sees_no_buttons(account):
    # given
    viewer = StaffUserFactory(permissions=["credits.view_creditaccount"])

    # when
    response = client_for(viewer).get(change_url(account))

    # then
    assert response.status_code == 200
    assert "/staff/" not in response.content.decode()


@pytest.mark.parametrize("action", ["grant_credits", "refund_credits", "adjust_credits"])
def test_staff_without_the_permission_is_refused_the_button_url(account, action):
    # given
    viewer = StaffUserFactory(permissions=["credits.view_creditaccount"])
    before = ledger_state(account, admin_log=True)

    # when
    shown = client_for(viewer).get(button_url(account, action))
    posted = client_for(viewer).post(
        button_url(account, action),
        {"amount": "5.00", "reason": "x", "submission_key": "", "apply": "1"},
    )

    # then
    assert shown.status_code == 403
    assert posted.status_code == 403
    assert ledger_state(account, admin_log=True) == before


def test_credit_admin_is_refused_the_refund_button_url(credit_admin_client, account):
    # when
    response = credit_admin_client.get(button_url(account, "refund_credits"))

    # then
    assert response.status_code == 403


def test_button_opens_the_list_actions_form_for_that_account(
    credit_admin_client, account, other_account
):
    # when
    response = credit_admin_client.get(button_url(account, "grant_credits"))

    # then
    assert response.templates[0].name == "admin/credits/creditaccount/staff_action.html"
    assert response.context["accounts"] == [account]
    assert response.context["cancel_url"] == change_url(account)
    content = response.content.decode()
    assert "Grant credits for 1 account." in content
    assert "bob@example.com" not in content


def test_grant_through_the_button_writes_one_entry_with_actor_and_reason(
    credit_admin, credit_admin_client, account
):
    # given
    key = open_form(credit_admin_client, account, "grant_credits")
    entries_before = CreditTransaction.objects.count()

    # when
    response = submit(
        credit_admin_client,
        account,
        "grant_credits",
        amount="10.00",
        reason="Goodwill after outage",
        key=key,
    )

    # then
    assert response.status_code == 302
    assert response["Location"] == change_url(account)
    assert messages_of(response) == [
        "Granted 10.00 credits to alice@example.com; balance now 25.75."
    ]
    assert CreditTransaction.objects.count() == entries_before + 1
    entry = CreditTransaction.objects.latest("pk")
    assert (entry.kind, entry.amount, entry.actor, entry.reason) == (
        EntryKind.GRANT,
        Decimal("10.00"),
        credit_admin,
        "Goodwill after outage",
    )
    account.refresh_from_db()
    assert account.balance == Decimal("25.75")
    [log] = log_entries(account)
    assert (log.user, log.action_flag) == (credit_admin, CHANGE)
    assert log.get_change_message() == (
        "Granted 10.00 credits to alice@example.com; balance now 25.75 "
        f"(entry #{entry.pk}). Reason: Goodwill after outage"
    )


def test_submitting_the_same_button_form_twice_writes_and_logs_once(credit_admin_client, account):
    # given
    key = open_form(credit_admin_client, account, "grant_credits")
    submit(credit_admin_client, account, "grant_credits", amount="3.00", reason="Once", key=key)
    before = ledger_state(account, admin_log=True)

    # when
    response = submit(
        credit_admin_client, account, "grant_credits", amount="3.00", reason="Once", key=key
    )

    # then
    assert messages_of(response)[-1].startswith("Nothing written again for alice@example.com")
    assert ledger_state(account, admin_log=True) == before
    assert len(log_entries(account)) == 1


def test_adjust_through_the_button_logs_the_signed_amount(credit_admin_client, account):
    # given
    key = open_form(credit_admin_client, account, "adjust_credits")

    # when
    submit(
        credit_admin_client,
        account,
        "adjust_credits",
        amount="-0.75",
        reason="Double-counted usage",
        key=key,
    )

    # then
    account.refresh_from_db()
    assert account.balance == Decimal("15.00")
    [log] = log_entries(account)
    assert log.get_change_message().startswith(
        "Adjusted alice@example.com by -0.75 credits; balance now 15.00 (entry #"
    )
    assert log.get_change_message().endswith("Reason: Double-counted usage")


def test_refund_through_the_button_is_logged(super_admin, super_admin_client, account):
    # given
    key = open_form(super_admin_client, account, "refund_credits")

    # when
    submit(super_admin_client, account, "refund_credits", amount="5.75", reason="Asked", key=key)

    # then
    account.refresh_from_db()
    assert account.balance == Decimal("10.00")
    [log] = log_entries(account)
    assert log.user == super_admin
    assert "Refunded 5.75 credits of alice@example.com; balance now 10.00" in (
        log.get_change_message()
    )
    assert log.get_change_message().endswith("Reason: Asked")


def test_history_and_recent_actions_show_the_grant(
    credit_admin_client, super_admin_client, account
):
    # given
    key = open_form(credit_admin_client, account, "grant_credits")
    submit(credit_admin_client, account, "grant_credits", amount="10.00", reason="Apology", key=key)

    # when
    history = credit_admin_client.get(
        reverse("admin:credits_creditaccount_history", args=[account.pk])
    )
    index = credit_admin_client.get(reverse("admin:index"))

    # then
    assert history.status_code == 200
    content = history.content.decode()
    assert "have a change history" not in content
    assert "Granted 10.00 credits to alice@example.com" in content
    assert "Reason: Apology" in content
    assert change_url(account) in index.content.decode()


def test_a_refused_grant_writes_no_log_entry(credit_admin_client, account):
    # given
    key = open_form(credit_admin_client, account, "grant_credits")
    before = ledger_state(account, admin_log=True)

    # when
    response = submit(
        credit_admin_client,
        account,
        "grant_credits",
        amount="1000.01",
        reason="Too generous",
        key=key,
    )

    # then
    assert response.status_code == 302
    assert messages_of(response)[0].startswith("Nothing written for alice@example.com:")
    assert ledger_state(account, admin_log=True) == before
    assert log_entries(account) == []


def test_an_invalid_form_writes_nothing_and_shows_the_form_again(credit_admin_client, account):
    # given
    key = open_form(credit_admin_client, account, "grant_credits")
    before = ledger_state(account, admin_log=True)

    # when
    response = submit(
        credit_admin_client, account, "grant_credits", amount="0.001", reason="", key=key
    )

    # then
    assert response.status_code == 200
    assert response.context["form"].errors
    assert ledger_state(account, admin_log=True) == before


def test_a_grant_above_the_threshold_logs_the_request(super_admin, super_admin_client, account):
    # given
    key = open_form(super_admin_client, account, "grant_credits")

    # when
    submit(
        super_admin_client,
        account,
        "grant_credits",
        amount="6000.00",
        reason="Enterprise contract",
        key=key,
    )

    # then
    approval = CreditApprovalRequest.objects.get()
    [log] = log_entries(account)
    assert log.get_change_message() == (
        f"Asked for approval of a grant of 6000.00 credits (request #{approval.pk}). "
        "Reason: Enterprise contract"
    )


def test_the_button_url_of_a_missing_account_redirects(credit_admin_client, account):
    # given
    missing = CreditAccount(pk=account.pk + 1000)

    # when
    response = credit_admin_client.get(button_url(missing, "grant_credits"))

    # then
    assert response.status_code == 302
    assert LogEntry.objects.count() == 0


# --- approvals ----------------------------------------------------------------------------


@pytest.fixture
def pending(account, super_admin):
    return credit_staff_grant(
        account=account,
        amount=Decimal("6000.00"),
        idempotency_key="admin:grant:big",
        actor=super_admin,
        reason="Enterprise contract",
    )


def test_an_approval_is_logged_on_the_request(second_super_admin, account, pending):
    # when
    post_action(client_for(second_super_admin), REQUESTS, "approve_requests", [pending.pk])

    # then
    entry = CreditTransaction.objects.latest("pk")
    [log] = log_entries(pending)
    assert log.user == second_super_admin
    assert log.get_change_message() == (
        "Approved the grant of 6000.00 credits for alice@example.com "
        f"(entry #{entry.pk}, balance now 6015.75). Reason: Enterprise contract"
    )


def test_approving_twice_logs_once(second_super_admin, account, pending):
    # given
    client = client_for(second_super_admin)
    post_action(client, REQUESTS, "approve_requests", [pending.pk])

    # when
    post_action(client, REQUESTS, "approve_requests", [pending.pk])

    # then
    assert len(log_entries(pending)) == 1


def test_a_rejection_is_logged_on_the_request(second_super_admin, account, pending):
    # when
    post_action(client_for(second_super_admin), REQUESTS, "reject_requests", [pending.pk])

    # then
    pending.refresh_from_db()
    assert pending.status == ApprovalStatus.REJECTED
    [log] = log_entries(pending)
    assert log.get_change_message() == (
        "Rejected the grant of 6000.00 credits for alice@example.com; nothing written to the "
        "ledger. Reason: Enterprise contract"
    )


def test_a_refused_self_approval_writes_no_log_entry(super_admin_client, account, pending):
    # given
    logs_before = LogEntry.objects.count()

    # when
    post_action(super_admin_client, REQUESTS, "approve_requests", [pending.pk])
    post_action(super_admin_client, REQUESTS, "reject_requests", [pending.pk])

    # then
    assert LogEntry.objects.count() == logs_before
    pending.refresh_from_db()
    assert pending.status == ApprovalStatus.PENDING


# --- approve and reject buttons on the request's page ------------------------------------


def request_change_url(approval):
    return reverse("admin:credits_creditapprovalrequest_change", args=[approval.pk])


def decide_url(approval, action):
    return reverse("admin:credits_creditapprovalrequest_object_action", args=[approval.pk, action])


def test_a_pending_request_shows_approve_and_reject_to_an_approver(second_super_admin, pending):
    # when
    content = client_for(second_super_admin).get(request_change_url(pending)).content.decode()

    # then
    assert decide_url(pending, "approve_requests") in content
    assert decide_url(pending, "reject_requests") in content


def test_a_viewer_sees_no_decision_buttons_and_is_refused_their_url(account, pending):
    # given
    viewer = StaffUserFactory(permissions=["credits.view_creditapprovalrequest"])
    client = client_for(viewer)
    before = ledger_state(account, admin_log=True)

    # when
    page = client.get(request_change_url(pending))
    posted = client.post(decide_url(pending, "approve_requests"))

    # then
    assert page.status_code == 200
    assert "/decide/" not in page.content.decode()
    assert posted.status_code == 403
    assert ledger_state(account, admin_log=True) == before
    pending.refresh_from_db()
    assert pending.status == ApprovalStatus.PENDING


def test_the_approve_button_confirms_then_approves_and_logs(second_super_admin, account, pending):
    # given
    client = client_for(second_super_admin)
    before = ledger_state(account, admin_log=True)

    # when
    confirmation = client.get(decide_url(pending, "approve_requests"))
    after_confirmation = ledger_state(account, admin_log=True)
    response = client.post(decide_url(pending, "approve_requests"))

    # then
    assert "Approve the grant of 6000.00 credits for alice@example.com" in (
        confirmation.content.decode()
    )
    assert after_confirmation == before  # the confirmation page writes nothing
    assert response.status_code == 302
    assert response["Location"] == request_change_url(pending)
    pending.refresh_from_db()
    assert pending.status == ApprovalStatus.APPROVED
    account.refresh_from_db()
    assert account.balance == Decimal("6015.75")
    [log] = log_entries(pending)
    assert log.get_change_message().startswith("Approved the grant of 6000.00 credits")
    later = client.get(request_change_url(pending)).content.decode()
    assert "/decide/" not in later


def test_the_reject_button_rejects_and_logs(second_super_admin, account, pending):
    # given
    before = ledger_state(account, admin_log=True)

    # when
    client_for(second_super_admin).post(
        decide_url(pending, "reject_requests"), {"reason": "No contract on file"}
    )

    # then
    pending.refresh_from_db()
    assert pending.status == ApprovalStatus.REJECTED
    assert pending.decision_reason == "No contract on file"
    assert ledger_state(account) == before._replace(admin_log=None)
    [log] = log_entries(pending)
    assert log.get_change_message().startswith("Rejected the grant of 6000.00 credits")
    assert log.get_change_message().endswith("Rejected because: No contract on file")


def test_the_reject_button_needs_a_reason_and_without_one_changes_nothing(
    second_super_admin, account, pending
):
    # given
    before = ledger_state(account, admin_log=True)

    # when
    response = client_for(second_super_admin).post(
        decide_url(pending, "reject_requests"), {"reason": "  "}
    )

    # then: the page again, with the error; the request still pending, nothing logged
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    pending.refresh_from_db()
    assert pending.status == ApprovalStatus.PENDING
    assert pending.decision_reason == ""
    assert ledger_state(account, admin_log=True) == before
    assert log_entries(pending) == []


def test_the_requester_cannot_approve_through_the_button(super_admin_client, account, pending):
    # given
    before = ledger_state(account, admin_log=True)

    # when
    response = super_admin_client.post(decide_url(pending, "approve_requests"))

    # then
    assert messages_of(response)[-1].startswith(f"Request #{pending.pk}: not approved.")
    assert ledger_state(account, admin_log=True) == before
