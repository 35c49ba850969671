"""Stripe webhooks through the real dj-stripe view: signed payloads in, one ledger entry out.

Each event is posted as Stripe sends it (exact bytes, signed with the endpoint's secret) with
Stripe's HTTP layer blocked, so an accidental API call fails the test.
"""

import io
import threading
import time
from decimal import Decimal
from unittest import mock

import pytest
import stripe
from django.core.management import call_command
from django.db import OperationalError, connection
from djstripe.models import Event, WebhookEventTrigger
from rest_framework.test import APIClient

from billing.models import IssueKind, StripeEventIssue, UserProfile
from core.keys import monthly_grant_key
from credits.models import CreditAccount, CreditTransaction, EntryKind
from credits.selectors import ledger_sum
from tests.billing import stripe_events
from tests.billing.stripe_events import PERIOD_END, PERIOD_START
from tests.factories import CreditPackFactory, PlanPriceFactory, ProvisionedUserFactory
from tests.helpers import assert_ledger_consistent

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def ledger_checked_after_each_test(db):
    yield
    assert_ledger_consistent()


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
    UserProfile.objects.filter(user=user).update(
        stripe_customer_id="cus_subscriber", migration_completed_at=None
    )
    return user


@pytest.fixture
def pack():
    return CreditPackFactory(
        stripe_price_id="price_pack_100", name="100 credits", credits=Decimal("100.00")
    )


@pytest.fixture
def pro_price():
    return PlanPriceFactory(stripe_price_id="price_pro_monthly", plan="pro")


def account_of(user) -> CreditAccount:
    account = CreditAccount.objects.get(user=user)
    account.refresh_from_db()
    return account


def paid_checkout(pack, **kwargs):
    fields = dict(price_id=pack.stripe_price_id, amount_total=pack.amount_cents, **kwargs)
    return stripe_events.event(
        "checkout.session.completed", stripe_events.checkout_session(**fields)
    )


def ledger_rows():
    return CreditTransaction.objects.count(), StripeEventIssue.objects.count()


# --- Signatures -----------------------------------------------------------------------------


def test_the_test_signature_is_what_stripe_verifies(webhook_endpoint):
    # given
    body = stripe_events.body_of(stripe_events.event("invoice.paid", {"object": "invoice"}))
    # when
    header = stripe_events.signature(body, webhook_endpoint.secret)
    # then
    assert stripe.WebhookSignature.verify_header(
        body.decode(), header, webhook_endpoint.secret, tolerance=300
    )


def test_a_bad_signature_is_refused_and_writes_nothing(webhook, buyer, pack):
    # when
    response = webhook.post(paid_checkout(pack), secret="whsec_not_the_endpoints_secret")
    # then
    assert response.status_code == 400
    assert ledger_rows() == (0, 0)
    assert not Event.objects.exists()
    assert account_of(buyer).balance == Decimal("0.00")


def test_a_missing_signature_is_refused_and_writes_nothing(webhook, buyer, pack):
    # when
    response = webhook.post_raw(stripe_events.body_of(paid_checkout(pack)))
    # then
    assert response.status_code == 400
    assert ledger_rows() == (0, 0)
    assert not Event.objects.exists()
    assert not WebhookEventTrigger.objects.exists()


def test_a_signature_older_than_the_tolerance_is_refused(webhook, buyer, pack):
    # given: signed correctly, but 301 seconds ago (tolerance: 300)
    signed_at = int(time.time()) - webhook.endpoint.djstripe_tolerance - 1
    # when
    response = webhook.post(paid_checkout(pack), timestamp=signed_at)
    # then
    assert response.status_code == 400
    assert ledger_rows() == (0, 0)
    assert not Event.objects.exists()


def test_a_changed_body_is_refused(webhook, buyer, pack):
    # given: signed, then the amount changed on the way
    payload = paid_checkout(pack)
    body = stripe_events.body_of(payload)
    header = stripe_events.signature(body, webhook.endpoint.secret)
    forged = body.replace(b'"amount_total": 1000', b'"amount_total": 1')
    assert forged != body
    # when
    response = webhook.post_raw(forged, headers={"Stripe-Signature": header})
    # then
    assert response.status_code == 400
    assert ledger_rows() == (0, 0)


