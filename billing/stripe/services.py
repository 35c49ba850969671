"""Stripe events onto the one ledger, each exactly once.

Each service takes what a webhook receiver read from the event payload (`event.data["object"]`)
and makes no Stripe API call. Credits move only through `credits.services`, keyed on the Stripe
event id (`stripe:<event id>`, and the entry's unique `stripe_event_id`), except monthly plan
credits, which are keyed on (account, period) like the Celery beat grant, so one month is granted
once whichever comes first.

The services run inside dj-stripe's transaction. A problem that retrying cannot fix (an unknown
price or customer, a malformed payload, an amount that is not the pack's price, a purchase the
user's plan may not make, a refund larger than the credits left) is recorded as a
`StripeEventIssue` for staff and the service returns normally, so the webhook answers 200 and the
record commits; raising would roll the record back with everything else. Anything else (a
database that is down, a lock timeout) propagates: dj-stripe rolls back, answers 500, and
Stripe delivers the event again later.
"""

import logging
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from billing.models import CreditPack, IssueKind, PlanPrice, StripeEventIssue, UserProfile
from billing.services import (
    ACTIVE_SUBSCRIPTION_STATUSES,
    grant_period,
    monthly_grant_key,
    user_provision,
)
from credits.exceptions import CreditError, IdempotencyConflict, InsufficientCredits
from credits.models import CENT, CreditAccount, CreditTransaction, EntryKind
from credits.services import credit_account_open, credit_grant, credit_refund

logger = logging.getLogger(__name__)

STRIPE_SOURCE = "stripe"
# Subscription statuses after which the user is back on the default plan.
ENDED_SUBSCRIPTION_STATUSES = ("canceled", "incomplete_expired")


class EventProblem(Exception):
    """A problem with an event that retrying cannot fix; recorded, never raised to dj-stripe."""

    def __init__(self, kind: str, detail: str, **data: Any):
        self.kind = kind
        self.detail = detail
        self.data = data
        super().__init__(detail)


class _Event:
    """The event being handled, and who it turned out to be about (for the issue record)."""

    def __init__(self, *, event_id: str, event_type: str, payload: Any, expected: str):
        self.id = event_id
        self.type = event_type
        self.customer_id = ""
        self.email = ""
        self.user = None
        if not isinstance(payload, dict) or payload.get("object") != expected:
            raise EventProblem(
                IssueKind.MALFORMED_PAYLOAD, f"data.object is not a {expected} object."
            )
        self.object = payload

    def about(self, *, customer_id: str, email: Any = "") -> None:
        """Who the event names, known before anything else is checked (kept on any issue)."""
        self.customer_id = customer_id
        self.email = email if isinstance(email, str) else ""


def stripe_event_key(event_id: str) -> str:
    return f"stripe:{event_id}"


def _handled(expected: str):
    """Run a service; record an EventProblem (or a ledger refusal) for staff instead of raising."""

    def decorate(service):
        def run(*, event_id: str, event_type: str, payload: Any):
            event = None
            try:
                event = _Event(
                    event_id=event_id, event_type=event_type, payload=payload, expected=expected
                )
                return service(event)
            except EventProblem as problem:
                _record_issue(event_id, event_type, event, problem)
            except CreditError as error:
                # The ledger's refusals (a conflicting key, a duplicate reference) do not
                # change on a retry either.
                problem = EventProblem(
                    IssueKind.LEDGER_REFUSED, error.message, code=str(error.code), **error.details
                )
                _record_issue(event_id, event_type, event, problem)
            return None

        run.__name__ = service.__name__
        run.__doc__ = service.__doc__
        return run

    return decorate


def _record_issue(event_id: str, event_type: str, event: _Event | None, problem: EventProblem):
    issue, created = StripeEventIssue.objects.get_or_create(
        stripe_event_id=event_id,
        kind=problem.kind,
        defaults=dict(
            event_type=event_type,
            detail=problem.detail,
            stripe_customer_id=(event.customer_id if event else "")[:255],
            customer_email=(event.email if event else "")[:254],
            user=event.user if event else None,
            data=problem.data,
        ),
    )
    if created:
        logger.warning(
            "Stripe event %s (%s) recorded as %s: %s",
            event_id,
            event_type,
            problem.kind,
            problem.detail,
        )
    return issue


# --- Reading the payload ----------------------------------------------------------------------


def _get(obj: Any, *path: str) -> Any:
    for name in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(name)
    return obj


