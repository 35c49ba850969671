"""Staff API: POST /api/admin/billing/credits/adjust and /api/admin/billing/refund.

The same roles and limits as the admin's actions (the services hold them); every refusal is a
4xx in the error shape with nothing written.
"""

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from credits.models import CreditTransaction, EntryKind
from tests.factories import (
    CreditAdminFactory,
    ProvisionedUserFactory,
    StaffUserFactory,
    SuperAdminFactory,
)
from tests.helpers import ledger_state

pytestmark = pytest.mark.django_db

ADJUST = "/api/admin/billing/credits/adjust"
REFUND = "/api/admin/billing/refund"


@pytest.fixture
def customer():
    """A signed-up user holding the 20.00 signup grant."""
    return ProvisionedUserFactory(email="customer@example.com")


def client_for(user):
    client = APIClient()
    client.force_authenticate(user=user)
    return client


def test_a_credit_admin_adjusts_within_the_limit(customer):
    # given
    admin_user = CreditAdminFactory()
    # when
    response = client_for(admin_user).post(
        ADJUST,
        {"user_id": customer.pk, "amount": "15.50", "reason": "Goodwill", "idempotency_key": "a1"},
        format="json",
    )
    # then
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["balance"] == "35.50"
    assert body["transaction"]["amount"] == "15.50"
    entry = CreditTransaction.objects.get(pk=body["transaction"]["id"])
    assert (entry.kind, entry.actor, entry.reason) == (EntryKind.ADJUSTMENT, admin_user, "Goodwill")


def test_a_replayed_adjustment_writes_once(customer):
    # given
    client = client_for(CreditAdminFactory())
    payload = {"user_id": customer.pk, "amount": "-5.00", "reason": "Correction"}
    first = client.post(ADJUST, payload, format="json", headers={"Idempotency-Key": "k1"})
    # when
    again = client.post(ADJUST, payload, format="json", headers={"Idempotency-Key": "k1"})
    # then
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["transaction"]["id"] == first.json()["transaction"]["id"]
    after = ledger_state(customer.credit_account)
    assert (after.balance, after.entries) == (Decimal("15.00"), 2)


def test_an_adjustment_above_the_threshold_waits_for_approval(customer, settings):
    # given
    settings.CREDITS_APPROVAL_THRESHOLD = Decimal("100")
    # when
    response = client_for(SuperAdminFactory()).post(
        ADJUST,
        {"user_id": customer.pk, "amount": "150.00", "reason": "Big", "idempotency_key": "b"},
        format="json",
    )
    # then
    assert response.status_code == 202
    assert response.json()["approval_request"]["status"] == "pending"
    after = ledger_state(customer.credit_account)
    assert (after.balance, after.entries, after.approvals) == (Decimal("20.00"), 1, 1)


def test_a_super_admin_refunds_on_the_ledger(customer):
    # when
    response = client_for(SuperAdminFactory()).post(
        REFUND,
        {"user_id": customer.pk, "amount": "7.25", "reason": "Asked", "idempotency_key": "r"},
        format="json",
    )
    # then
    assert response.status_code == 201, response.json()
    assert response.json()["balance"] == "12.75"
    assert response.json()["transaction"]["kind"] == "refund"


def _error(response):
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    return body["error"]["code"]


@pytest.mark.parametrize(
    ("make_user", "url", "payload", "status", "code"),
    [
        (
            CreditAdminFactory,
            REFUND,
            {"amount": "1.00", "reason": "r", "idempotency_key": "x"},
            403,
            "permission_denied",
        ),
        (
            CreditAdminFactory,
            ADJUST,
            {"amount": "1000.01", "reason": "r", "idempotency_key": "x"},
            403,
            "over_limit",
        ),
        (
            lambda: ProvisionedUserFactory(),
            ADJUST,
            {"amount": "1.00", "reason": "r", "idempotency_key": "x"},
            403,
            "permission_denied",
        ),
        (
            StaffUserFactory,
            ADJUST,
            {"amount": "1.00", "reason": "r", "idempotency_key": "x"},
            403,
            "permission_denied",
        ),
        (
            SuperAdminFactory,
            ADJUST,
            {"amount": "0", "reason": "r", "idempotency_key": "x"},
            400,
            "invalid",
        ),
        (
            SuperAdminFactory,
            ADJUST,
            {"amount": "abc", "reason": "r", "idempotency_key": "x"},
            400,
            "invalid",
        ),
        (
            SuperAdminFactory,
            ADJUST,
            {"amount": "1.001", "reason": "r", "idempotency_key": "x"},
            400,
            "invalid",
        ),
        (
            SuperAdminFactory,
            ADJUST,
            {"amount": "1.00", "reason": "", "idempotency_key": "x"},
            400,
            "invalid",
        ),
        (SuperAdminFactory, ADJUST, {"amount": "1.00", "reason": "r"}, 400, "invalid"),
        (
            SuperAdminFactory,
            REFUND,
            {"amount": "-1.00", "reason": "r", "idempotency_key": "x"},
            400,
            "invalid",
        ),
        (
            SuperAdminFactory,
            REFUND,
            {"amount": "1.00", "reason": "r", "idempotency_key": "x", "stripe_refund": True},
            400,
            "invalid",
        ),
        (
            SuperAdminFactory,
            REFUND,
            {"amount": "500.00", "reason": "r", "idempotency_key": "x"},
            402,
            "insufficient_credits",
        ),
    ],
    ids=[
        "credit-admin-refund",
        "credit-admin-over-limit",
        "customer",
        "staff-without-permission",
        "zero",
        "not-a-number",
        "three-places",
        "empty-reason",
        "no-key",
        "negative-refund",
        "stripe-without-payment-intent",
        "refund-beyond-balance",
    ],
)
def test_bad_requests_are_refused_in_the_error_shape_and_write_nothing(
    customer, make_user, url, payload, status, code
):
    # given
    client = client_for(make_user())
    before = ledger_state(customer.credit_account)
    # when
    response = client.post(url, {"user_id": customer.pk, **payload}, format="json")
    # then
    assert response.status_code == status, response.json()
    assert _error(response) == code
    assert ledger_state(customer.credit_account) == before


