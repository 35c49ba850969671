"""POST /api/credits/checkout/ {pack}: a Checkout Session created on the fake Stripe API, the
request it received checked field by field, and a replay creating no second session."""

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from rest_framework.test import APIClient

from billing.models import UserProfile
from billing.stripe.checkout import (
    CheckoutNotAllowed,
    PackNotFound,
    PurchaseNotAllowed,
    stripe_checkout_create,
)
from credits.models import CreditAccount, CreditTransaction
from tests.billing import stripe_api_objects, stripe_events
from tests.factories import CreditPackFactory, ProvisionedUserFactory, SuperAdminFactory
from tests.helpers import assert_ledger_consistent

pytestmark = pytest.mark.django_db

CHECKOUT = "/api/credits/checkout/"


@pytest.fixture
def buyer(stripe_synced):
    user = ProvisionedUserFactory(
        username="buyer", email="buyer@example.com", provision__signup_grant=False
    )
    UserProfile.objects.filter(user=user).update(stripe_customer_id="cus_buyer")
    return user


@pytest.fixture
def pack():
    return CreditPackFactory(
        stripe_price_id="price_pack_150", name="150 credits", credits=Decimal("150.00")
    )


def client_for(user):
    client = APIClient()
    client.force_authenticate(user=user)
    return client


def test_a_checkout_session_is_created_for_the_pack(buyer, pack, stripe_synced, settings):
    # given
    settings.CREDITS_CHECKOUT_SUCCESS_URL = "https://credits.example.com/thanks"
    settings.CREDITS_CHECKOUT_CANCEL_URL = "https://credits.example.com/buy"
    # when
    response = client_for(buyer).post(
        CHECKOUT, {"pack": pack.pk}, format="json", headers={"Idempotency-Key": "buy-1"}
    )
    # then
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["url"] == f"https://checkout.stripe.com/c/pay/{body['id']}"
    assert body["pack"] == pack.pk
    (sent,) = stripe_synced.received("POST", "/v1/checkout/sessions")
    assert sent.headers["idempotency-key"] == f"credits-checkout:{buyer.pk}:buy-1"
    assert sent.headers["stripe-version"] == "2024-06-20"
    assert sent.form == {
        "mode": "payment",
        "line_items[0][price]": "price_pack_150",
        "line_items[0][quantity]": "1",
        "success_url": "https://credits.example.com/thanks",
        "cancel_url": "https://credits.example.com/buy",
        "client_reference_id": str(buyer.pk),
        "metadata[price_id]": "price_pack_150",
        "metadata[credit_pack_id]": str(pack.pk),
        "customer": "cus_buyer",
    }
    assert not CreditTransaction.objects.exists()
    assert_ledger_consistent()


def test_a_replayed_request_creates_one_session(buyer, pack, stripe_synced):
    # given
    client = client_for(buyer)
    first = client.post(CHECKOUT, {"pack": pack.pk, "idempotency_key": "buy-2"}, format="json")
    # when
    again = client.post(CHECKOUT, {"pack": pack.pk, "idempotency_key": "buy-2"}, format="json")
    # then
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json()["id"] == first.json()["id"]
    sessions = {path for path in stripe_synced.objects if path.startswith("/v1/checkout/sessions/")}
    assert len(sessions) == 1
    assert_ledger_consistent()


def test_a_user_without_a_customer_checks_out_with_their_email(pack, stripe_synced):
    # given
    user = ProvisionedUserFactory(email="new@example.com", provision__signup_grant=False)
    # when
    response = client_for(user).post(
        CHECKOUT, {"pack": pack.pk}, format="json", headers={"Idempotency-Key": "k"}
    )
    # then
    assert response.status_code == 201
    (sent,) = stripe_synced.received("POST", "/v1/checkout/sessions")
    assert sent.form["customer_email"] == "new@example.com"
    assert "customer" not in sent.form


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"pack": 999999}, 404, "pack_not_found"),
        ({"pack": "x"}, 400, "invalid"),
        ({}, 400, "invalid"),
    ],
)
def test_bad_input_is_refused_and_stripe_is_not_asked(
    buyer, pack, stripe_synced, body, status, code
):
    # when
    response = client_for(buyer).post(
        CHECKOUT, body, format="json", headers={"Idempotency-Key": "k"}
    )
    # then
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert stripe_synced.received("POST") == []


def test_a_checkout_needs_a_key(buyer, pack, stripe_synced):
    # when
    response = client_for(buyer).post(CHECKOUT, {"pack": pack.pk}, format="json")
    # then
    assert response.status_code == 400
    assert "idempotency_key" in response.json()["error"]["details"]
    assert stripe_synced.received("POST") == []


def test_anonymous_is_refused(pack, stripe_synced):
    # when
    response = APIClient().post(CHECKOUT, {"pack": pack.pk}, format="json")
    # then
    assert response.status_code == 401
    assert stripe_synced.received("POST") == []


# --- Who may: the authenticated user, for their own account, a pack's price only --------------


@pytest.fixture
def other():
    user = ProvisionedUserFactory(
        username="other", email="other@example.com", provision__signup_grant=False
    )
    UserProfile.objects.filter(user=user).update(stripe_customer_id="cus_other")
    return user


# What a client might send to buy for someone else; the serializer knows none of these fields.
FOR_ANOTHER = ("user", "customer", "customer_email", "client_reference_id", "amount", "credits")