def _id(value: Any) -> str:
    """An id that Stripe sends as a string, or as the expanded object."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) else ""


def _required_int(obj: dict, *path: str) -> int:
    value = _get(obj, *path)
    if isinstance(value, bool) or not isinstance(value, int):
        raise EventProblem(
            IssueKind.MALFORMED_PAYLOAD, f"{'.'.join(path)} is not an integer: {value!r}."
        )
    return value


def _required_str(obj: dict, *path: str) -> str:
    value = _get(obj, *path)
    if not isinstance(value, str) or not value:
        raise EventProblem(IssueKind.MALFORMED_PAYLOAD, f"{'.'.join(path)} is missing.")
    return value


def _timestamp(value: Any):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise EventProblem(IssueKind.MALFORMED_PAYLOAD, f"{value!r} is not a Unix timestamp.")
    return datetime.fromtimestamp(value, tz=UTC)


# --- Who the event is about -----------------------------------------------------------------


def _profile_for(event: _Event) -> UserProfile:
    """The user's profile: by Stripe customer id, then by email (linking the customer id)."""
    customer_id, email = event.customer_id, event.email
    profile = None
    if customer_id:
        profile = (
            UserProfile.objects.select_related("user")
            .filter(stripe_customer_id=customer_id)
            .first()
        )
    if profile is None and email:
        users = list(get_user_model().objects.filter(email__iexact=email).order_by("pk")[:2])
        if len(users) == 1:
            profile = user_provision(user=users[0], signup_grant=False)
            if customer_id and profile.stripe_customer_id is None:
                profile.stripe_customer_id = customer_id
                profile.save(update_fields=["stripe_customer_id", "updated_at"])
    if profile is None:
        raise EventProblem(
            IssueKind.UNKNOWN_CUSTOMER,
            f"No user has Stripe customer {customer_id or '(none)'} "
            f"or is the one user with email {email or '(none)'}.",
        )
    event.user = profile.user
    return profile


# --- checkout.session.completed: credit packs ---------------------------------------------


def _checkout_price_id(session: dict) -> str:
    # Checkout webhooks carry no line items unless expanded; the checkout is created with
    # metadata.price_id (see README), and line items win when present.
    lines = _get(session, "line_items", "data")
    if isinstance(lines, list) and lines:
        price_id = _id(_get(lines[0], "price"))
        if price_id:
            return price_id
    price_id = _get(session, "metadata", "price_id")
    if not isinstance(price_id, str) or not price_id:
        raise EventProblem(
            IssueKind.MALFORMED_PAYLOAD, "The checkout names no price (metadata.price_id)."
        )
    return price_id


def purchase_for_payment(
    *, account: CreditAccount, payment_intent_id: str
) -> CreditTransaction | None:
    """The purchase entry on this account paid with this payment intent, if any."""
    return (
        account.entries.filter(kind=EntryKind.PURCHASE, metadata__payment_intent=payment_intent_id)
        .order_by("pk")
        .first()
    )


