"""dj-stripe's real sync against a fake Stripe API at HTTP, in the pinned API version.

No no-op here: dj-stripe fetches the customer and re-fetches the object from the fake server
(tests/billing/fake_stripe.py) before our receivers run, as it does against Stripe.
"""

from decimal import Decimal

import pytest
import stripe
from django.conf import settings
from djstripe.models import Charge, Customer, Dispute, Invoice, Session, Subscription
from djstripe.settings import djstripe_settings

from billing.models import IssueKind, StripeEventIssue, UserProfile
from billing.services import monthly_credits_grant
from credits.models import CreditAccount, CreditTransaction, EntryKind
from tests.billing import stripe_api_objects, stripe_events
from tests.billing.stripe_events import PERIOD_END, PERIOD_START
from tests.factories import CreditPackFactory, PlanPriceFactory, ProvisionedUserFactory
from tests.helpers import assert_ledger_consistent

pytestmark = pytest.mark.django_db

HOUR = 3600
DELETED_AT = PERIOD_START + 10 * 86400  # 2025-12-11


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


# --- subscriptions, invoices, refunds, disputes through the real sync -----------------------


@pytest.fixture
def subscriber():
    user = ProvisionedUserFactory(
        username="subscriber", email="subscriber@example.com", provision__signup_grant=False
    )
    UserProfile.objects.filter(user=user).update(stripe_customer_id="cus_subscriber")
    return user


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


def serve_subscription(server, **fields):
    subscription = stripe_api_objects.subscription(
        "sub_pro",
        price_id="price_pro_monthly",
        current_period_start=PERIOD_START,
        current_period_end=PERIOD_END,
        **fields,
    )
    server.add(subscription)
    return subscription


def test_a_subscription_update_is_synced_by_dj_stripe_and_sets_the_plan(
    synced_webhook, stripe_has_the_subscriber, subscriber, pro_price
):
    # given: Stripe has the active subscription
    subscription = serve_subscription(stripe_has_the_subscriber)
    # when
    response = synced_webhook.post(
        stripe_events.event("customer.subscription.updated", subscription)
    )
    # then: dj-stripe stored the subscription as Stripe serves it, and the profile follows
    assert response.status_code == 200, response.content
    stored = Subscription.objects.get(id="sub_pro")
    assert (stored.status, stored.customer_id) == ("active", "cus_subscriber")
    assert "/v1/subscriptions/sub_pro" in {
        r.path for r in stripe_has_the_subscriber.received("GET")
    }
    profile = UserProfile.objects.get(user=subscriber)
    assert (profile.plan, profile.subscription_status) == ("pro", "active")
    assert profile.stripe_price_id == "price_pro_monthly"
    assert profile.subscription_ends_at.timestamp() == PERIOD_END
    assert not CreditTransaction.objects.exists()
    assert_ledger_consistent()


def test_a_late_update_after_the_deletion_changes_nothing_through_the_real_sync(
    synced_webhook, stripe_has_the_subscriber, subscriber, pro_price
):
    # given: the subscription was deleted; Stripe now serves it canceled
    UserProfile.objects.filter(user=subscriber).update(plan="pro", subscription_status="active")
    canceled = serve_subscription(stripe_has_the_subscriber, status="canceled", ended_at=DELETED_AT)
    response = synced_webhook.post(
        stripe_events.event("customer.subscription.deleted", canceled, created=DELETED_AT)
    )
    assert response.status_code == 200, response.content
    assert Subscription.objects.get(id="sub_pro").status == "canceled"
    before = UserProfile.objects.values().get(user=subscriber)
    assert (before["plan"], before["subscription_status"]) == ("free", "canceled")
    # when: an hour-older "updated (active)" is delivered late
    active_then = stripe_api_objects.subscription(
        "sub_pro",
        price_id="price_pro_monthly",
        current_period_start=PERIOD_START,
        current_period_end=PERIOD_END,
    )
    late = stripe_events.event(
        "customer.subscription.updated", active_then, created=DELETED_AT - HOUR
    )
    response = synced_webhook.post(late)
    # then: nothing changed, recorded as stale; dj-stripe's row stays what Stripe serves
    assert response.status_code == 200, response.content
    assert UserProfile.objects.values().get(user=subscriber) == before
    assert StripeEventIssue.objects.get(stripe_event_id=late["id"]).kind == IssueKind.STALE_EVENT
    assert Subscription.objects.get(id="sub_pro").status == "canceled"
    assert monthly_credits_grant(period="2026-01") == 0
    assert not CreditTransaction.objects.exists()
    assert_ledger_consistent()


