"""POST /api/credits/checkout/ {pack}: a Checkout Session created on the fake Stripe API, the
request it received checked field by field, and a replay creating no second session."""

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from billing.models import UserProfile
from credits.models import CreditTransaction
from tests.factories import CreditPackFactory, ProvisionedUserFactory
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
