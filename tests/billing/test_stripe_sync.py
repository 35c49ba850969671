"""dj-stripe's real sync against a fake Stripe API at HTTP, in the pinned API version.

No no-op here: dj-stripe fetches the customer and re-fetches the object from the fake server
(tests/billing/fake_stripe.py) before our receivers run, as it does against Stripe.
"""

from decimal import Decimal

import pytest
import stripe
from django.conf import settings
from djstripe.models import Customer
from djstripe.settings import djstripe_settings

from billing.models import UserProfile
from credits.models import CreditAccount, CreditTransaction, EntryKind
from tests.billing import stripe_api_objects, stripe_events
from tests.billing.ledger_check import assert_ledger_consistent
from tests.factories import CreditPackFactory, ProvisionedUserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def buyer():
    user = ProvisionedUserFactory(
        username="buyer", email="buyer@example.com", provision__signup_grant=False
    )
    UserProfile.objects.filter(user=user).update(stripe_customer_id="cus_buyer")
    return user


@pytest.fixture
def pack():
    return CreditPackFactory(
        stripe_price_id="price_pack_100", name="100 credits", credits=Decimal("100.00")
    )


def test_the_pinned_api_version_is_the_one_stripe_python_and_dj_stripe_use():
    # then
    assert settings.STRIPE_API_VERSION == "2024-06-20"
    assert stripe.api_version == settings.STRIPE_API_VERSION
    assert djstripe_settings.STRIPE_API_VERSION == settings.STRIPE_API_VERSION
    assert stripe_api_objects.API_VERSION == stripe_events.API_VERSION == "2024-06-20"


def test_a_customer_with_a_coupon_buys_through_dj_stripes_real_sync(synced_webhook, buyer, pack):
    # given: Stripe has the customer, with a coupon, and the session's payment intent
    session = stripe_events.checkout_session(
        price_id=pack.stripe_price_id, amount_total=pack.amount_cents, payment_intent="pi_coupon"
    )
    server = synced_webhook.fake
    server.add(
        stripe_api_objects.customer("cus_buyer", with_coupon=True),
        stripe_api_objects.payment_intent("pi_coupon", amount=pack.amount_cents),
        session,
    )
    # when
    response = synced_webhook.post(stripe_events.event("checkout.session.completed", session))
    # then: dj-stripe synced the customer and its coupon, and the pack was granted
    assert response.status_code == 200, response.content
    assert Customer.objects.filter(id="cus_buyer").exists()
    customer = Customer.objects.get(id="cus_buyer")
    assert customer.stripe_data["discount"]["coupon"]["id"] == "SPRING25"
    entry = CreditTransaction.objects.get(kind=EntryKind.PURCHASE)
    assert entry.amount == Decimal("100.00")
    assert CreditAccount.objects.get(user=buyer).balance == Decimal("100.00")
    # and every request carried the pinned version, to the fake and nowhere else
    gets = server.received("GET")
    assert "/v1/customers/cus_buyer" in {r.path for r in gets}
    assert {r.headers.get("stripe-version") for r in server.requests} == {"2024-06-20"}
    assert_ledger_consistent()
