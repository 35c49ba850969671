"""Stripe events onto the one ledger, each exactly once.

Each service takes what a webhook receiver read from the event payload (`event.data["object"]`)
and makes no Stripe API call. Credits move only through `credits.services`; each entry carries
its event's unique `stripe_event_id` and an idempotency key naming what was paid, not the event,
so two events for one payment never both write: `stripe-payment:<payment intent>` for a
purchase, `stripe-refund:<payment intent>:<cents refunded>` and `stripe-dispute:<dispute>` for
what is taken back, and (account, period) for monthly plan credits, like the Celery beat grant,
so one month is granted once whichever comes first. Subscription events older than the state a
profile holds (`UserProfile.stripe_state_at`) change nothing.

The services run inside dj-stripe's transaction. A problem that retrying cannot fix (an unknown
price or customer, a malformed payload, an amount that is not the pack's price, a purchase the
user's plan may not make, a refund larger than the credits left) is recorded as a
`StripeEventIssue` for staff and the service returns normally, so the webhook answers 200 and the
record commits; raising would roll the record back with everything else. Anything else (a
database that is down, a lock timeout) propagates: dj-stripe rolls back, answers 500, and
Stripe delivers the event again later.
"""

from billing.stripe.services._events import STRIPE_SOURCE, EventProblem
from billing.stripe.services.charges import (
    refunded_for_payment,
    stripe_charge_disputed,
    stripe_charge_refunded,
)
from billing.stripe.services.issues import stripe_issues_resolve
from billing.stripe.services.purchases import (
    purchase_for_payment,
    stripe_checkout_expired,
    stripe_checkout_paid,
)
from billing.stripe.services.subscriptions import (
    stripe_invoice_paid,
    stripe_subscription_changed,
)

__all__ = [
    "STRIPE_SOURCE",
    "EventProblem",
    "purchase_for_payment",
    "refunded_for_payment",
    "stripe_charge_disputed",
    "stripe_charge_refunded",
    "stripe_checkout_expired",
    "stripe_checkout_paid",
    "stripe_invoice_paid",
    "stripe_issues_resolve",
    "stripe_subscription_changed",
]