def test_a_paid_invoice_is_synced_by_dj_stripe_and_grants_the_month(
    synced_webhook, stripe_has_the_subscriber, subscriber, pro_price
):
    # given: Stripe has the subscription and its paid invoice
    serve_subscription(stripe_has_the_subscriber)
    invoice = stripe_api_objects.invoice(
        "in_december",
        price_id="price_pro_monthly",
        subscription="sub_pro",
        period_start=PERIOD_START,
        period_end=PERIOD_END,
    )
    stripe_has_the_subscriber.add(invoice)
    # when
    response = synced_webhook.post(stripe_events.event("invoice.paid", invoice))
    # then: dj-stripe stored the invoice, and December's credits were granted once
    assert response.status_code == 200, response.content
    stored = Invoice.objects.get(id="in_december")
    assert stored.customer_id == "cus_subscriber"
    assert (stored.stripe_data["amount_paid"], stored.stripe_data["subscription"]) == (
        2900,
        "sub_pro",
    )
    assert Subscription.objects.filter(id="sub_pro").exists()
    entry = CreditTransaction.objects.get(kind=EntryKind.MONTHLY_GRANT)
    assert entry.amount == Decimal("260.00")
    assert entry.metadata["period"] == "2025-12"
    profile = UserProfile.objects.get(user=subscriber)
    assert (profile.plan, profile.subscription_status) == ("pro", "active")
    assert CreditAccount.objects.get(user=subscriber).balance == Decimal("260.00")
    assert_ledger_consistent()


def buy_through_the_real_sync(synced_webhook, pack, *, payment_intent, customer="cus_buyer"):
    session = stripe_events.checkout_session(
        price_id=pack.stripe_price_id,
        amount_total=pack.amount_cents,
        payment_intent=payment_intent,
        customer=customer,
    )
    synced_webhook.fake.add(
        stripe_api_objects.payment_intent(
            payment_intent, amount=pack.amount_cents, customer=customer
        ),
        session,
    )
    if customer:
        synced_webhook.fake.add(stripe_api_objects.customer(customer))
    response = synced_webhook.post(stripe_events.event("checkout.session.completed", session))
    assert response.status_code == 200, response.content


def test_a_refunded_charge_is_synced_by_dj_stripe_and_takes_the_pack_back(
    synced_webhook, buyer, pack
):
    # given: a pack bought, then fully refunded on Stripe
    buy_through_the_real_sync(synced_webhook, pack, payment_intent="pi_refunded")
    charge = stripe_api_objects.charge(
        "ch_refunded",
        payment_intent="pi_refunded",
        amount=pack.amount_cents,
        amount_refunded=pack.amount_cents,
    )
    synced_webhook.fake.add(charge)
    # when
    payload = stripe_events.event("charge.refunded", charge)
    response = synced_webhook.post(payload)
    # then
    assert response.status_code == 200, response.content
    stored = Charge.objects.get(id="ch_refunded")
    assert stored.customer_id == "cus_buyer"
    assert (stored.stripe_data["refunded"], stored.stripe_data["amount_refunded"]) == (True, 1000)
    refund = CreditTransaction.objects.get(kind=EntryKind.REFUND)
    assert refund.amount == Decimal("-100.00")
    assert refund.stripe_event_id == payload["id"]
    assert CreditAccount.objects.get(user=buyer).balance == Decimal("0.00")
    assert not StripeEventIssue.objects.exists()
    assert_ledger_consistent()


def test_a_dispute_is_synced_by_dj_stripe_takes_the_pack_back_and_is_recorded(
    synced_webhook, buyer, pack
):
    # given: a pack bought, then its charge disputed
    buy_through_the_real_sync(synced_webhook, pack, payment_intent="pi_disputed")
    charge = stripe_api_objects.charge(
        "ch_disputed", payment_intent="pi_disputed", amount=pack.amount_cents, amount_refunded=0
    )
    dispute = stripe_api_objects.dispute(
        "dp_disputed", charge="ch_disputed", payment_intent="pi_disputed", amount=pack.amount_cents
    )
    synced_webhook.fake.add(charge, dispute)
    # when
    payload = stripe_events.event("charge.dispute.created", dispute)
    response = synced_webhook.post(payload)
    # then
    assert response.status_code == 200, response.content
    stored = Dispute.objects.get(id="dp_disputed")
    assert stored.stripe_data["status"] == "needs_response"
    assert Charge.objects.filter(id="ch_disputed").exists()
    entry = CreditTransaction.objects.get(kind=EntryKind.REFUND)
    assert entry.amount == Decimal("-100.00")
    assert entry.idempotency_key == "stripe-dispute:dp_disputed"
    issue = StripeEventIssue.objects.get(stripe_event_id=payload["id"])
    assert (issue.kind, issue.user) == (IssueKind.DISPUTE_OPENED, buyer)
    assert issue.data["taken"] == "100.00"
    assert CreditAccount.objects.get(user=buyer).balance == Decimal("0.00")
    assert_ledger_consistent()


