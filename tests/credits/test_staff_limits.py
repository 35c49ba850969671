"""Staff limits beyond the permission: nobody acts on their own account, and a rolling 24-hour
limit per staff member (CREDITS_ADMIN_DAILY_LIMIT), through the services, the staff API and the
admin's actions. A refusal is a 403 in the error shape and writes nothing: no entry, no request.
"""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from credits.exceptions import OverDailyLimit, OwnAccount
from credits.models import CreditAccount, CreditApprovalRequest, CreditTransaction
from credits.selectors import ledger_sum, staff_daily_allowance
from credits.services import (
    credit_approval_approve,
    credit_staff_adjust,
    credit_staff_grant,
    credit_staff_refund,
)
from tests.admin.conftest import changelist_url, client_for, messages_of, post_action
from tests.factories import CreditAdminFactory, ProvisionedUserFactory, SuperAdminFactory

pytestmark = pytest.mark.django_db

ADJUST = "/api/admin/billing/credits/adjust"
REFUND = "/api/admin/billing/refund"
ACCOUNTS = changelist_url("credits.creditaccount")


@pytest.fixture
def customer():
    """A signed-up user holding the 20.00 signup grant."""
    return ProvisionedUserFactory(email="customer@example.com")


@pytest.fixture
def daily(settings):
    settings.CREDITS_ADMIN_DAILY_LIMIT = Decimal("2500")
    return settings


def rows():
    return (
        list(CreditTransaction.objects.order_by("pk").values_list("pk", "amount")),
        list(CreditApprovalRequest.objects.order_by("pk").values_list("pk", "status")),
        list(CreditAccount.objects.order_by("pk").values_list("pk", "balance")),
    )


def api(user):
    client = APIClient()
    client.force_authenticate(user=user)
    return client


def error_of(response):
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    return body["error"]


# --- own account --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make_actor", "service"),
    [
        (CreditAdminFactory, credit_staff_grant),
        (CreditAdminFactory, credit_staff_adjust),
        (SuperAdminFactory, credit_staff_refund),
    ],
    ids=["grant", "adjust", "refund"],
)
def test_staff_may_not_act_on_their_own_account(make_actor, service):
    # given: a staff member who has a credit account of their own
    from billing.services import user_provision

    actor = make_actor()

    user_provision(user=actor, signup_grant=True)
    before = rows()
    # when
    with pytest.raises(OwnAccount) as refused:
        service(
            account=actor.credit_account,
            amount=Decimal("5.00"),
            idempotency_key="own-1",
            actor=actor,
            reason="for me",
        )
    # then
    assert refused.value.status_code == 403
    assert rows() == before


def test_nobody_approves_a_request_for_their_own_account(settings, customer):
    # given: a pending grant for a super admin's own account, made by another super admin
    from billing.services import user_provision

    settings.CREDITS_APPROVAL_THRESHOLD = Decimal("100")
    owner = SuperAdminFactory()
    user_provision(user=owner, signup_grant=True)
    pending = credit_staff_grant(
        account=owner.credit_account,
        amount=Decimal("500.00"),
        idempotency_key="for-owner",
        actor=SuperAdminFactory(),
        reason="bonus",
    )
    before = rows()
    # when
    with pytest.raises(OwnAccount):
        credit_approval_approve(approval=pending, actor=owner)
    # then
    assert rows() == before


def test_the_api_refuses_an_adjustment_of_the_callers_own_account():
    # given
    from billing.services import user_provision

    actor = CreditAdminFactory()
    user_provision(user=actor, signup_grant=True)
    before = rows()
    # when
    response = api(actor).post(
        ADJUST,
        {"user_id": actor.pk, "amount": "10.00", "reason": "mine", "idempotency_key": "own"},
        format="json",
    )
    # then
    assert response.status_code == 403
    assert error_of(response)["code"] == "own_account"
    assert rows() == before


