"""A Stripe refund that rounds to 0 cents, or asks more than the payment has left, is refused
with 400 before Stripe is called: the fake Stripe API receives no POST /v1/refunds."""

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from billing.models import UserProfile
from billing.stripe.services import stripe_charge_refunded, stripe_checkout_paid
from credits.models import CreditTransaction, EntryKind
from tests.billing import stripe_events
from tests.factories import CreditPackFactory, ProvisionedUserFactory, SuperAdminFactory
from tests.helpers import assert_ledger_consistent, ledger_state

pytestmark = pytest.mark.django_db

REFUND = "/api/admin/billing/refund"


@pytest.fixture
def buyer(stripe_synced):
    user = ProvisionedUserFactory(
        username="buyer", email="buyer@example.com", provision__signup_grant=False
    )
    UserProfile.objects.filter(user=user).update(stripe_customer_id="cus_buyer")
    pack = CreditPackFactory(stripe_price_id="price_pack_100", credits=Decimal("100.00"))
    stripe_checkout_paid(
        event_id="evt_bought",
        event_type="checkout.session.completed",
        payload=stripe_events.checkout_session(
            price_id=pack.stripe_price_id, amount_total=1000, payment_intent="pi_bought"
        ),
    )
    return user


def staff_refund(buyer, amount: str, key: str = "r1"):
    client = APIClient()
    client.force_authenticate(user=SuperAdminFactory())
    return client.post(
        REFUND,
        {
            "user_id": buyer.pk,
            "amount": amount,
            "reason": "Customer asked",
            "idempotency_key": key,
            "stripe_refund": True,
            "payment_intent_id": "pi_bought",
        },
        format="json",
    )


def test_a_refund_that_rounds_to_0_cents_is_refused_before_stripe(buyer, stripe_synced):
    # given: 100 credits for 1000 cents; 0.01 credits is 0.1 cents
    before = ledger_state(buyer.credit_account)
    # when
    response = staff_refund(buyer, "0.01")
    # then
    assert response.status_code == 400, response.json()
    assert response.json()["error"]["code"] == "refund_exceeds_purchase"
    assert response.json()["error"]["details"]["refund_cents"] == 0
    assert stripe_synced.received("POST", "/v1/refunds") == []
    assert ledger_state(buyer.credit_account) == before
    assert_ledger_consistent()


def test_a_refund_of_more_than_the_payment_has_left_is_refused_before_stripe(buyer, stripe_synced):
    # given: 700 of 1000 cents refunded in Stripe's dashboard, 70 credits taken back
    stripe_charge_refunded(
        event_id="evt_refund_dashboard",
        event_type="charge.refunded",
        payload=stripe_events.charge(payment_intent="pi_bought", amount=1000, amount_refunded=700),
    )
    after = ledger_state(buyer.credit_account)
    assert (after.balance, after.entries) == (Decimal("30.00"), 2)
    # when: 40 credits (400 cents) asked, 300 cents left
    response = staff_refund(buyer, "40.00")
    # then
    assert response.status_code == 400, response.json()
    assert response.json()["error"]["code"] == "refund_exceeds_purchase"
    assert stripe_synced.received("POST", "/v1/refunds") == []
    after = ledger_state(buyer.credit_account)
    assert (after.balance, after.entries) == (Decimal("30.00"), 2)
    assert_ledger_consistent()


def test_a_refund_within_what_is_left_reaches_the_fake_stripe(buyer, stripe_synced):
    # when
    response = staff_refund(buyer, "25.00")
    # then
    assert response.status_code == 201, response.json()
    (sent,) = stripe_synced.received("POST", "/v1/refunds")
    assert sent.form["payment_intent"] == "pi_bought"
    assert sent.form["amount"] == "250"
    assert sent.headers["idempotency-key"].startswith("credits-refund:staff-api:")
    assert sent.headers["idempotency-key"].endswith(":refund:r1")
    assert sent.headers["stripe-version"] == "2024-06-20"
    entry = CreditTransaction.objects.get(kind=EntryKind.REFUND)
    assert entry.amount == Decimal("-25.00")
    assert entry.metadata["stripe_refund_id"].startswith("re_")
    assert_ledger_consistent()