def test_in_production_a_forged_secret_header_is_refused(webhook, buyer, pack, settings):
    # given: production settings, and a forger who signs with a secret of their choosing and
    # names it in dj-stripe's debug header
    settings.DEBUG = False
    forger_secret = "whsec_chosen_by_the_forger"
    # when
    response = webhook.post(
        paid_checkout(pack),
        secret=forger_secret,
        headers={"X-Djstripe-Webhook-Secret": forger_secret},
    )
    # then
    assert response.status_code == 400
    assert ledger_rows() == (0, 0)
    assert account_of(buyer).balance == Decimal("0.00")


def test_with_debug_on_the_secret_header_is_honoured_which_is_why_production_turns_it_off(
    webhook, buyer, pack, settings
):
    # given
    settings.DEBUG = True
    forger_secret = "whsec_chosen_by_the_forger"
    # when
    response = webhook.post(
        paid_checkout(pack),
        secret=forger_secret,
        headers={"X-Djstripe-Webhook-Secret": forger_secret},
    )
    # then: accepted; the project's default is DEBUG=False for this reason
    assert response.status_code == 200
    assert account_of(buyer).balance == Decimal("100.00")


# --- checkout.session.completed -------------------------------------------------------------


def test_a_paid_checkout_grants_the_pack_as_a_purchase(webhook, buyer, pack):
    # given
    payload = paid_checkout(pack, payment_intent="pi_pack_1")
    session = payload["data"]["object"]
    # when
    response = webhook.post(payload)
    # then
    assert response.status_code == 200
    account = account_of(buyer)
    assert account.balance == Decimal("100.00")
    assert account.total_earned == Decimal("100.00")
    entry = account.entries.get()
    assert entry.kind == EntryKind.PURCHASE
    assert entry.amount == Decimal("100.00")
    assert entry.balance_before == Decimal("0.00")
    assert entry.balance_after == Decimal("100.00")
    assert entry.stripe_event_id == payload["id"]
    assert entry.idempotency_key == "stripe-payment:pi_pack_1"
    assert entry.source == "stripe"
    assert entry.metadata["payment_intent"] == "pi_pack_1"
    assert entry.metadata["checkout_session"] == session["id"]
    assert entry.metadata["stripe_price_id"] == "price_pack_100"
    assert entry.metadata["amount_cents"] == 1000
    assert ledger_sum(account=account) == Decimal("100.00")
    assert not StripeEventIssue.objects.exists()


def test_the_same_event_delivered_twice_grants_once(webhook, buyer, pack):
    # given
    payload = paid_checkout(pack)
    # when
    first = webhook.post(payload)
    second = webhook.post(payload)
    # then
    assert (first.status_code, second.status_code) == (200, 200)
    assert WebhookEventTrigger.objects.count() == 2
    assert Event.objects.count() == 1
    account = account_of(buyer)
    assert account.balance == Decimal("100.00")
    assert account.entries.count() == 1


def test_one_payment_reported_by_two_events_grants_once(webhook, buyer, pack):
    # given: an asynchronous payment: completed (unpaid), then async_payment_succeeded (paid)
    unpaid = stripe_events.checkout_session(
        price_id=pack.stripe_price_id,
        amount_total=pack.amount_cents,
        payment_intent="pi_async",
        payment_status="unpaid",
    )
    paid = {**unpaid, "payment_status": "paid"}
    # when
    webhook.post(stripe_events.event("checkout.session.completed", unpaid))
    assert account_of(buyer).balance == Decimal("0.00")
    webhook.post(stripe_events.event("checkout.session.async_payment_succeeded", paid))
    webhook.post(stripe_events.event("checkout.session.async_payment_succeeded", paid))
    # then
    account = account_of(buyer)
    assert account.balance == Decimal("100.00")
    assert account.entries.count() == 1


def test_a_customer_unknown_by_id_is_found_by_email_and_linked(webhook, pack):
    # given
    user = ProvisionedUserFactory(
        username="ann", email="Ann@Example.com", provision__signup_grant=False
    )
    # when
    response = webhook.post(paid_checkout(pack, customer="cus_new_ann", email="ann@example.com"))
    # then
    assert response.status_code == 200
    assert account_of(user).balance == Decimal("100.00")
    assert UserProfile.objects.get(user=user).stripe_customer_id == "cus_new_ann"


