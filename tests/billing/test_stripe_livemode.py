"""An event whose livemode differs from STRIPE_LIVE_MODE is refused: 400, nothing written."""

from decimal import Decimal

import pytest
from djstripe.models import Event, WebhookEventTrigger

from billing.models import StripeEventIssue, UserProfile
from credits.models import CreditAccount, CreditTransaction
from tests.billing import stripe_events
from tests.factories import CreditPackFactory, ProvisionedUserFactory
from tests.helpers import assert_ledger_consistent

pytestmark = pytest.mark.django_db


@pytest.fixture
def buyer():
    user = ProvisionedUserFactory(
        username="buyer", email="buyer@example.com", provision__signup_grant=False
    )
    UserProfile.objects.filter(user=user).update(stripe_customer_id="cus_buyer")
    return user


def test_a_live_event_on_a_test_deployment_is_refused_and_writes_nothing(
    webhook, buyer, settings, caplog
):
    # given
    settings.STRIPE_LIVE_MODE = False
    pack = CreditPackFactory(stripe_price_id="price_pack_150", credits=Decimal("150.00"))
    session = stripe_events.checkout_session(
        price_id=pack.stripe_price_id, amount_total=pack.amount_cents
    )
    payload = stripe_events.event("checkout.session.completed", session, livemode=True)
    # when
    response = webhook.post(payload)
    # then
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "livemode_mismatch"
    assert not Event.objects.exists()
    assert not WebhookEventTrigger.objects.exists()
    assert not CreditTransaction.objects.exists()
    assert not StripeEventIssue.objects.exists()
    assert CreditAccount.objects.get(user=buyer).balance == Decimal("0.00")
    assert "livemode=True" in caplog.text
    assert_ledger_consistent()


def test_a_test_event_on_a_test_deployment_is_handled(webhook, buyer):
    # given
    pack = CreditPackFactory(stripe_price_id="price_pack_150", credits=Decimal("150.00"))
    session = stripe_events.checkout_session(
        price_id=pack.stripe_price_id, amount_total=pack.amount_cents
    )
    # when
    response = webhook.post(stripe_events.event("checkout.session.completed", session))
    # then
    assert response.status_code == 200
    assert CreditAccount.objects.get(user=buyer).balance == Decimal("150.00")
    assert_ledger_consistent()
