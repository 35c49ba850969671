"""Events in Stripe's newest API version (2026-08-26.dahlia) on a deployment that pins 2024-06-20.

An endpoint made with the newest version (or with none, on an account whose default is newer)
gets its payloads in that version: `tests.billing.stripe_dahlia_events`. dj-stripe stores the
event as sent, then re-fetches every object it syncs from the API in `STRIPE_API_VERSION`, so
the fake Stripe answers in the pinned shapes (`tests.billing.stripe_api_objects`) and refuses
any request in another version (the `fake_stripe` fixture fails the test on one). Our receivers
read the payload itself, so they must read the newest shapes too: each test here grants or takes
back exactly once from a newest-shape payload, through the real webhook and dj-stripe's sync.
"""

from decimal import Decimal

import pytest
import stripe
from django.conf import settings
from djstripe.models import Charge, Customer, Dispute, Event, Invoice, Subscription

from billing.models import IssueKind, StripeEventIssue, UserProfile
from credits.models import CreditAccount, CreditTransaction, EntryKind
from tests.billing import stripe_api_objects, stripe_events
from tests.billing import stripe_dahlia_events as newest
from tests.billing.stripe_events import PERIOD_END, PERIOD_START
from tests.factories import CreditPackFactory, PlanPriceFactory, ProvisionedUserFactory
from tests.helpers import assert_ledger_consistent

pytestmark = pytest.mark.django_db

PINNED = "2024-06-20"


@pytest.fixture
def buyer():
    user = ProvisionedUserFactory(
        username="buyer", email="buyer@example.com", provision__signup_grant=False
    )
    UserProfile.objects.filter(user=user).update(stripe_customer_id="cus_buyer")
    return user


@pytest.fixture
def subscriber():
    user = ProvisionedUserFactory(
        username="subscriber", email="subscriber@example.com", provision__signup_grant=False
    )
    UserProfile.objects.filter(user=user).update(stripe_customer_id="cus_subscriber")
    return user


@pytest.fixture
def pack():
    return CreditPackFactory(
        stripe_price_id="price_pack_100", name="100 credits", credits=Decimal("100.00")
    )


@pytest.fixture
def pro_price():
    return PlanPriceFactory(stripe_price_id="price_pro_monthly", plan="pro")


@pytest.fixture
def stripe_has_the_subscriber(stripe_synced):
    stripe_synced.add(
        stripe_api_objects.customer("cus_subscriber", email="subscriber@example.com"),
        stripe_api_objects.product("prod_pro"),
        stripe_api_objects.price("price_pro_monthly"),
    )
    return stripe_synced


def every_request_was_pinned(server) -> bool:
    return bool(server.requests) and {r.headers.get("stripe-version") for r in server.requests} == {
        PINNED
    }


def test_the_newest_version_is_not_the_pinned_one():
    # then: what these tests are about
    assert settings.STRIPE_API_VERSION == PINNED
    assert newest.API_VERSION == "2026-08-26.dahlia"
    assert stripe_api_objects.API_VERSION == PINNED


def test_the_fake_refuses_a_request_in_another_version(stripe_synced):
    # given
    stripe_synced.add(stripe_api_objects.customer("cus_buyer"))
    # when: asked in the newest version
    with pytest.raises(stripe.InvalidRequestError, match=r"answers API version 2024-06-20 only"):
        stripe.Customer.retrieve(
            "cus_buyer",
            api_key=settings.STRIPE_TEST_SECRET_KEY,
            stripe_version=newest.API_VERSION,
        )
    # then: kept for the fixture's check (cleared here, as this test made it on purpose)
    assert [r.headers["stripe-version"] for r in stripe_synced.wrong_versions] == [
        newest.API_VERSION
    ]
    stripe_synced.wrong_versions.clear()