def test_a_plan_that_may_not_buy_is_recorded_not_granted(webhook, buyer, pack, settings):
    # given
    settings.CREDITS_PURCHASE_PLANS = ["pro", "business"]
    payload = paid_checkout(pack, payment_intent="pi_refused")
    # when
    response = webhook.post(payload)
    # then
    assert response.status_code == 200
    assert account_of(buyer).balance == Decimal("0.00")
    assert not CreditTransaction.objects.exists()
    issue = StripeEventIssue.objects.get()
    assert issue.kind == IssueKind.PURCHASE_NOT_ALLOWED
    assert issue.stripe_event_id == payload["id"]
    assert issue.event_type == "checkout.session.completed"
    assert issue.user == buyer
    assert issue.stripe_customer_id == "cus_buyer"
    assert issue.data["payment_intent"] == "pi_refused"
    assert issue.data["plan"] == "free"
    assert not issue.is_resolved


def test_an_allowed_plan_buys(webhook, buyer, pack, settings):
    # given
    settings.CREDITS_PURCHASE_PLANS = ["pro"]
    UserProfile.objects.filter(user=buyer).update(plan="pro")
    # when
    webhook.post(paid_checkout(pack))
    # then
    assert account_of(buyer).balance == Decimal("100.00")


# --- Bad input: recorded, nothing granted, answered 200 ------------------------------------


BAD_EVENTS = {
    "unknown price": (
        IssueKind.UNKNOWN_PRICE,
        lambda pack: stripe_events.event(
            "checkout.session.completed",
            stripe_events.checkout_session(price_id="price_nobody_sells", amount_total=1000),
        ),
    ),
    "unknown customer": (
        IssueKind.UNKNOWN_CUSTOMER,
        lambda pack: paid_checkout(pack, customer="cus_stranger", email="stranger@example.com"),
    ),
    "amount mismatch": (
        IssueKind.AMOUNT_MISMATCH,
        lambda pack: stripe_events.event(
            "checkout.session.completed",
            stripe_events.checkout_session(price_id=pack.stripe_price_id, amount_total=1),
        ),
    ),
    "currency mismatch": (
        IssueKind.AMOUNT_MISMATCH,
        lambda pack: paid_checkout(pack, currency="eur"),
    ),
    "amount missing": (
        IssueKind.MALFORMED_PAYLOAD,
        lambda pack: stripe_events.event(
            "checkout.session.completed",
            {
                **stripe_events.checkout_session(price_id=pack.stripe_price_id, amount_total=0),
                "amount_total": None,
            },
        ),
    ),
    "no price named": (
        IssueKind.MALFORMED_PAYLOAD,
        lambda pack: stripe_events.event(
            "checkout.session.completed",
            {**paid_checkout(pack)["data"]["object"], "metadata": {}},
        ),
    ),
    "not a checkout session": (
        IssueKind.MALFORMED_PAYLOAD,
        lambda pack: stripe_events.event(
            "checkout.session.completed", {"object": "invoice", "id": "in_1"}
        ),
    ),
    "invoice for an unknown price": (
        IssueKind.UNKNOWN_PRICE,
        lambda pack: stripe_events.event(
            "invoice.paid", stripe_events.invoice(price_id="price_unknown_plan")
        ),
    ),
    "invoice without a period": (
        IssueKind.MALFORMED_PAYLOAD,
        lambda pack: stripe_events.event(
            "invoice.paid",
            {**stripe_events.invoice(price_id="price_pro_monthly"), "lines": {"data": [{}]}},
        ),
    ),
    "refund of more than was paid": (
        IssueKind.MALFORMED_PAYLOAD,
        lambda pack: stripe_events.event(
            "charge.refunded",
            stripe_events.charge(payment_intent="pi_1", amount=1000, amount_refunded=2000),
        ),
    ),
    "refund of no known purchase": (
        IssueKind.REFUND_WITHOUT_PURCHASE,
        lambda pack: stripe_events.event(
            "charge.refunded",
            stripe_events.charge(payment_intent="pi_unknown", amount=1000, amount_refunded=1000),
        ),
    ),
}