def test_an_unknown_user_is_404(customer):
    response = client_for(SuperAdminFactory()).post(
        ADJUST,
        {"user_id": 999999, "amount": "1.00", "reason": "r", "idempotency_key": "x"},
        format="json",
    )
    assert response.status_code == 404
    assert _error(response) == "account_not_found"


def test_anonymous_is_refused(customer):
    response = APIClient().post(ADJUST, {}, format="json")
    assert response.status_code in (401, 403)
    _error(response)


def test_the_summary_shows_profile_balance_entries_and_migrations(customer):
    # given: a migrated user with a spend
    from credits.services import credit_spend
    from migrations_app.models import MigrationStatus, UserMigration

    credit_spend(account=customer.credit_account, amount=Decimal("2.50"), idempotency_key="s")
    UserMigration.objects.create(
        user=customer,
        source="usd_balance",
        status=MigrationStatus.COMPLETED,
        initial_credits_granted=Decimal("12.00"),
    )
    # when
    response = client_for(SuperAdminFactory()).get(f"/api/admin/billing/user/{customer.pk}/summary")
    # then
    assert response.status_code == 200
    body = response.json()
    assert body["user"]["email"] == "customer@example.com"
    assert body["profile"]["plan"] == "free"
    assert body["account"]["balance"] == "17.50"
    assert [entry["amount"] for entry in body["last_entries"]] == ["-2.50", "20.00"]
    assert body["migrations"][0]["source"] == "usd_balance"
    assert body["migrations"][0]["initial_credits_granted"] == "12.00"


def test_the_summary_is_for_staff_only_and_404s_for_unknown_users(customer):
    assert _error(client_for(customer).get(f"/api/admin/billing/user/{customer.pk}/summary")) == (
        "permission_denied"
    )
    response = client_for(SuperAdminFactory()).get("/api/admin/billing/user/999999/summary")
    assert response.status_code == 404
    assert _error(response) == "not_found"


@pytest.mark.parametrize(
    "make_user",
    [StaffUserFactory, CreditAdminFactory],
    ids=["staff-without-permission", "credit-admin"],
)
@pytest.mark.parametrize("user_id", ["customer", 999999], ids=["existing", "unknown"])
def test_the_summary_needs_view_customer_summary(customer, make_user, user_id):
    # given: staff without billing.view_customer_summary (is_staff alone opens nothing)
    client = client_for(make_user())
    target = customer.pk if user_id == "customer" else user_id
    # when
    response = client.get(f"/api/admin/billing/user/{target}/summary")
    # then: refused in the error shape, before the user is even looked up (no 404 oracle)
    assert response.status_code == 403
    assert _error(response) == "permission_denied"
    assert response.json()["error"]["details"] == {"permission": "billing.view_customer_summary"}
    assert "customer@example.com" not in response.content.decode()


def test_the_single_permission_opens_the_summary(customer):
    # given
    reader = StaffUserFactory(permissions=["billing.view_customer_summary"])
    # when
    response = client_for(reader).get(f"/api/admin/billing/user/{customer.pk}/summary")
    # then
    assert response.status_code == 200
    assert response.json()["user"]["email"] == "customer@example.com"


@pytest.mark.parametrize("length", [137, 190])
def test_a_key_in_the_header_is_held_to_the_bodys_rules(customer, length):
    client = client_for(SuperAdminFactory())
    before = ledger_state(customer.credit_account)
    response = client.post(
        REFUND,
        {"user_id": customer.pk, "amount": "1.00", "reason": "r"},
        format="json",
        headers={"Idempotency-Key": "k" * length},
    )
    assert response.status_code == 400
    assert _error(response) == "invalid"
    assert ledger_state(customer.credit_account) == before
    # at the limit it is taken
    response = client.post(
        REFUND,
        {"user_id": customer.pk, "amount": "1.00", "reason": "r"},
        format="json",
        headers={"Idempotency-Key": "k" * 136},
    )
    assert response.status_code == 201, response.json()
