"""A Stripe refund or dispute of a purchase takes back that purchase's own (paid) lot first, not
the free credits the draw-down rule would spend first; the rest, if the lot holds too little,
by the rule. Stripe is faked at HTTP (`stripe_synced`)."""

from decimal import Decimal

import pytest

from billing.models import UserProfile
from billing.stripe.refunds import stripe_refund_credits
from billing.stripe.services import (
    stripe_charge_disputed,
    stripe_charge_refunded,
    stripe_checkout_paid,
)
from credits.exceptions import InsufficientCredits
from credits.models import CreditAccount, CreditAllocation, CreditLot, EntryKind, LotCategory
from credits.services import credit_grant, credit_hold_create, credit_spend
from tests.billing import stripe_events
from tests.factories import CreditPackFactory, ProvisionedUserFactory, SuperAdminFactory
from tests.helpers import assert_ledger_consistent, ledger_snapshot

pytestmark = pytest.mark.django_db


@pytest.fixture
def account(stripe_synced) -> CreditAccount:
    """50 promotional credits, then 100 credits bought for 10.00 USD (payment intent pi_bought)."""
    user = ProvisionedUserFactory(
        username="buyer", email="buyer@example.com", provision__signup_grant=False
    )
    UserProfile.objects.filter(user=user).update(stripe_customer_id="cus_buyer")
    account = CreditAccount.objects.get(user=user)
    credit_grant(account=account, amount=Decimal("50"), idempotency_key="welcome")
    pack = CreditPackFactory(stripe_price_id="price_pack_100", credits=Decimal("100.00"))
    stripe_checkout_paid(
        event_id="evt_bought",
        event_type="checkout.session.completed",
        payload=stripe_events.checkout_session(
            price_id=pack.stripe_price_id, amount_total=1000, payment_intent="pi_bought"
        ),
    )
    return account


def remaining(account) -> dict[str, Decimal]:
    return dict(CreditLot.objects.filter(account=account).values_list("category", "remaining"))


def taken_from(entry) -> list[tuple[str, Decimal]]:
    return list(
        CreditAllocation.objects.filter(entry=entry)
        .order_by("pk")
        .values_list("lot__category", "amount")
    )


def test_the_lots_are_promotional_and_paid(account):
    assert remaining(account) == {
        LotCategory.PROMOTIONAL: Decimal("50.00"),
        LotCategory.PAID: Decimal("100.00"),
    }


def test_a_staff_refund_through_stripe_takes_from_the_paid_lot(account, stripe_synced):
    # when
    entry = stripe_refund_credits(
        account=account,
        amount=Decimal("40"),
        payment_intent_id="pi_bought",
        actor=SuperAdminFactory(),
        reason="Customer asked",
        idempotency_key="refund:1",
    )
    # then: Stripe refunded 400 cents; the 40 credits came off the paid lot
    (sent,) = stripe_synced.received("POST", "/v1/refunds")
    assert sent.form["amount"] == "400"
    assert taken_from(entry) == [(LotCategory.PAID, Decimal("40.00"))]
    assert remaining(account) == {
        LotCategory.PROMOTIONAL: Decimal("50.00"),
        LotCategory.PAID: Decimal("60.00"),
    }
    account.refresh_from_db()
    assert account.balance == Decimal("110.00")
    assert_ledger_consistent()


def test_a_refund_reported_by_stripe_takes_from_the_paid_lot(account):
    # when: 400 of 1000 cents refunded in Stripe's dashboard
    entry = stripe_charge_refunded(
        event_id="evt_refund",
        event_type="charge.refunded",
        payload=stripe_events.charge(payment_intent="pi_bought", amount=1000, amount_refunded=400),
    )
    # then
    assert entry.kind == EntryKind.REFUND
    assert taken_from(entry) == [(LotCategory.PAID, Decimal("40.00"))]
    assert remaining(account) == {
        LotCategory.PROMOTIONAL: Decimal("50.00"),
        LotCategory.PAID: Decimal("60.00"),
    }
    assert_ledger_consistent()


def test_a_refund_beyond_what_the_paid_lot_has_left_takes_the_rest_by_the_rule(account):
    # given: 120 spent (the promotional 50 first, then 70 of the paid lot), then 20 more given
    credit_spend(account=account, amount=Decimal("120"), idempotency_key="spend")
    credit_grant(account=account, amount=Decimal("20"), idempotency_key="goodwill")
    # when: the whole purchase refunded
    entry = stripe_charge_refunded(
        event_id="evt_refund_all",
        event_type="charge.refunded",
        payload=stripe_events.charge(payment_intent="pi_bought", amount=1000, amount_refunded=1000),
    )
    # then: the paid lot's 30 first, then the newer promotional 20; the rest a shortfall
    assert taken_from(entry) == [
        (LotCategory.PAID, Decimal("30.00")),
        (LotCategory.PROMOTIONAL, Decimal("20.00")),
    ]
    assert entry.amount == Decimal("-50.00")
    assert entry.metadata["shortfall"] == "50.00"
    account.refresh_from_db()
    assert account.balance == Decimal("0.00")
    assert_ledger_consistent()


def test_a_dispute_takes_from_the_paid_lot(account):
    # when
    entry = stripe_charge_disputed(
        event_id="evt_dispute",
        event_type="charge.dispute.created",
        payload=stripe_events.dispute(payment_intent="pi_bought", amount=1000),
    )
    # then: the whole pack back, the promotional credits untouched
    assert taken_from(entry) == [(LotCategory.PAID, Decimal("100.00"))]
    assert remaining(account) == {
        LotCategory.PROMOTIONAL: Decimal("50.00"),
        LotCategory.PAID: Decimal("0.00"),
    }
    account.refresh_from_db()
    assert account.balance == Decimal("50.00")
    assert_ledger_consistent()


def test_credits_a_hold_reserves_are_not_refunded_and_stripe_is_not_asked(account, stripe_synced):
    # given: 120 of the 150 credits held, 30 available
    credit_hold_create(account=account, amount=Decimal("120"), idempotency_key="hold")
    before = ledger_snapshot()
    # when
    with pytest.raises(InsufficientCredits) as refused:
        stripe_refund_credits(
            account=account,
            amount=Decimal("40"),
            payment_intent_id="pi_bought",
            actor=SuperAdminFactory(),
            reason="Customer asked",
            idempotency_key="refund:held",
        )
    # then
    assert refused.value.details == {
        "balance": "150.00",
        "held": "120.00",
        "available": "30.00",
        "requested": "40.00",
    }
    assert stripe_synced.received("POST", "/v1/refunds") == []
    assert ledger_snapshot() == before
    assert remaining(account)[LotCategory.PAID] == Decimal("100.00")
    assert_ledger_consistent()