@pytest.mark.parametrize("case", list(BAD_EVENTS))
def test_bad_input_is_recorded_grants_nothing_and_is_answered_200(
    case, webhook, buyer, pack, pro_price
):
    # given
    kind, build = BAD_EVENTS[case]
    payload = build(pack)
    # when
    response = webhook.post(payload)
    # then
    assert response.status_code == 200
    assert not CreditTransaction.objects.exists()
    assert account_of(buyer).balance == Decimal("0.00")
    issue = StripeEventIssue.objects.get()
    assert issue.kind == kind
    assert issue.stripe_event_id == payload["id"]
    assert issue.event_type == payload["type"]
    assert issue.detail
    # and Stripe's delivery is settled: the same event again adds nothing
    assert webhook.post(payload).status_code == 200
    assert StripeEventIssue.objects.count() == 1


def test_an_unknown_customer_is_recorded_with_who_stripe_named(webhook, pack):
    # given
    payload = paid_checkout(pack, customer="cus_stranger", email="stranger@example.com")
    # when
    webhook.post(payload)
    # then
    issue = StripeEventIssue.objects.get()
    assert issue.kind == IssueKind.UNKNOWN_CUSTOMER
    assert issue.stripe_customer_id == "cus_stranger"
    assert issue.customer_email == "stranger@example.com"
    assert issue.user is None


def test_a_transient_failure_answers_500_writes_nothing_and_the_redelivery_grants(
    webhook, buyer, pack
):
    # given: the database fails once while the purchase is written
    payload = paid_checkout(pack)
    failing = mock.patch(
        "billing.stripe.services.purchases.credit_grant",
        side_effect=OperationalError("could not serialize access"),
    )
    # when
    with failing:
        response = webhook.post(payload)
    # then: rolled back, and Stripe will deliver the event again
    assert response.status_code == 500
    assert ledger_rows() == (0, 0)
    assert not Event.objects.exists()
    assert "could not serialize access" in WebhookEventTrigger.objects.get().exception
    # when: Stripe's redelivery
    retried = webhook.post(payload)
    # then
    assert retried.status_code == 200
    assert account_of(buyer).balance == Decimal("100.00")
    assert account_of(buyer).entries.count() == 1


# --- invoice.paid ---------------------------------------------------------------------------


def test_a_paid_invoice_sets_the_plan_and_grants_the_month(webhook, subscriber, pro_price):
    # given
    payload = stripe_events.event(
        "invoice.paid", stripe_events.invoice(price_id=pro_price.stripe_price_id)
    )
    # when
    response = webhook.post(payload)
    # then
    assert response.status_code == 200
    profile = UserProfile.objects.get(user=subscriber)
    assert profile.plan == "pro"
    assert profile.subscription_status == "active"
    assert profile.stripe_price_id == "price_pro_monthly"
    assert profile.stripe_customer_id == "cus_subscriber"
    assert profile.subscription_started_at.timestamp() == PERIOD_START
    assert profile.subscription_ends_at.timestamp() == PERIOD_END
    account = account_of(subscriber)
    assert account.balance == Decimal("260.00")
    entry = account.entries.get()
    assert entry.kind == EntryKind.MONTHLY_GRANT
    assert entry.amount == Decimal("260.00")
    assert entry.idempotency_key == monthly_grant_key(account_id=account.pk, period="2025-12")
    assert entry.stripe_event_id == payload["id"]
    assert entry.metadata["period"] == "2025-12"
    assert entry.metadata["subscription"] == "sub_1"


def test_two_invoice_events_for_one_period_grant_once(webhook, subscriber, pro_price):
    # given: invoice.paid twice, as two different events for the same period
    first = stripe_events.event("invoice.paid", stripe_events.invoice(price_id="price_pro_monthly"))
    second = stripe_events.event(
        "invoice.paid", stripe_events.invoice(price_id="price_pro_monthly")
    )
    # when
    responses = [webhook.post(first), webhook.post(second), webhook.post(first)]
    # then
    assert [response.status_code for response in responses] == [200, 200, 200]
    account = account_of(subscriber)
    assert account.balance == Decimal("260.00")
    assert account.entries.count() == 1
    assert not StripeEventIssue.objects.exists()