def test_a_late_invoice_after_the_deletion_grants_nothing_beyond_its_period_real_sync(
    synced_webhook, stripe_has_the_subscriber, subscriber, pro_price
):
    # given: deleted on 2025-12-11; Stripe serves the subscription canceled
    canceled = serve_subscription(stripe_has_the_subscriber, status="canceled", ended_at=DELETED_AT)
    response = synced_webhook.post(
        stripe_events.event("customer.subscription.deleted", canceled, created=DELETED_AT)
    )
    assert response.status_code == 200, response.content
    # when: an invoice.paid made before the deletion, for the period after the end, arrives
    invoice = stripe_api_objects.invoice(
        "in_january",
        price_id="price_pro_monthly",
        subscription="sub_pro",
        period_start=PERIOD_END,
        period_end=PERIOD_END + 31 * 86400,
    )
    stripe_has_the_subscriber.add(invoice)
    late = stripe_events.event("invoice.paid", invoice, created=DELETED_AT - HOUR)
    response = synced_webhook.post(late)
    # then: dj-stripe stored the invoice; no grant, the profile stays ended, recorded
    assert response.status_code == 200, response.content
    assert Invoice.objects.filter(id="in_january").exists()
    assert not CreditTransaction.objects.exists()
    profile = UserProfile.objects.get(user=subscriber)
    assert (profile.plan, profile.subscription_status) == ("free", "canceled")
    assert StripeEventIssue.objects.get(stripe_event_id=late["id"]).kind == IssueKind.STALE_EVENT
    assert CreditAccount.objects.get(user=subscriber).balance == Decimal("0.00")
    assert_ledger_consistent()


def test_a_guest_refund_without_customer_or_email_is_taken_back_through_the_real_sync(
    synced_webhook, pack
):
    # given: a guest (no Stripe customer) bought a pack; the refunded charge names nobody
    guest = ProvisionedUserFactory(
        username="guest", email="buyer@example.com", provision__signup_grant=False
    )
    buy_through_the_real_sync(synced_webhook, pack, payment_intent="pi_guest", customer=None)
    assert CreditAccount.objects.get(user=guest).balance == Decimal("100.00")
    charge = stripe_api_objects.charge(
        "ch_guest",
        payment_intent="pi_guest",
        amount=pack.amount_cents,
        amount_refunded=pack.amount_cents,
        customer=None,
        email=None,
    )
    synced_webhook.fake.add(charge)
    # when
    response = synced_webhook.post(stripe_events.event("charge.refunded", charge))
    # then: dj-stripe stored the charge without a customer; the purchase was found by its
    # payment intent and taken back
    assert response.status_code == 200, response.content
    assert Charge.objects.get(id="ch_guest").customer_id is None
    assert not Customer.objects.exists()
    refund = CreditTransaction.objects.get(kind=EntryKind.REFUND)
    assert refund.amount == Decimal("-100.00")
    assert CreditAccount.objects.get(user=guest).balance == Decimal("0.00")
    assert not StripeEventIssue.objects.exists()
    assert_ledger_consistent()


# --- guests and expired checkouts through the real sync ---------------------------------------


@pytest.fixture
def guest():
    # The user whose email the guest checkout gave; no Stripe customer.
    user = ProvisionedUserFactory(
        username="guest", email="buyer@example.com", provision__signup_grant=False
    )
    assert UserProfile.objects.get(user=user).stripe_customer_id is None
    return user


def serve_guest_dispute(server, pack, *, payment_intent: str, dispute_id: str) -> dict:
    charge = stripe_api_objects.charge(
        "ch_" + dispute_id,
        payment_intent=payment_intent,
        amount=pack.amount_cents,
        amount_refunded=0,
        customer=None,
        email=None,
    )
    dispute = stripe_api_objects.dispute(
        dispute_id, charge=charge["id"], payment_intent=payment_intent, amount=pack.amount_cents
    )
    server.add(charge, dispute)
    return dispute


