"""dj-stripe webhook receivers: read the event payload, call a service, nothing else.

dj-stripe verifies the signature, stores the Event (once: a redelivered event reaches no
receiver again) and runs its own sync before these, all in one transaction. See
billing.stripe.services for what is granted, what is recorded for staff, and what is retried.
"""

from djstripe.event_handlers import djstripe_receiver

from billing.stripe.services import (
    stripe_charge_disputed,
    stripe_charge_refunded,
    stripe_checkout_expired,
    stripe_checkout_paid,
    stripe_invoice_paid,
    stripe_subscription_changed,
)


def _payload(event):
    return event.data.get("object") if isinstance(event.data, dict) else None


@djstripe_receiver(["checkout.session.completed", "checkout.session.async_payment_succeeded"])
def on_checkout_paid(sender, event, **kwargs):
    stripe_checkout_paid(
        event_id=event.id, event_type=event.type, payload=_payload(event), created=event.created
    )


@djstripe_receiver("invoice.paid")
def on_invoice_paid(sender, event, **kwargs):
    stripe_invoice_paid(
        event_id=event.id, event_type=event.type, payload=_payload(event), created=event.created
    )


@djstripe_receiver(["customer.subscription.updated", "customer.subscription.deleted"])
def on_subscription_changed(sender, event, **kwargs):
    stripe_subscription_changed(
        event_id=event.id, event_type=event.type, payload=_payload(event), created=event.created
    )


@djstripe_receiver("charge.refunded")
def on_charge_refunded(sender, event, **kwargs):
    stripe_charge_refunded(
        event_id=event.id, event_type=event.type, payload=_payload(event), created=event.created
    )


@djstripe_receiver("charge.dispute.created")
def on_charge_disputed(sender, event, **kwargs):
    stripe_charge_disputed(
        event_id=event.id, event_type=event.type, payload=_payload(event), created=event.created
    )


@djstripe_receiver("checkout.session.expired")
def on_checkout_expired(sender, event, **kwargs):
    stripe_checkout_expired(
        event_id=event.id, event_type=event.type, payload=_payload(event), created=event.created
    )