def test_the_next_period_grants_again(webhook, subscriber, pro_price):
    # given
    december = stripe_events.invoice(price_id="price_pro_monthly")
    january = stripe_events.invoice(
        price_id="price_pro_monthly", period_start=PERIOD_END, period_end=PERIOD_END + 31 * 86400
    )
    # when
    webhook.post(stripe_events.event("invoice.paid", december))
    webhook.post(stripe_events.event("invoice.paid", january))
    # then
    account = account_of(subscriber)
    assert account.balance == Decimal("520.00")
    assert sorted(account.entries.values_list("metadata__period", flat=True)) == [
        "2025-12",
        "2026-01",
    ]


def test_a_change_of_plan_within_a_granted_month_is_recorded(webhook, subscriber, pro_price):
    # given: December granted on the pro plan
    PlanPriceFactory(stripe_price_id="price_business_monthly", plan="business")
    webhook.post(
        stripe_events.event("invoice.paid", stripe_events.invoice(price_id="price_pro_monthly"))
    )
    upgrade = stripe_events.event(
        "invoice.paid", stripe_events.invoice(price_id="price_business_monthly")
    )
    # when
    response = webhook.post(upgrade)
    # then: the plan changes, the month is not granted twice, staff see the difference
    assert response.status_code == 200
    assert UserProfile.objects.get(user=subscriber).plan == "business"
    assert account_of(subscriber).balance == Decimal("260.00")
    issue = StripeEventIssue.objects.get()
    assert issue.kind == IssueKind.PERIOD_ALREADY_GRANTED
    assert issue.data == {"period": "2025-12", "plan": "business", "credits": "1000"}


def test_a_one_off_invoice_is_not_a_plan(webhook, subscriber, pro_price):
    # given
    one_off = {**stripe_events.invoice(price_id="price_pro_monthly"), "subscription": None}
    # when
    response = webhook.post(stripe_events.event("invoice.paid", one_off))
    # then
    assert response.status_code == 200
    assert ledger_rows() == (0, 0)
    assert UserProfile.objects.get(user=subscriber).plan == "free"


# --- customer.subscription.updated / deleted ----------------------------------------------


def test_a_subscription_update_sets_plan_status_and_dates(webhook, subscriber, pro_price):
    # given
    PlanPriceFactory(stripe_price_id="price_business_yearly", plan="business", interval="year")
    payload = stripe_events.event(
        "customer.subscription.updated",
        stripe_events.subscription(price_id="price_business_yearly", status="past_due"),
    )
    # when
    response = webhook.post(payload)
    # then
    assert response.status_code == 200
    profile = UserProfile.objects.get(user=subscriber)
    assert profile.plan == "business"
    assert profile.subscription_status == "past_due"
    assert profile.stripe_price_id == "price_business_yearly"
    assert profile.subscription_started_at.timestamp() == PERIOD_START
    assert profile.subscription_ends_at.timestamp() == PERIOD_END
    assert ledger_rows() == (0, 0)


def test_a_deleted_subscription_returns_the_user_to_the_default_plan(
    webhook, subscriber, pro_price
):
    # given
    UserProfile.objects.filter(user=subscriber).update(plan="pro", subscription_status="active")
    ended_at = PERIOD_START + 86400
    payload = stripe_events.event(
        "customer.subscription.deleted",
        stripe_events.subscription(
            price_id="price_pro_monthly", status="canceled", ended_at=ended_at
        ),
    )
    # when
    response = webhook.post(payload)
    # then
    assert response.status_code == 200
    profile = UserProfile.objects.get(user=subscriber)
    assert profile.plan == "free"
    assert profile.subscription_status == "canceled"
    assert profile.subscription_ends_at.timestamp() == ended_at


def test_a_subscription_of_an_unknown_customer_is_recorded(webhook, pro_price):
    # given
    payload = stripe_events.event(
        "customer.subscription.updated",
        stripe_events.subscription(price_id="price_pro_monthly", customer="cus_stranger"),
    )
    # when
    response = webhook.post(payload)
    # then
    assert response.status_code == 200
    issue = StripeEventIssue.objects.get()
    assert (issue.kind, issue.stripe_customer_id) == (IssueKind.UNKNOWN_CUSTOMER, "cus_stranger")