def test_why_the_version_is_pinned_dj_stripe_cannot_sync_a_newest_shape_coupon(stripe_synced):
    # given: a customer with a coupon, once as the newest version returns it, once as pinned
    newest_customer = newest.customer("cus_new", email="new@example.com", with_coupon=True)
    pinned_customer = stripe_api_objects.customer("cus_pinned", with_coupon=True)
    # when / then: dj-stripe 2.11 reads `discount.coupon`, gone since 2025-09-30.clover. If
    # this stops raising, dj-stripe reads the new shape and the pin can be reconsidered.
    with pytest.raises(RuntimeError, match=r"empty field Coupon\.coupon"):
        Customer.sync_from_stripe_data(newest_customer)
    synced = Customer.sync_from_stripe_data(pinned_customer)
    assert synced.stripe_data["discount"]["coupon"]["id"] == "SPRING25"
    assert not CreditTransaction.objects.exists()
    assert_ledger_consistent()


def test_a_newest_shape_customer_update_with_a_coupon_is_synced_in_the_pinned_shape(
    newest_shape_webhook, buyer
):
    # given: Stripe has the customer with a coupon; the event carries the newest shape
    server = newest_shape_webhook.fake
    server.add(stripe_api_objects.customer("cus_buyer", with_coupon=True))
    payload = newest.event(
        "customer.updated",
        newest.customer("cus_buyer", email="buyer@example.com", with_coupon=True),
    )
    assert "coupon" not in payload["data"]["object"]["discount"]
    # when
    response = newest_shape_webhook.post(payload)
    # then: dj-stripe re-fetched the customer in the pinned version and synced its coupon
    assert response.status_code == 200, response.content
    assert Event.objects.get(id=payload["id"]).api_version == newest.API_VERSION
    customer = Customer.objects.get(id="cus_buyer")
    assert customer.stripe_data["discount"]["coupon"]["id"] == "SPRING25"
    assert every_request_was_pinned(server)
    assert not CreditTransaction.objects.exists()
    assert_ledger_consistent()


def test_a_newest_shape_paid_checkout_by_a_customer_with_a_coupon_grants_once(
    newest_shape_webhook, buyer, pack
):
    # given: Stripe has the customer (with a coupon), the payment intent and the session, and
    # answers in the pinned shapes; the events carry the newest ones
    server = newest_shape_webhook.fake
    pinned_session = stripe_events.checkout_session(
        price_id=pack.stripe_price_id, amount_total=pack.amount_cents, payment_intent="pi_newest"
    )
    server.add(
        stripe_api_objects.customer("cus_buyer", with_coupon=True),
        stripe_api_objects.payment_intent("pi_newest", amount=pack.amount_cents),
        pinned_session,
    )
    session = newest.checkout_session(
        pinned_session["id"],
        price_id=pack.stripe_price_id,
        amount_total=pack.amount_cents,
        payment_intent="pi_newest",
        customer="cus_buyer",
        email="buyer@example.com",
    )
    completed = newest.event("checkout.session.completed", session)
    succeeded = newest.event("checkout.session.async_payment_succeeded", session)
    # when: both paid events, and a redelivery of the first
    responses = [newest_shape_webhook.post(p) for p in (completed, succeeded, completed)]
    # then: one purchase, keyed by the payment
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert set(Event.objects.values_list("api_version", flat=True)) == {newest.API_VERSION}
    purchase = CreditTransaction.objects.get(kind=EntryKind.PURCHASE)
    assert purchase.amount == Decimal("100.00")
    assert purchase.idempotency_key == "stripe-payment:pi_newest"
    assert purchase.stripe_event_id == completed["id"]
    assert CreditAccount.objects.get(user=buyer).balance == Decimal("100.00")
    # and dj-stripe synced the coupon customer from the pinned shape, asking in that version only
    customer = Customer.objects.get(id="cus_buyer")
    assert customer.stripe_data["discount"]["coupon"]["id"] == "SPRING25"
    assert f"/v1/checkout/sessions/{session['id']}" in {r.path for r in server.received("GET")}
    assert every_request_was_pinned(server)
    assert not StripeEventIssue.objects.exists()
    assert_ledger_consistent()


