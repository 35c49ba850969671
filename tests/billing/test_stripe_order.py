"""Stripe keeps no order: an event older than the subscription state a profile holds changes
nothing (a `stale_event` issue, 200), and an ended subscription is paid for nothing more."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from billing.models import IssueKind, StripeEventIssue, UserProfile
from billing.services import monthly_credits_grant
from credits.models import CreditAccount, CreditTransaction, EntryKind
from tests.billing import stripe_events
from tests.billing.stripe_events import PERIOD_END, PERIOD_START
from tests.factories import PlanPriceFactory, ProvisionedUserFactory
from tests.helpers import assert_ledger_consistent

pytestmark = pytest.mark.django_db

HOUR = 3600
DELETED_AT = PERIOD_START + 10 * 86400  # 2025-12-11


@pytest.fixture
def subscriber():
    user = ProvisionedUserFactory(
        username="subscriber", email="subscriber@example.com", provision__signup_grant=False
    )
    UserProfile.objects.filter(user=user).update(
        stripe_customer_id="cus_subscriber", plan="pro", subscription_status="active"
    )
    return user


@pytest.fixture
def pro_price():
    return PlanPriceFactory(stripe_price_id="price_pro_monthly", plan="pro")


def deleted(webhook):
    subscription = stripe_events.subscription(
        price_id="price_pro_monthly", status="canceled", ended_at=DELETED_AT
    )
    response = webhook.post(
        stripe_events.event("customer.subscription.deleted", subscription, created=DELETED_AT)
    )
    assert response.status_code == 200
    return subscription


def test_a_late_update_older_than_the_deletion_changes_nothing(webhook, subscriber, pro_price):
    # given: the subscription was deleted
    deleted(webhook)
    before = UserProfile.objects.values().get(user=subscriber)
    # when: an hour-older "updated (active)" arrives afterwards
    late = stripe_events.event(
        "customer.subscription.updated",
        stripe_events.subscription(price_id="price_pro_monthly", status="active"),
        created=DELETED_AT - HOUR,
    )
    response = webhook.post(late)
    # then
    assert response.status_code == 200
    profile = UserProfile.objects.values().get(user=subscriber)
    assert profile == before
    assert profile["plan"] == "free"
    assert profile["subscription_status"] == "canceled"
    issue = StripeEventIssue.objects.get(stripe_event_id=late["id"])
    assert issue.kind == IssueKind.STALE_EVENT
    # and the next months grant nothing
    assert monthly_credits_grant(period="2026-01") == 0
    assert not CreditTransaction.objects.exists()
    assert_ledger_consistent()


def test_a_newer_update_still_applies(webhook, subscriber, pro_price):
    # given
    deleted(webhook)
    # when: a subscription made again, after the deletion
    newer = stripe_events.event(
        "customer.subscription.updated",
        stripe_events.subscription(price_id="price_pro_monthly", status="active"),
        created=DELETED_AT + HOUR,
    )
    response = webhook.post(newer)
    # then
    assert response.status_code == 200
    profile = UserProfile.objects.get(user=subscriber)
    assert (profile.plan, profile.subscription_status) == ("pro", "active")
    assert profile.stripe_state_at == datetime.fromtimestamp(DELETED_AT + HOUR, tz=UTC)
    assert not StripeEventIssue.objects.exists()
    assert_ledger_consistent()


def test_an_invoice_paid_after_the_end_grants_nothing_beyond_its_period(
    webhook, subscriber, pro_price
):
    # given: deleted on 2025-12-11
    deleted(webhook)
    # when: a late invoice.paid (made before the deletion) for the period after the end
    late = stripe_events.event(
        "invoice.paid",
        stripe_events.invoice(
            price_id="price_pro_monthly", period_start=PERIOD_END, period_end=PERIOD_END + 2678400
        ),
        created=DELETED_AT - HOUR,
    )
    response = webhook.post(late)
    # then: no grant, the profile stays ended, recorded
    assert response.status_code == 200
    assert not CreditTransaction.objects.filter(kind=EntryKind.MONTHLY_GRANT).exists()
    profile = UserProfile.objects.get(user=subscriber)
    assert (profile.plan, profile.subscription_status) == ("free", "canceled")
    assert StripeEventIssue.objects.get(stripe_event_id=late["id"]).kind == IssueKind.STALE_EVENT
    assert CreditAccount.objects.get(user=subscriber).balance == Decimal("0.00")
    assert_ledger_consistent()


def test_a_late_invoice_for_a_period_paid_before_the_end_grants_that_period_only(
    webhook, subscriber, pro_price
):
    # given: deleted on 2025-12-11; December was paid
    UserProfile.objects.filter(user=subscriber).update(migration_completed_at=None)
    deleted(webhook)
    # when: December's invoice.paid arrives late
    late = stripe_events.event(
        "invoice.paid",
        stripe_events.invoice(price_id="price_pro_monthly"),
        created=DELETED_AT - HOUR,
    )
    response = webhook.post(late)
    # then: December's credits, and the profile still ended
    assert response.status_code == 200
    entry = CreditTransaction.objects.get(kind=EntryKind.MONTHLY_GRANT)
    assert entry.amount == Decimal("260.00")
    assert entry.metadata["period"] == "2025-12"
    profile = UserProfile.objects.get(user=subscriber)
    assert (profile.plan, profile.subscription_status) == ("free", "canceled")
    assert_ledger_consistent()
