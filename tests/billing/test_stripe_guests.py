"""Guest checkouts (no customer): refunds and disputes found by payment intent; an expired
checkout grants nothing and is recorded."""

from decimal import Decimal

import pytest

from billing.models import IssueKind, StripeEventIssue, UserProfile
from credits.models import CreditAccount, CreditTransaction, EntryKind
from tests.billing import stripe_events
from tests.factories import CreditPackFactory, ProvisionedUserFactory
from tests.helpers import assert_ledger_consistent

pytestmark = pytest.mark.django_db


@pytest.fixture
def guest():
    # A user whose email the guest checkout gave; no Stripe customer.
    user = ProvisionedUserFactory(
        username="guest", email="guest@example.com", provision__signup_grant=False
    )
    assert UserProfile.objects.get(user=user).stripe_customer_id is None
    return user


@pytest.fixture
def pack():
    return CreditPackFactory(
        stripe_price_id="price_pack_150", name="150 credits", credits=Decimal("150.00")
    )


def guest_bought(webhook, pack, payment_intent="pi_guest"):
    session = stripe_events.checkout_session(
        price_id=pack.stripe_price_id,
        amount_total=pack.amount_cents,
        customer=None,
        email="guest@example.com",
        payment_intent=payment_intent,
    )
    response = webhook.post(stripe_events.event("checkout.session.completed", session))
    assert response.status_code == 200
    return session


def balance(user) -> Decimal:
    return CreditAccount.objects.get(user=user).balance


def test_a_guest_refund_without_customer_or_email_takes_the_credits_back(webhook, guest, pack):
    # given
    guest_bought(webhook, pack)
    assert balance(guest) == Decimal("150.00")
    charge = stripe_events.charge(
        payment_intent="pi_guest",
        amount=pack.amount_cents,
        amount_refunded=pack.amount_cents,
        customer=None,
        email=None,
    )
    # when
    response = webhook.post(stripe_events.event("charge.refunded", charge))
    # then
    assert response.status_code == 200
    assert balance(guest) == Decimal("0.00")
    refund = CreditTransaction.objects.get(kind=EntryKind.REFUND)
    assert refund.amount == Decimal("-150.00")
    assert not StripeEventIssue.objects.exists()
    assert_ledger_consistent()


def test_a_dispute_takes_the_credits_back_and_is_recorded(webhook, guest, pack):
    # given
    guest_bought(webhook, pack)
    dispute = stripe_events.dispute(payment_intent="pi_guest", amount=pack.amount_cents)
    payload = stripe_events.event("charge.dispute.created", dispute)
    # when
    response = webhook.post(payload)
    webhook.post(payload)  # delivered again
    # then
    assert response.status_code == 200
    assert balance(guest) == Decimal("0.00")
    entry = CreditTransaction.objects.get(kind=EntryKind.REFUND)
    assert entry.amount == Decimal("-150.00")
    assert entry.idempotency_key == f"stripe-dispute:{dispute['id']}"
    issue = StripeEventIssue.objects.get(stripe_event_id=payload["id"])
    assert issue.kind == IssueKind.DISPUTE_OPENED
    assert issue.user == guest
    assert issue.data["taken"] == "150.00"
    assert_ledger_consistent()


def test_a_refund_after_a_dispute_takes_nothing_more(webhook, guest, pack):
    # given
    guest_bought(webhook, pack)
    webhook.post(
        stripe_events.event(
            "charge.dispute.created",
            stripe_events.dispute(payment_intent="pi_guest", amount=pack.amount_cents),
        )
    )
    charge = stripe_events.charge(
        payment_intent="pi_guest",
        amount=pack.amount_cents,
        amount_refunded=pack.amount_cents,
        customer=None,
        email=None,
    )
    # when
    response = webhook.post(stripe_events.event("charge.refunded", charge))
    # then
    assert response.status_code == 200
    assert balance(guest) == Decimal("0.00")
    assert CreditTransaction.objects.filter(kind=EntryKind.REFUND).count() == 1
    assert_ledger_consistent()


def test_an_expired_checkout_grants_nothing_and_is_recorded(webhook, guest, pack):
    # given
    session = stripe_events.checkout_session(
        price_id=pack.stripe_price_id,
        amount_total=pack.amount_cents,
        customer=None,
        email="guest@example.com",
        payment_status="unpaid",
    )
    session["status"] = "expired"
    payload = stripe_events.event("checkout.session.expired", session)
    # when
    response = webhook.post(payload)
    # then
    assert response.status_code == 200
    assert not CreditTransaction.objects.exists()
    issue = StripeEventIssue.objects.get(stripe_event_id=payload["id"])
    assert issue.kind == IssueKind.CHECKOUT_EXPIRED
    assert issue.data["checkout_session"] == session["id"]
    assert_ledger_consistent()