def test_a_guest_dispute_takes_the_pack_back_and_is_recorded_through_the_real_sync(
    synced_webhook, guest, pack
):
    # given: a guest bought a pack; the disputed charge names no customer and no email
    buy_through_the_real_sync(synced_webhook, pack, payment_intent="pi_guest_dp", customer=None)
    assert CreditAccount.objects.get(user=guest).balance == Decimal("100.00")
    dispute = serve_guest_dispute(
        synced_webhook.fake, pack, payment_intent="pi_guest_dp", dispute_id="dp_guest"
    )
    payload = stripe_events.event("charge.dispute.created", dispute)
    # when: delivered, and delivered again
    responses = [synced_webhook.post(payload), synced_webhook.post(payload)]
    # then: dj-stripe stored the dispute and its customerless charge; the purchase was found by
    # its payment intent, its credits taken back once, and the dispute recorded for staff
    assert [r.status_code for r in responses] == [200, 200]
    assert Dispute.objects.get(id="dp_guest").stripe_data["status"] == "needs_response"
    assert Charge.objects.get(id="ch_dp_guest").customer_id is None
    assert not Customer.objects.exists()
    entry = CreditTransaction.objects.get(kind=EntryKind.REFUND)
    assert (entry.amount, entry.idempotency_key) == (Decimal("-100.00"), "stripe-dispute:dp_guest")
    assert entry.metadata["payment_intent"] == "pi_guest_dp"
    issue = StripeEventIssue.objects.get(stripe_event_id=payload["id"])
    assert (issue.kind, issue.user, issue.data["taken"]) == (
        IssueKind.DISPUTE_OPENED,
        guest,
        "100.00",
    )
    assert CreditAccount.objects.get(user=guest).balance == Decimal("0.00")
    assert_ledger_consistent()


def test_a_guest_dispute_after_spending_takes_what_is_left_through_the_real_sync(
    synced_webhook, guest, pack
):
    # given: 100 bought as a guest, 30 spent
    from credits.services import credit_spend

    buy_through_the_real_sync(synced_webhook, pack, payment_intent="pi_guest_sp", customer=None)
    account = CreditAccount.objects.get(user=guest)
    credit_spend(account=account, amount=Decimal("30.00"), idempotency_key="use:guest")
    dispute = serve_guest_dispute(
        synced_webhook.fake, pack, payment_intent="pi_guest_sp", dispute_id="dp_spent"
    )
    payload = stripe_events.event("charge.dispute.created", dispute)
    # when
    response = synced_webhook.post(payload)
    # then: what is left is taken back, never below zero; the issue says how much
    assert response.status_code == 200, response.content
    entry = CreditTransaction.objects.get(kind=EntryKind.REFUND)
    assert entry.amount == Decimal("-70.00")
    issue = StripeEventIssue.objects.get(stripe_event_id=payload["id"])
    assert (issue.kind, issue.user, issue.data["taken"]) == (
        IssueKind.DISPUTE_OPENED,
        guest,
        "70.00",
    )
    account.refresh_from_db()
    assert account.balance == Decimal("0.00")
    assert_ledger_consistent()


def expired_session(pack, *, customer: str | None) -> dict:
    # API 2024-06-20: an expired Checkout Session; never paid, so no payment intent.
    session = stripe_events.checkout_session(
        price_id=pack.stripe_price_id,
        amount_total=pack.amount_cents,
        customer=customer,
        payment_status="unpaid",
    )
    session.update(status="expired", payment_intent=None)
    return session


@pytest.mark.parametrize("customer", ["cus_buyer", None], ids=["customer", "guest"])
def test_an_expired_checkout_writes_nothing_to_the_ledger_through_the_real_sync(
    synced_webhook, buyer, pack, customer
):
    # given: the buyer holds credits already; Stripe has the expired session (and the customer)
    from credits.services import credit_grant

    account = CreditAccount.objects.get(user=buyer)
    credit_grant(account=account, amount=Decimal("5.00"), idempotency_key="before:expired")
    entries_before = CreditTransaction.objects.count()
    session = expired_session(pack, customer=customer)
    synced_webhook.fake.add(session)
    if customer:
        synced_webhook.fake.add(stripe_api_objects.customer(customer))
    payload = stripe_events.event("checkout.session.expired", session)
    # when: delivered, and delivered again
    responses = [synced_webhook.post(payload), synced_webhook.post(payload)]
    # then: dj-stripe synced the session; nothing was written to the ledger; recorded once
    assert [r.status_code for r in responses] == [200, 200]
    assert f"/v1/checkout/sessions/{session['id']}" in {
        r.path for r in synced_webhook.fake.received("GET")
    }
    assert Session.objects.get(id=session["id"]).stripe_data["status"] == "expired"
    assert Customer.objects.filter(id="cus_buyer").exists() == bool(customer)
    assert CreditTransaction.objects.count() == entries_before
    account.refresh_from_db()
    assert account.balance == Decimal("5.00")
    issue = StripeEventIssue.objects.get(stripe_event_id=payload["id"])
    assert issue.kind == IssueKind.CHECKOUT_EXPIRED
    assert issue.data["checkout_session"] == session["id"]
    assert issue.stripe_customer_id == (customer or "")
    assert_ledger_consistent()