# --- charge.refunded ------------------------------------------------------------------------


def bought(webhook, pack, payment_intent="pi_bought"):
    response = webhook.post(paid_checkout(pack, payment_intent=payment_intent))
    assert response.status_code == 200


def refund_event(payment_intent="pi_bought", *, amount_refunded, amount=1000):
    return stripe_events.event(
        "charge.refunded",
        stripe_events.charge(
            payment_intent=payment_intent, amount=amount, amount_refunded=amount_refunded
        ),
    )


def test_a_full_refund_takes_the_pack_back(webhook, buyer, pack):
    # given
    bought(webhook, pack)
    payload = refund_event(amount_refunded=1000)
    # when
    response = webhook.post(payload)
    # then
    assert response.status_code == 200
    account = account_of(buyer)
    assert account.balance == Decimal("0.00")
    assert account.total_earned == Decimal("0.00")
    refund = account.entries.get(kind=EntryKind.REFUND)
    assert refund.amount == Decimal("-100.00")
    assert refund.stripe_event_id == payload["id"]
    assert refund.idempotency_key == "stripe-refund:pi_bought:1000"
    assert refund.metadata["payment_intent"] == "pi_bought"
    assert "shortfall" not in refund.metadata
    assert ledger_sum(account=account) == Decimal("0.00")
    assert not StripeEventIssue.objects.exists()


def test_partial_refunds_take_back_their_share_cumulatively(webhook, buyer):
    # given: 100 credits for 30.00 USD
    pack = CreditPackFactory(
        stripe_price_id="price_odd", credits=Decimal("100.00"), amount_cents=3000
    )
    bought(webhook, pack)
    # when: 10.00 refunded (a third, 33.33 credits), then 30.00 in all
    first = refund_event(amount_refunded=1000, amount=3000)
    webhook.post(first)
    # then
    assert account_of(buyer).balance == Decimal("66.67")
    # when
    webhook.post(refund_event(amount_refunded=3000, amount=3000))
    webhook.post(first)
    # then
    account = account_of(buyer)
    assert account.balance == Decimal("0.00")
    assert sorted(
        account.entries.filter(kind=EntryKind.REFUND).values_list("amount", flat=True)
    ) == [
        Decimal("-66.67"),
        Decimal("-33.33"),
    ]


def test_a_refund_of_spent_credits_takes_what_is_left_and_records_the_shortfall(
    webhook, buyer, pack
):
    # given: 100 bought, 70 spent
    from credits.services import credit_spend

    bought(webhook, pack)
    credit_spend(account=account_of(buyer), amount=Decimal("70.00"), idempotency_key="use:1")
    payload = refund_event(amount_refunded=1000)
    # when
    response = webhook.post(payload)
    # then
    assert response.status_code == 200
    account = account_of(buyer)
    assert account.balance == Decimal("0.00")
    refund = account.entries.get(kind=EntryKind.REFUND)
    assert refund.amount == Decimal("-30.00")
    assert refund.metadata["requested_amount"] == "-100.00"
    assert refund.metadata["shortfall"] == "70.00"
    issue = StripeEventIssue.objects.get()
    assert issue.kind == IssueKind.REFUND_SHORTFALL
    assert issue.data["shortfall"] == "70.00"
    assert issue.data["entry_id"] == refund.pk
    assert issue.user == buyer
    assert ledger_sum(account=account) == Decimal("0.00")


def test_a_refund_with_nothing_left_records_the_shortfall_only(webhook, buyer, pack):
    # given
    from credits.services import credit_spend

    bought(webhook, pack)
    credit_spend(account=account_of(buyer), amount=Decimal("100.00"), idempotency_key="use:all")
    # when
    response = webhook.post(refund_event(amount_refunded=1000))
    # then
    assert response.status_code == 200
    account = account_of(buyer)
    assert account.balance == Decimal("0.00")
    assert not account.entries.filter(kind=EntryKind.REFUND).exists()
    issue = StripeEventIssue.objects.get()
    assert (issue.kind, issue.data["shortfall"]) == (IssueKind.REFUND_SHORTFALL, "100.00")


