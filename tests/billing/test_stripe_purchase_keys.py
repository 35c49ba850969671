"""Purchases written before purchases were keyed by their payment: a later event for the same
payment grants nothing twice.

Earlier releases keyed a purchase by its event (`stripe:<event id>`); now it is keyed by its
payment (`stripe-payment:<payment intent or session>`). A key alone cannot see the old entries,
so the purchase is looked up by the payment ids in its metadata, which both write. The old
entry is written here as the old code wrote it (key, `stripe_event_id`, metadata), through the
ledger's service. Runs on SQLite and, in the PostgreSQL pass, on PostgreSQL; the threaded test
needs PostgreSQL.
"""

import threading
from decimal import Decimal

import pytest
from django.db import connection

from billing.models import UserProfile
from billing.stripe.services import STRIPE_SOURCE
from core.keys import stripe_event_key
from credits.models import CreditAccount, CreditTransaction, EntryKind
from credits.services import credit_account_open, credit_grant
from tests.billing import stripe_events
from tests.factories import CreditPackFactory, ProvisionedUserFactory
from tests.helpers import assert_ledger_consistent

pytestmark = pytest.mark.django_db

OLD_EVENT = "evt_1OldCompletedBeforeTheUpgrade"


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


def paid_session(pack, *, payment_intent: str | None) -> dict:
    session = stripe_events.checkout_session(
        price_id=pack.stripe_price_id, amount_total=pack.amount_cents
    )
    session["payment_intent"] = payment_intent
    return session


def written_by_the_old_code(buyer, pack, session: dict) -> CreditTransaction:
    """The purchase entry the release before wrote for checkout.session.completed."""
    return credit_grant(
        account=credit_account_open(user=buyer),
        amount=pack.credits,
        kind=EntryKind.PURCHASE,
        idempotency_key=stripe_event_key(event_id=OLD_EVENT),
        stripe_event_id=OLD_EVENT,
        source=STRIPE_SOURCE,
        description=f"Credit pack {pack.name}",
        metadata={
            "payment_intent": session["payment_intent"] or "",
            "checkout_session": session["id"],
            "stripe_price_id": pack.stripe_price_id,
            "credit_pack_id": pack.pk,
            "amount_cents": pack.amount_cents,
            "currency": "usd",
        },
    )


@pytest.mark.parametrize(
    "payment_intent", ["pi_paid_before_the_upgrade", None], ids=["intent", "session-only"]
)
def test_an_old_keyed_purchase_is_not_granted_again_by_a_later_event(
    webhook, buyer, pack, payment_intent
):
    # given: the purchase the old code wrote for the session's completed event
    session = paid_session(pack, payment_intent=payment_intent)
    old = written_by_the_old_code(buyer, pack, session)
    assert old.idempotency_key == f"stripe:{OLD_EVENT}"
    # when: after the upgrade, async_payment_succeeded for the same session, then completed
    # delivered again under another event id (as a replay from Stripe's dashboard does)
    responses = [
        webhook.post(stripe_events.event("checkout.session.async_payment_succeeded", session)),
        webhook.post(stripe_events.event("checkout.session.completed", session)),
    ]
    # then: still the one purchase the old code wrote
    assert [r.status_code for r in responses] == [200, 200]
    assert list(CreditTransaction.objects.filter(kind=EntryKind.PURCHASE)) == [old]
    account = CreditAccount.objects.get(user=buyer)
    assert account.balance == Decimal("100.00")
    assert account.entries.count() == 1
    assert_ledger_consistent()


def test_a_new_payment_after_the_upgrade_is_keyed_by_its_payment(webhook, buyer, pack):
    # given: an old purchase of another payment
    written_by_the_old_code(buyer, pack, paid_session(pack, payment_intent="pi_old"))
    session = paid_session(pack, payment_intent="pi_new")
    # when
    response = webhook.post(stripe_events.event("checkout.session.completed", session))
    # then: the old entry does not hide the new payment
    assert response.status_code == 200
    new = CreditTransaction.objects.filter(kind=EntryKind.PURCHASE).order_by("pk").last()
    assert new.idempotency_key == "stripe-payment:pi_new"
    assert CreditAccount.objects.get(user=buyer).balance == Decimal("200.00")
    assert_ledger_consistent()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_old_keyed_purchase_and_8_concurrent_paid_events_grant_nothing_more(
    webhook, buyer, pack
):
    # given: the old purchase; then completed and async_payment_succeeded for the same session,
    # 4 deliveries of each at once
    session = paid_session(pack, payment_intent="pi_old_race")
    old = written_by_the_old_code(buyer, pack, session)
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
    assert list(CreditTransaction.objects.filter(kind=EntryKind.PURCHASE)) == [old]
    assert CreditAccount.objects.get(user=buyer).balance == Decimal("100.00")
    assert_ledger_consistent()