def test_a_newest_shape_paid_invoice_grants_the_month_once(
    newest_shape_webhook, stripe_has_the_subscriber, subscriber, pro_price
):
    # given: Stripe serves the subscription and invoice pinned; the payload names the
    # subscription only under `parent` and the price only under `pricing`
    server = stripe_has_the_subscriber
    server.add(
        stripe_api_objects.subscription(
            "sub_pro",
            price_id="price_pro_monthly",
            current_period_start=PERIOD_START,
            current_period_end=PERIOD_END,
        ),
        stripe_api_objects.invoice(
            "in_newest",
            price_id="price_pro_monthly",
            subscription="sub_pro",
            period_start=PERIOD_START,
            period_end=PERIOD_END,
        ),
    )
    invoice = newest.invoice(
        "in_newest",
        price_id="price_pro_monthly",
        subscription="sub_pro",
        customer="cus_subscriber",
        email="subscriber@example.com",
        payment_intent="pi_invoice",
    )
    assert "subscription" not in invoice and "paid" not in invoice
    assert "price" not in invoice["lines"]["data"][0]
    first = newest.event("invoice.paid", invoice)
    second = newest.event("invoice.paid", invoice)  # Stripe reporting the payment again
    # when
    responses = [newest_shape_webhook.post(p) for p in (first, second)]
    # then: December granted once, the profile on the plan until the period's end
    assert [r.status_code for r in responses] == [200, 200]
    grant = CreditTransaction.objects.get(kind=EntryKind.MONTHLY_GRANT)
    assert grant.amount == Decimal("260.00")
    assert (grant.metadata["period"], grant.metadata["subscription"]) == ("2025-12", "sub_pro")
    assert grant.metadata["stripe_price_id"] == "price_pro_monthly"
    profile = UserProfile.objects.get(user=subscriber)
    assert (profile.plan, profile.subscription_status) == ("pro", "active")
    assert profile.subscription_ends_at.timestamp() == PERIOD_END
    # and dj-stripe stored the invoice as the pinned version serves it
    stored = Invoice.objects.get(id="in_newest")
    assert stored.stripe_data["subscription"] == "sub_pro"
    assert every_request_was_pinned(server)
    assert CreditAccount.objects.get(user=subscriber).balance == Decimal("260.00")
    assert_ledger_consistent()


def test_newest_shape_subscription_events_read_the_period_from_the_items(
    newest_shape_webhook, stripe_has_the_subscriber, subscriber, pro_price
):
    # given: an active subscription, its period only on its item in the payload
    server = stripe_has_the_subscriber
    server.add(
        stripe_api_objects.subscription(
            "sub_pro",
            price_id="price_pro_monthly",
            current_period_start=PERIOD_START,
            current_period_end=PERIOD_END,
        )
    )
    active = newest.subscription("sub_pro", price_id="price_pro_monthly", customer="cus_subscriber")
    assert "current_period_end" not in active
    # when
    response = newest_shape_webhook.post(newest.event("customer.subscription.updated", active))
    # then
    assert response.status_code == 200, response.content
    profile = UserProfile.objects.get(user=subscriber)
    assert (profile.plan, profile.subscription_status) == ("pro", "active")
    assert profile.stripe_price_id == "price_pro_monthly"
    assert profile.subscription_ends_at.timestamp() == PERIOD_END
    # when: it is deleted ten days in (Stripe serves it canceled from now on)
    deleted_at = PERIOD_START + 10 * 86400
    server.add(
        stripe_api_objects.subscription(
            "sub_pro",
            price_id="price_pro_monthly",
            status="canceled",
            current_period_start=PERIOD_START,
            current_period_end=PERIOD_END,
            ended_at=deleted_at,
        )
    )
    canceled = newest.subscription(
        "sub_pro",
        price_id="price_pro_monthly",
        customer="cus_subscriber",
        status="canceled",
        ended_at=deleted_at,
    )
    response = newest_shape_webhook.post(
        newest.event("customer.subscription.deleted", canceled, created=deleted_at)
    )
    # then
    assert response.status_code == 200, response.content
    profile.refresh_from_db()
    assert (profile.plan, profile.subscription_status) == ("free", "canceled")
    assert profile.subscription_ends_at.timestamp() == deleted_at
    assert Subscription.objects.get(id="sub_pro").status == "canceled"
    assert every_request_was_pinned(server)
    assert not CreditTransaction.objects.exists()
    assert_ledger_consistent()