def for_another(other) -> dict:
    values = (other.pk, "cus_other", other.email, str(other.pk), 1, "1000000")
    return dict(zip(FOR_ANOTHER, values, strict=True))


def test_a_user_cannot_buy_for_another_user(buyer, other, pack, stripe_synced, synced_webhook):
    # when: the body names the other user, their customer, email, and a free amount
    response = client_for(buyer).post(
        CHECKOUT,
        {"pack": pack.pk, **for_another(other)},
        format="json",
        headers={"Idempotency-Key": "for-other"},
    )
    # then: the session is the buyer's own, for the pack's price
    assert response.status_code == 201, response.json()
    (sent,) = stripe_synced.received("POST", "/v1/checkout/sessions")
    assert sent.form["customer"] == "cus_buyer"
    assert sent.form["client_reference_id"] == str(buyer.pk)
    assert sent.form["line_items[0][price]"] == "price_pack_150"
    assert not {"customer_email", "amount", "credits", "user"} & set(sent.form)
    assert "cus_other" not in sent.form.values()
    # when: Stripe reports the session paid, through dj-stripe's real sync
    paid = stripe_events.checkout_session(
        price_id=pack.stripe_price_id, amount_total=pack.amount_cents, payment_intent="pi_own"
    )
    paid["id"] = response.json()["id"]
    stripe_synced.add(
        stripe_api_objects.customer("cus_buyer"),
        stripe_api_objects.payment_intent("pi_own", amount=pack.amount_cents),
        paid,
    )
    webhook_response = synced_webhook.post(stripe_events.event("checkout.session.completed", paid))
    # then: the pack went to the buyer; the other user got nothing
    assert webhook_response.status_code == 200, webhook_response.content
    assert CreditAccount.objects.get(user=buyer).balance == Decimal("150.00")
    assert not CreditTransaction.objects.filter(account__user=other).exists()
    assert_ledger_consistent()


def test_an_inactive_pack_is_refused_in_the_error_shape(buyer, stripe_synced):
    # given
    retired = CreditPackFactory(stripe_price_id="price_retired", is_active=False)
    # when
    response = client_for(buyer).post(
        CHECKOUT, {"pack": retired.pk}, format="json", headers={"Idempotency-Key": "retired"}
    )
    # then
    assert response.status_code == 404
    assert response.json() == {
        "error": {
            "code": "pack_not_found",
            "message": PackNotFound.message,
            "details": {"pack": retired.pk},
        }
    }
    assert stripe_synced.received("POST") == []
    assert not CreditTransaction.objects.exists()
    assert_ledger_consistent()


def test_an_inactive_user_is_refused_by_the_service(buyer, pack, stripe_synced):
    # given: a deactivated user whose request still carries credentials
    User = get_user_model()
    User.objects.filter(pk=buyer.pk).update(is_active=False)
    buyer.refresh_from_db()
    # when
    response = client_for(buyer).post(
        CHECKOUT, {"pack": pack.pk}, format="json", headers={"Idempotency-Key": "inactive"}
    )
    # then
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert stripe_synced.received("POST") == []
    # and the service refuses whoever calls it without an active user
    with pytest.raises(CheckoutNotAllowed):
        stripe_checkout_create(user=AnonymousUser(), pack_id=pack.pk, idempotency_key="anon")
    assert stripe_synced.received("POST") == []


def test_a_plan_that_may_not_buy_is_refused_before_stripe_is_asked(
    buyer, pack, stripe_synced, settings
):
    # given: only pro users may buy; the buyer is on free
    settings.CREDITS_PURCHASE_PLANS = ["pro"]
    # when
    response = client_for(buyer).post(
        CHECKOUT, {"pack": pack.pk}, format="json", headers={"Idempotency-Key": "free"}
    )
    # then: no session, so no money taken for credits the webhook would not grant
    assert response.status_code == 403
    assert response.json()["error"] == {
        "code": "purchase_not_allowed",
        "message": PurchaseNotAllowed.message,
        "details": {"plan": "free"},
    }
    assert stripe_synced.received("POST") == []


def test_staff_have_no_extra_power_at_checkout(other, pack, stripe_synced):
    # given: a superuser who is also a billing super admin
    staff = SuperAdminFactory(email="staff@example.com", is_superuser=True)
    retired = CreditPackFactory(stripe_price_id="price_retired", is_active=False)
    client = client_for(staff)
    # when: a retired pack
    refused = client.post(
        CHECKOUT, {"pack": retired.pk}, format="json", headers={"Idempotency-Key": "s1"}
    )
    # then
    assert refused.status_code == 404
    assert refused.json()["error"]["code"] == "pack_not_found"
    assert stripe_synced.received("POST") == []
    # when: buying for another user
    response = client.post(
        CHECKOUT,
        {"pack": pack.pk, **for_another(other)},
        format="json",
        headers={"Idempotency-Key": "s2"},
    )
    # then: a session for the staff member's own email, like anyone's
    assert response.status_code == 201, response.json()
    (sent,) = stripe_synced.received("POST", "/v1/checkout/sessions")
    assert sent.form["customer_email"] == "staff@example.com"
    assert sent.form["client_reference_id"] == str(staff.pk)
    assert "customer" not in sent.form
    assert not CreditTransaction.objects.exists()
    assert_ledger_consistent()
