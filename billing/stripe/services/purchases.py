"""checkout.session.completed: a paid credit pack becomes a purchase entry, once."""

from django.conf import settings
from django.db.models import Q

from billing.models import CreditPack, IssueKind
from billing.stripe.services._events import (
    STRIPE_SOURCE,
    EventProblem,
    HandledEvent,
    get_path,
    handled,
    profile_for,
    record_issue,
    required_int,
    required_str,
    stripe_id,
)
from core.keys import stripe_payment_key
from credits.models import CreditAccount, CreditTransaction, EntryKind
from credits.services import credit_account_open, credit_grant


def _checkout_price_id(session: dict) -> str:
    # Checkout webhooks carry no line items unless expanded; the checkout is created with
    # metadata.price_id (see README), and line items win when present.
    lines = get_path(session, "line_items", "data")
    if isinstance(lines, list) and lines:
        price_id = stripe_id(get_path(lines[0], "price"))
        if price_id:
            return price_id
    price_id = get_path(session, "metadata", "price_id")
    if not isinstance(price_id, str) or not price_id:
        raise EventProblem(
            IssueKind.MALFORMED_PAYLOAD, "The checkout names no price (metadata.price_id)."
        )
    return price_id


def purchase_for_payment(
    *, account: CreditAccount, payment_intent_id: str, checkout_session_id: str = ""
) -> CreditTransaction | None:
    """The purchase entry on this account paid with this payment intent (or made by this
    checkout session), if any.

    Found by the entry's metadata, not its key: purchases written before purchases were keyed
    by their payment carry `stripe:<event id>`, and a later event for the same payment (an
    async_payment_succeeded after an old completed) must find them too. Every purchase entry,
    old or new, has both ids in its metadata (an empty string for a session with no intent).
    """
    if not payment_intent_id and not checkout_session_id:
        return None
    paid_with = Q()
    if payment_intent_id:
        paid_with |= Q(metadata__payment_intent=payment_intent_id)
    if checkout_session_id:
        paid_with |= Q(metadata__checkout_session=checkout_session_id)
    return account.entries.filter(paid_with, kind=EntryKind.PURCHASE).order_by("pk").first()


@handled("checkout.session")
def stripe_checkout_expired(event: HandledEvent) -> None:
    """An expired checkout: nothing was paid, nothing is granted; recorded for staff."""
    session = event.object
    event.about(
        customer_id=stripe_id(session.get("customer")),
        email=get_path(session, "customer_details", "email") or session.get("customer_email") or "",
    )
    record_issue(
        event.id,
        event.type,
        event,
        EventProblem(
            IssueKind.CHECKOUT_EXPIRED,
            f"Checkout {stripe_id(session.get('id'))} expired unpaid; nothing was granted.",
            checkout_session=stripe_id(session.get("id")),
            price_id=str(get_path(session, "metadata", "price_id") or ""),
        ),
    )


@handled("checkout.session")
def stripe_checkout_paid(event: HandledEvent) -> CreditTransaction | None:
    """Grant a paid one-off checkout's credit pack, once."""
    session = event.object
    if session.get("mode") != "payment" or session.get("payment_status") != "paid":
        # Subscriptions are granted on invoice.paid; an unpaid (async) payment is granted on
        # checkout.session.async_payment_succeeded.
        return None
    event.about(
        customer_id=stripe_id(session.get("customer")),
        email=get_path(session, "customer_details", "email") or session.get("customer_email") or "",
    )
    session_id = required_str(session, "id")
    price_id = _checkout_price_id(session)
    amount_paid = required_int(session, "amount_total")
    currency = required_str(session, "currency").lower()
    payment_intent_id = stripe_id(session.get("payment_intent"))
    pack = CreditPack.objects.filter(stripe_price_id=price_id).first()
    if pack is None:
        raise EventProblem(
            IssueKind.UNKNOWN_PRICE,
            f"No credit pack has Stripe price {price_id}.",
            price_id=price_id,
            amount_cents=amount_paid,
            currency=currency,
            payment_intent=payment_intent_id,
        )
    profile = profile_for(event)
    if (amount_paid, currency) != (pack.amount_cents, pack.currency.lower()):
        raise EventProblem(
            IssueKind.AMOUNT_MISMATCH,
            f"Paid {amount_paid} {currency}; the pack {pack.name} costs "
            f"{pack.amount_cents} {pack.currency}.",
            price_id=price_id,
            amount_cents=amount_paid,
            currency=currency,
            payment_intent=payment_intent_id,
        )
    if profile.plan not in settings.CREDITS_PURCHASE_PLANS:
        raise EventProblem(
            IssueKind.PURCHASE_NOT_ALLOWED,
            f"The {profile.plan} plan may not buy credit packs (CREDITS_PURCHASE_PLANS); "
            f"{amount_paid} {currency} was paid for {pack.credits} credits: refund or grant.",
            price_id=price_id,
            amount_cents=amount_paid,
            currency=currency,
            payment_intent=payment_intent_id,
            plan=profile.plan,
        )
    account = credit_account_open(user=profile.user)
    # The same payment reported by another event (completed, then async succeeded), whatever
    # key its entry was written with.
    earlier = purchase_for_payment(
        account=account, payment_intent_id=payment_intent_id, checkout_session_id=session_id
    )
    if earlier is not None:
        return earlier
    # Keyed by the payment, not the event: the ledger's unique idempotency key lets one of two
    # events for one payment write, whatever their timing (the other replays its entry).
    return credit_grant(
        account=account,
        amount=pack.credits,
        kind=EntryKind.PURCHASE,
        idempotency_key=stripe_payment_key(payment_ref=payment_intent_id or session_id),
        stripe_event_id=event.id,
        source=STRIPE_SOURCE,
        description=f"Credit pack {pack.name}"[:255],
        metadata={
            "payment_intent": payment_intent_id,
            "checkout_session": session_id,
            "stripe_price_id": price_id,
            "credit_pack_id": pack.pk,
            "amount_cents": amount_paid,
            "currency": currency,
        },
    )