def test_the_admin_reports_own_account_per_account_and_grants_the_others(customer):
    # given: a credit admin selecting their own account and a customer's
    from billing.services import user_provision

    actor = CreditAdminFactory(email="me@example.com")
    user_provision(user=actor, signup_grant=True)
    client = client_for(actor)
    pks = [actor.credit_account.pk, customer.credit_account.pk]
    page = post_action(client, ACCOUNTS, "grant_credits", pks)
    key = str(page.context["form"].initial["submission_key"])
    # when
    response = post_action(
        client,
        ACCOUNTS,
        "grant_credits",
        pks,
        amount="7.00",
        reason="r",
        submission_key=key,
        apply="1",
    )
    # then
    messages = messages_of(response)
    assert any(
        message.startswith("Nothing written for me@example.com: Staff do not grant")
        for message in messages
    ), messages
    assert CreditTransaction.objects.filter(actor=actor).count() == 1
    actor.credit_account.refresh_from_db()
    customer.credit_account.refresh_from_db()
    assert actor.credit_account.balance == Decimal("20.00")
    assert customer.credit_account.balance == Decimal("27.00")


# --- the rolling 24-hour limit ------------------------------------------------------------


def test_the_daily_limit_adds_up_a_staff_members_actions(daily, customer):
    # given: a credit admin (1000 per action) who moved 1000 + 1000 - 300 in absolute terms
    actor = CreditAdminFactory()
    client = api(actor)
    for key, amount in (("a", "1000.00"), ("b", "1000.00"), ("c", "-300.00")):
        response = client.post(
            ADJUST,
            {"user_id": customer.pk, "amount": amount, "reason": "r", "idempotency_key": key},
            format="json",
        )
        assert response.status_code == 201, response.json()
    before = rows()
    # when: 200.01 more (200.00 are left of 2500)
    response = client.post(
        ADJUST,
        {"user_id": customer.pk, "amount": "200.01", "reason": "r", "idempotency_key": "d"},
        format="json",
    )
    # then
    assert response.status_code == 403
    error = error_of(response)
    assert error["code"] == "over_daily_limit"
    assert error["details"] == {
        "limit": "2500.00",
        "used": "2300.00",
        "left": "200.00",
        "amount": "200.01",
    }
    assert rows() == before


def test_exactly_what_is_left_passes_and_a_replay_is_not_refused(daily, customer):
    # given
    actor = CreditAdminFactory()
    client = api(actor)
    payload = {"user_id": customer.pk, "reason": "r"}
    for key in ("a", "b"):
        client.post(ADJUST, {**payload, "amount": "1000.00", "idempotency_key": key}, format="json")
    # when: the 500.00 left, then the same request again
    last = client.post(
        ADJUST, {**payload, "amount": "500.00", "idempotency_key": "c"}, format="json"
    )
    again = client.post(
        ADJUST, {**payload, "amount": "500.00", "idempotency_key": "c"}, format="json"
    )
    # then
    assert (last.status_code, again.status_code) == (201, 200)
    assert staff_daily_allowance(actor=actor).left == Decimal("0.00")
    account = customer.credit_account
    account.refresh_from_db()
    assert account.balance == Decimal("2520.00") == ledger_sum(account=account)


def test_pending_requests_count_and_a_day_later_nothing_does(daily, customer):
    # given: a pending request of 900 (above a threshold of 500) and an entry of 400
    daily.CREDITS_APPROVAL_THRESHOLD = Decimal("500")
    actor = CreditAdminFactory()
    for key, amount in (("pending", "900.00"), ("entry", "400.00")):
        credit_staff_grant(
            account=customer.credit_account,
            amount=Decimal(amount),
            idempotency_key=key,
            actor=actor,
            reason="r",
        )
    # when
    now = staff_daily_allowance(actor=actor)
    tomorrow = staff_daily_allowance(
        actor=actor, now=timezone.now() + timedelta(hours=24, seconds=1)
    )
    # then
    assert (now.limit, now.used, now.left) == (
        Decimal("2500.00"),
        Decimal("1300.00"),
        Decimal("1200.00"),
    )
    assert (tomorrow.used, tomorrow.left) == (Decimal("0.00"), Decimal("2500.00"))