@_handled("checkout.session")
def stripe_checkout_paid(event: _Event) -> CreditTransaction | None:
    """Grant a paid one-off checkout's credit pack, once."""
    session = event.object
    if session.get("mode") != "payment" or session.get("payment_status") != "paid":
        # Subscriptions are granted on invoice.paid; an unpaid (async) payment is granted on
        # checkout.session.async_payment_succeeded.
        return None
    event.about(
        customer_id=_id(session.get("customer")),
        email=_get(session, "customer_details", "email") or session.get("customer_email") or "",
    )
    session_id = _required_str(session, "id")
    price_id = _checkout_price_id(session)
    amount_paid = _required_int(session, "amount_total")
    currency = _required_str(session, "currency").lower()
    payment_intent_id = _id(session.get("payment_intent"))
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
    profile = _profile_for(event)
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
    if payment_intent_id:
        # The same payment reported by another event (completed, then async succeeded).
        earlier = purchase_for_payment(account=account, payment_intent_id=payment_intent_id)
        if earlier is not None:
            return earlier
    return credit_grant(
        account=account,
        amount=pack.credits,
        kind=EntryKind.PURCHASE,
        idempotency_key=stripe_event_key(event.id),
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


# --- invoice.paid: subscriptions and their monthly credits --------------------------------


def _price_id_of_line(line: dict) -> str:
    # Older API versions put the price on the line; 2025 versions under pricing.price_details.
    return (
        _id(line.get("price"))
        or _id(_get(line, "pricing", "price_details", "price"))
        or _id(line.get("plan"))
    )


def _subscription_line(invoice: dict) -> dict:
    lines = _get(invoice, "lines", "data")
    if not isinstance(lines, list) or not lines:
        raise EventProblem(IssueKind.MALFORMED_PAYLOAD, "The invoice has no lines.")
    price_ids = [_price_id_of_line(line) for line in lines if isinstance(line, dict)]
    known = set(
        PlanPrice.objects.filter(stripe_price_id__in=price_ids).values_list(
            "stripe_price_id", flat=True
        )
    )
    for line in lines:
        if isinstance(line, dict) and _price_id_of_line(line) in known:
            return line
    first = lines[0]
    if not isinstance(first, dict):
        raise EventProblem(IssueKind.MALFORMED_PAYLOAD, "The invoice lines are not objects.")
    return first


@_handled("invoice")
def stripe_invoice_paid(event: _Event) -> CreditTransaction | None:
    """Record a paid subscription invoice's plan, and grant the plan's credits for its month."""
    invoice = event.object
    subscription_id = _id(invoice.get("subscription")) or _id(
        _get(invoice, "parent", "subscription_details", "subscription")
    )
    if not subscription_id:
        return None  # a one-off invoice: not a plan
    event.about(customer_id=_id(invoice.get("customer")), email=invoice.get("customer_email"))
    line = _subscription_line(invoice)
    price_id = _price_id_of_line(line)
    if not price_id:
        raise EventProblem(IssueKind.MALFORMED_PAYLOAD, "The invoice line names no price.")
    period_start = _timestamp(_required_int(line, "period", "start"))
    period_end = _timestamp(_required_int(line, "period", "end"))
    plan_price = PlanPrice.objects.filter(stripe_price_id=price_id).first()
    if plan_price is None or plan_price.plan not in settings.CREDITS_PLANS:
        raise EventProblem(
            IssueKind.UNKNOWN_PRICE,
            f"No plan (PlanPrice in CREDITS_PLANS) has Stripe price {price_id}.",
            price_id=price_id,
            subscription=subscription_id,
        )
    profile = _profile_for(event)
    profile.plan = plan_price.plan
    profile.stripe_price_id = price_id
    if profile.subscription_status not in ACTIVE_SUBSCRIPTION_STATUSES:
        profile.subscription_status = "active"
    profile.subscription_started_at = profile.subscription_started_at or period_start
    profile.subscription_ends_at = period_end
    if profile.stripe_customer_id is None and event.customer_id:
        profile.stripe_customer_id = event.customer_id
    profile.save()
    credits = settings.CREDITS_PLANS[plan_price.plan]
    if credits <= 0:
        return None
    account = credit_account_open(user=profile.user)
    period = grant_period(period_start)
    try:
        return credit_grant(
            account=account,
            amount=credits,
            kind=EntryKind.MONTHLY_GRANT,
            idempotency_key=monthly_grant_key(account_id=account.pk, period=period),
            stripe_event_id=event.id,
            source=STRIPE_SOURCE,
            description=f"{plan_price.plan} plan credits for {period}",
            metadata={
                "plan": plan_price.plan,
                "period": period,
                "invoice": _id(invoice.get("id")),
                "subscription": subscription_id,
                "stripe_price_id": price_id,
            },
        )
    except IdempotencyConflict:
        # The month was granted already, for another plan's amount (a change of plan within
        # the month): the profile has the new plan, and staff decide about the difference.
        raise EventProblem(
            IssueKind.PERIOD_ALREADY_GRANTED,
            f"{period} was already granted with another amount; the {plan_price.plan} plan "
            f"gives {credits}.",
            period=period,
            plan=plan_price.plan,
            credits=str(credits),
        ) from None


# --- customer.subscription.updated / deleted ----------------------------------------------


@_handled("subscription")
def stripe_subscription_changed(event: _Event) -> UserProfile | None:
    """Copy a subscription's plan, status and dates onto the user's profile."""
    subscription = event.object
    event.about(customer_id=_id(subscription.get("customer")))
    status = _required_str(subscription, "status")
    items = _get(subscription, "items", "data")
    first_item = items[0] if isinstance(items, list) and items else {}
    if not isinstance(first_item, dict):
        raise EventProblem(IssueKind.MALFORMED_PAYLOAD, "The subscription items are not objects.")
    price_id = _price_id_of_line(first_item)
    started = _timestamp(subscription.get("start_date"))
    # Before 2025 API versions the period is on the subscription, since then on its items.
    period_end = _timestamp(
        subscription.get("current_period_end") or first_item.get("current_period_end")
    )
    ended = _timestamp(subscription.get("ended_at"))
    has_ended = event.type.endswith(".deleted") or status in ENDED_SUBSCRIPTION_STATUSES
    plan_price = None
    if not has_ended:
        plan_price = PlanPrice.objects.filter(stripe_price_id=price_id).first()
        if plan_price is None or plan_price.plan not in settings.CREDITS_PLANS:
            raise EventProblem(
                IssueKind.UNKNOWN_PRICE,
                f"No plan (PlanPrice in CREDITS_PLANS) has Stripe price {price_id or '(none)'}.",
                price_id=price_id,
                subscription=_id(subscription.get("id")),
                status=status,
            )
    profile = _profile_for(event)
    profile.subscription_status = status
    profile.subscription_started_at = started or profile.subscription_started_at
    if has_ended:
        profile.plan = UserProfile._meta.get_field("plan").get_default()
        profile.subscription_ends_at = ended or period_end or timezone.now()
    else:
        profile.plan = plan_price.plan
        profile.stripe_price_id = price_id
        profile.subscription_ends_at = period_end
    profile.save()
    return profile


# --- charge.refunded: a pack's credits go back --------------------------------------------


def refunded_for_payment(*, account: CreditAccount, payment_intent_id: str) -> Decimal:
    """Credits already taken back for refunds of this payment, as requested (shortfalls count)."""
    total = Decimal("0")
    refunds = account.entries.filter(
        kind=EntryKind.REFUND, metadata__payment_intent=payment_intent_id
    ).order_by()
    for amount, metadata in refunds.values_list("amount", "metadata"):
        requested = metadata.get("requested_amount") if isinstance(metadata, dict) else None
        total += -Decimal(requested) if requested is not None else -Decimal(str(amount))
    return total.quantize(CENT)


def lock_account(account: CreditAccount) -> CreditAccount:
    """Lock the account row, so refunds of one payment are counted one at a time."""
    return CreditAccount.objects.select_for_update().get(pk=account.pk)


@_handled("charge")
def stripe_charge_refunded(event: _Event) -> CreditTransaction | None:
    """Take back the refunded share of a pack's credits, never below zero; record a shortfall."""
    charge = event.object
    event.about(
        customer_id=_id(charge.get("customer")),
        email=_get(charge, "billing_details", "email") or charge.get("receipt_email") or "",
    )
    amount = _required_int(charge, "amount")
    amount_refunded = _required_int(charge, "amount_refunded")
    payment_intent_id = _id(charge.get("payment_intent"))
    if amount <= 0 or not 0 <= amount_refunded <= amount or not payment_intent_id:
        raise EventProblem(
            IssueKind.MALFORMED_PAYLOAD,
            f"A refund of {amount_refunded} of {amount} on payment intent "
            f"{payment_intent_id or '(none)'} does not add up.",
        )
    profile = _profile_for(event)
    account = credit_account_open(user=profile.user)
    # Serialises with staff refunds of the same payment (billing.stripe.refunds), whose own
    # charge.refunded event then finds its credits already taken back.
    lock_account(account)
    purchase = purchase_for_payment(account=account, payment_intent_id=payment_intent_id)
    if purchase is None:
        raise EventProblem(
            IssueKind.REFUND_WITHOUT_PURCHASE,
            f"No credit purchase was paid with {payment_intent_id}; nothing was taken back.",
            payment_intent=payment_intent_id,
            amount_refunded_cents=amount_refunded,
        )
    target = (purchase.amount * amount_refunded / amount).quantize(CENT, rounding=ROUND_HALF_UP)
    to_take = target - refunded_for_payment(account=account, payment_intent_id=payment_intent_id)
    if to_take <= 0:
        return None
    details = {
        "payment_intent": payment_intent_id,
        "charge": _id(charge.get("id")),
        "purchase_entry_id": purchase.pk,
        "amount_refunded_cents": amount_refunded,
        "charge_amount_cents": amount,
    }
    try:
        entry = credit_refund(
            account=account,
            amount=to_take,
            idempotency_key=stripe_event_key(event.id),
            reason="Refunded in Stripe",
            allow_partial=True,
            source=STRIPE_SOURCE,
            description=f"Refund of {purchase.description}"[:255],
            stripe_event_id=event.id,
            metadata=details,
        )
    except InsufficientCredits:
        _record_issue(
            event.id,
            event.type,
            event,
            EventProblem(
                IssueKind.REFUND_SHORTFALL,
                f"The user has no credits left; {to_take} refunded credits were not taken back.",
                shortfall=str(to_take),
                **details,
            ),
        )
        return None
    shortfall = entry.metadata.get("shortfall")
    if shortfall:
        _record_issue(
            event.id,
            event.type,
            event,
            EventProblem(
                IssueKind.REFUND_SHORTFALL,
                f"The user had spent some: {-entry.amount} of {to_take} credits were taken "
                f"back, {shortfall} were not.",
                shortfall=shortfall,
                entry_id=entry.pk,
                **details,
            ),
        )
    return entry


def stripe_issues_resolve(*, issue_ids: list[int], actor) -> int:
    """Mark webhook issues resolved by a staff member; return how many were open."""
    return StripeEventIssue.objects.filter(pk__in=issue_ids, is_resolved=False).update(
        is_resolved=True, resolved_by=actor, resolved_at=timezone.now()
    )