def test_the_same_refund_event_twice_takes_back_once(webhook, buyer, pack):
    # given
    bought(webhook, pack)
    payload = refund_event(amount_refunded=500)
    # when
    webhook.post(payload)
    webhook.post(payload)
    # then
    account = account_of(buyer)
    assert account.balance == Decimal("50.00")
    assert account.entries.filter(kind=EntryKind.REFUND).count() == 1


# --- The incident this product exists for -------------------------------------------------


def test_a_legacy_pro_user_migrated_then_paying_sees_legacy_plus_plan_credits(
    webhook, pro_price, tmp_path
):
    # given: a PRO user of the legacy world, with 260 credits in legacy_accounts
    from tests.factories import LegacyAccountFactory

    legacy = LegacyAccountFactory(
        user__username="pro",
        user__email="pro@example.com",
        plan="pro",
        credits_balance=Decimal("260.00"),
        subscription_status="active",
        stripe_customer_id="cus_legacy_pro",
        stripe_price_id="price_pro_monthly",
    )
    call_command(
        "migrate_credits",
        "--execute",
        "--yes",
        "--source",
        "user_fields",
        f"--backup-dir={tmp_path}",
        stdout=io.StringIO(),
    )
    # when: Stripe reports the next invoice paid
    payload = stripe_events.event(
        "invoice.paid",
        stripe_events.invoice(price_id="price_pro_monthly", customer="cus_legacy_pro", email=""),
    )
    response = webhook.post(payload)
    # then: the frontend reads 260 + 260, and the plan, from the one ledger
    assert response.status_code == 200
    client = APIClient()
    client.force_authenticate(user=legacy.user)
    balance = client.get("/api/credits/balance/")
    assert balance.status_code == 200
    assert balance.json()["balance"] == "520.00"
    assert balance.json()["plan"] == "pro"
    assert balance.json()["migrated"] is True
    account = account_of(legacy.user)
    assert account.balance == Decimal("520.00")
    assert ledger_sum(account=account) == Decimal("520.00")
    assert sorted(
        account.entries.exclude(kind=EntryKind.HISTORY).values_list("kind", flat=True)
    ) == [
        EntryKind.MIGRATION,
        EntryKind.MONTHLY_GRANT,
    ]


# --- Concurrent deliveries (PostgreSQL) -------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_same_event_delivered_twice_at_once_grants_once(webhook, buyer, pack):
    # given: two deliveries of one event, posted by two threads at the same moment
    payload = paid_checkout(pack)
    barrier = threading.Barrier(2)
    statuses, errors = [], []

    def deliver():
        try:
            barrier.wait()
            statuses.append(webhook.post(payload).status_code)
        except Exception as error:  # reported below, never swallowed
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    # when
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then
    assert errors == []
    assert statuses == [200, 200]
    assert Event.objects.count() == 1
    account = account_of(buyer)
    assert account.balance == Decimal("100.00")
    assert account.entries.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_paid_events_for_one_session_from_8_threads_grant_one_purchase(webhook, buyer, pack):
    # given: completed and async_payment_succeeded for one paid session, 4 deliveries of each
    session = stripe_events.checkout_session(
        price_id=pack.stripe_price_id, amount_total=pack.amount_cents, payment_intent="pi_race"
    )
    payloads = [
        stripe_events.event("checkout.session.completed", session),
        stripe_events.event("checkout.session.async_payment_succeeded", session),
    ] * 4
    barrier = threading.Barrier(len(payloads))
    statuses, errors = [], []

    def deliver(payload):
        try:
            barrier.wait()
            statuses.append(webhook.post(payload).status_code)
        except Exception as error:  # reported below, never swallowed
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver, args=(p,)) for p in payloads]
    # when
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then
    assert errors == []
    assert statuses == [200] * 8
    assert Event.objects.count() == 2
    account = account_of(buyer)
    assert account.balance == Decimal("100.00")
    purchase = CreditTransaction.objects.get(kind=EntryKind.PURCHASE)
    assert purchase.idempotency_key == "stripe-payment:pi_race"
    assert_ledger_consistent()