def test_a_super_admin_has_no_daily_limit(daily, customer):
    # given
    actor = SuperAdminFactory()
    # when
    entries = [
        credit_staff_grant(
            account=customer.credit_account,
            amount=Decimal("2000.00"),
            idempotency_key=f"big-{index}",
            actor=actor,
            reason="r",
        )
        for index in range(3)
    ]
    # then
    assert [entry.balance_after for entry in entries] == [
        Decimal("2020.00"),
        Decimal("4020.00"),
        Decimal("6020.00"),
    ]
    assert staff_daily_allowance(actor=actor) is None


def test_the_service_refuses_past_the_daily_limit(daily, customer):
    # given
    actor = CreditAdminFactory()
    for key in ("a", "b"):
        credit_staff_grant(
            account=customer.credit_account,
            amount=Decimal("1000.00"),
            idempotency_key=key,
            actor=actor,
            reason="r",
        )
    before = rows()
    # when
    with pytest.raises(OverDailyLimit) as refused:
        credit_staff_grant(
            account=customer.credit_account,
            amount=Decimal("600.00"),
            idempotency_key="c",
            actor=actor,
            reason="r",
        )
    # then
    assert refused.value.details["left"] == "500.00"
    assert rows() == before


def test_the_grant_form_says_what_is_left_today_and_the_report_refuses(daily, customer):
    # given: a credit admin who granted 2100 today
    actor = CreditAdminFactory()
    for key, amount in (("a", "1000.00"), ("b", "1000.00"), ("c", "100.00")):
        credit_staff_grant(
            account=customer.credit_account,
            amount=Decimal(amount),
            idempotency_key=key,
            actor=actor,
            reason="r",
        )
    client = client_for(actor)
    pks = [customer.credit_account.pk]
    # when
    page = post_action(client, ACCOUNTS, "grant_credits", pks)
    key = str(page.context["form"].initial["submission_key"])
    response = post_action(
        client,
        ACCOUNTS,
        "grant_credits",
        pks,
        amount="400.01",
        reason="r",
        submission_key=key,
        apply="1",
    )
    # then
    assert "You have 400.00 of 2500.00 credits left today" in page.content.decode()
    before_balance = Decimal("2120.00")
    customer.credit_account.refresh_from_db()
    assert customer.credit_account.balance == before_balance
    assert CreditTransaction.objects.filter(actor=actor).count() == 3
    assert any("CREDITS_ADMIN_DAILY_LIMIT" in message for message in messages_of(response))


def test_a_super_admins_form_says_no_daily_limit(customer):
    # given
    client = client_for(SuperAdminFactory())
    # when
    page = post_action(client, ACCOUNTS, "grant_credits", [customer.credit_account.pk])
    # then
    assert page.status_code == 200
    assert "left today" not in page.content.decode()


def test_a_refused_refund_over_the_daily_limit_writes_nothing_through_the_api(daily, customer):
    # given: a staff member with refunds but no exemption, who already adjusted 2500
    from tests.factories import StaffUserFactory

    actor = StaffUserFactory(permissions=["credits.refund_credits", "credits.adjust_credits"])
    client = api(actor)
    for key in ("a", "b", "c"):
        amount = "1000.00" if key != "c" else "500.00"
        client.post(
            ADJUST,
            {"user_id": customer.pk, "amount": amount, "reason": "r", "idempotency_key": key},
            format="json",
        )
    before = rows()
    # when
    response = client.post(
        REFUND,
        {"user_id": customer.pk, "amount": "1.00", "reason": "r", "idempotency_key": "refund"},
        format="json",
    )
    # then
    assert response.status_code == 403
    assert error_of(response)["code"] == "over_daily_limit"
    assert rows() == before