def newest_shape_purchase(webhook, pack, *, payment_intent: str) -> None:
    pinned_session = stripe_events.checkout_session(
        price_id=pack.stripe_price_id, amount_total=pack.amount_cents, payment_intent=payment_intent
    )
    webhook.fake.add(
        stripe_api_objects.customer("cus_buyer"),
        stripe_api_objects.payment_intent(payment_intent, amount=pack.amount_cents),
        pinned_session,
    )
    session = newest.checkout_session(
        pinned_session["id"],
        price_id=pack.stripe_price_id,
        amount_total=pack.amount_cents,
        payment_intent=payment_intent,
        customer="cus_buyer",
        email="buyer@example.com",
    )
    response = webhook.post(newest.event("checkout.session.completed", session))
    assert response.status_code == 200, response.content


def test_a_newest_shape_refund_takes_the_pack_back_once(newest_shape_webhook, buyer, pack):
    # given
    newest_shape_purchase(newest_shape_webhook, pack, payment_intent="pi_refund_newest")
    newest_shape_webhook.fake.add(
        stripe_api_objects.charge(
            "ch_newest",
            payment_intent="pi_refund_newest",
            amount=pack.amount_cents,
            amount_refunded=pack.amount_cents,
        )
    )
    charge = newest.charge(
        "ch_newest",
        payment_intent="pi_refund_newest",
        amount=pack.amount_cents,
        amount_refunded=pack.amount_cents,
        customer="cus_buyer",
        email="buyer@example.com",
    )
    payload = newest.event("charge.refunded", charge)
    # when: delivered, and reported again by another event
    responses = [
        newest_shape_webhook.post(payload),
        newest_shape_webhook.post(newest.event("charge.refunded", charge)),
    ]
    # then
    assert [r.status_code for r in responses] == [200, 200]
    assert Charge.objects.get(id="ch_newest").customer_id == "cus_buyer"
    refund = CreditTransaction.objects.get(kind=EntryKind.REFUND)
    assert refund.amount == Decimal("-100.00")
    assert refund.stripe_event_id == payload["id"]
    assert CreditAccount.objects.get(user=buyer).balance == Decimal("0.00")
    assert every_request_was_pinned(newest_shape_webhook.fake)
    assert_ledger_consistent()


def test_a_newest_shape_dispute_takes_the_pack_back_and_is_recorded(
    newest_shape_webhook, buyer, pack
):
    # given
    newest_shape_purchase(newest_shape_webhook, pack, payment_intent="pi_dispute_newest")
    newest_shape_webhook.fake.add(
        stripe_api_objects.charge(
            "ch_disputed_newest",
            payment_intent="pi_dispute_newest",
            amount=pack.amount_cents,
            amount_refunded=0,
        ),
        stripe_api_objects.dispute(
            "dp_newest",
            charge="ch_disputed_newest",
            payment_intent="pi_dispute_newest",
            amount=pack.amount_cents,
        ),
    )
    payload = newest.event(
        "charge.dispute.created",
        newest.dispute(
            "dp_newest",
            charge="ch_disputed_newest",
            payment_intent="pi_dispute_newest",
            amount=pack.amount_cents,
        ),
    )
    # when
    response = newest_shape_webhook.post(payload)
    # then
    assert response.status_code == 200, response.content
    assert Dispute.objects.filter(id="dp_newest").exists()
    entry = CreditTransaction.objects.get(kind=EntryKind.REFUND)
    assert (entry.amount, entry.idempotency_key) == (Decimal("-100.00"), "stripe-dispute:dp_newest")
    issue = StripeEventIssue.objects.get(stripe_event_id=payload["id"])
    assert (issue.kind, issue.user, issue.data["taken"]) == (
        IssueKind.DISPUTE_OPENED,
        buyer,
        "100.00",
    )
    assert CreditAccount.objects.get(user=buyer).balance == Decimal("0.00")
    assert every_request_was_pinned(newest_shape_webhook.fake)
    assert_ledger_consistent()
