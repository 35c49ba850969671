"""invoice.paid and customer.subscription.*: the plan on the profile, and its monthly credits."""

from django.conf import settings
from django.utils import timezone

from billing.models import IssueKind, PlanPrice, UserProfile
from billing.services import (
    ACTIVE_SUBSCRIPTION_STATUSES,
    grant_period,
    period_end,
)
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
    timestamp,
)
from core.keys import monthly_grant_key
from credits.exceptions import IdempotencyConflict
from credits.models import CreditTransaction, EntryKind
from credits.services import credit_account_open, credit_grant

# Subscription statuses after which the user is back on the default plan.
ENDED_SUBSCRIPTION_STATUSES = ("canceled", "incomplete_expired")

# --- invoice.paid: subscriptions and their monthly credits --------------------------------

# The profile's columns a subscription's events set.
SUBSCRIPTION_FIELDS = [
    "plan",
    "stripe_price_id",
    "subscription_status",
    "subscription_started_at",
    "subscription_ends_at",
    "stripe_state_at",
    "updated_at",
]


def _stale(event: HandledEvent, profile: UserProfile, *, ends: bool) -> bool:
    """Whether the profile holds a newer Stripe state than this event's (Stripe keeps no order).

    At the same second, an ended subscription wins over an event that would not end it.
    """
    held = profile.stripe_state_at
    if event.created is None or held is None:
        return False
    if event.created < held:
        return True
    return (
        event.created == held
        and profile.subscription_status in ENDED_SUBSCRIPTION_STATUSES
        and not ends
    )


def _stale_problem(event: HandledEvent, profile: UserProfile, **data) -> EventProblem:
    return EventProblem(
        IssueKind.STALE_EVENT,
        f"The event (made {event.created.isoformat()}) is older than the subscription state "
        f"held ({profile.subscription_status or 'none'}, made "
        f"{profile.stripe_state_at.isoformat()}); the profile was not changed.",
        event_created=event.created.isoformat(),
        state_at=profile.stripe_state_at.isoformat(),
        **data,
    )


def _price_id_of_line(line: dict) -> str:
    # Older API versions put the price on the line; 2025 versions under pricing.price_details.
    return (
        stripe_id(line.get("price"))
        or stripe_id(get_path(line, "pricing", "price_details", "price"))
        or stripe_id(line.get("plan"))
    )


def _subscription_line(invoice: dict) -> dict:
    lines = get_path(invoice, "lines", "data")
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


def _plan_price(price_id: str | None, **details) -> PlanPrice:
    """The plan price of this Stripe price, or UNKNOWN_PRICE when no configured plan has it."""
    plan_price = PlanPrice.objects.filter(stripe_price_id=price_id).first() if price_id else None
    if plan_price is None or plan_price.plan not in settings.CREDITS_PLANS:
        raise EventProblem(
            IssueKind.UNKNOWN_PRICE,
            f"No plan (PlanPrice in CREDITS_PLANS) has Stripe price {price_id or '(none)'}.",
            price_id=price_id,
            **details,
        )
    return plan_price


@handled("invoice")
def stripe_invoice_paid(event: HandledEvent) -> CreditTransaction | None:
    """Record a paid subscription invoice's plan, and grant the plan's credits for its month."""
    invoice = event.object
    subscription_id = stripe_id(invoice.get("subscription")) or stripe_id(
        get_path(invoice, "parent", "subscription_details", "subscription")
    )
    if not subscription_id:
        return None  # a one-off invoice: not a plan
    event.about(customer_id=stripe_id(invoice.get("customer")), email=invoice.get("customer_email"))
    line = _subscription_line(invoice)
    price_id = _price_id_of_line(line)
    if not price_id:
        raise EventProblem(IssueKind.MALFORMED_PAYLOAD, "The invoice line names no price.")
    period_start = timestamp(required_int(line, "period", "start"))
    period_end = timestamp(required_int(line, "period", "end"))
    plan_price = _plan_price(price_id, subscription=subscription_id)
    profile = profile_for(event)
    if _stale(event, profile, ends=False):
        # Paid for its own period only: nothing once the subscription held has ended.
        ended_at = profile.subscription_ends_at
        if profile.subscription_status in ENDED_SUBSCRIPTION_STATUSES and (
            ended_at is None or period_start >= ended_at
        ):
            raise _stale_problem(event, profile, period_start=period_start.isoformat())
        record_issue(event.id, event.type, event, _stale_problem(event, profile))
        return _grant_invoice_period(event, profile, plan_price, price_id, period_start)
    profile.stripe_state_at = event.created or profile.stripe_state_at
    profile.plan = plan_price.plan
    profile.stripe_price_id = price_id
    if profile.subscription_status not in ACTIVE_SUBSCRIPTION_STATUSES:
        profile.subscription_status = "active"
    profile.subscription_started_at = profile.subscription_started_at or period_start
    profile.subscription_ends_at = period_end
    # Only what the event changes (profile_for has linked the customer id already): a full
    # save would write back columns that others (the migration marking the user migrated)
    # may have changed since the profile was read.
    profile.save(update_fields=SUBSCRIPTION_FIELDS)
    return _grant_invoice_period(event, profile, plan_price, price_id, period_start)


def _grant_invoice_period(event, profile, plan_price, price_id, period_start):
    invoice = event.object
    subscription_id = stripe_id(invoice.get("subscription")) or stripe_id(
        get_path(invoice, "parent", "subscription_details", "subscription")
    )
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
            # The month the key names ends then, as the beat task's grant of it would.
            expires_at=period_end(period),
            stripe_event_id=event.id,
            source=STRIPE_SOURCE,
            description=f"{plan_price.plan} plan credits for {period}",
            metadata={
                "plan": plan_price.plan,
                "period": period,
                "invoice": stripe_id(invoice.get("id")),
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


@handled("subscription")
def stripe_subscription_changed(event: HandledEvent) -> UserProfile | None:
    """Copy a subscription's plan, status and dates onto the user's profile."""
    subscription = event.object
    event.about(customer_id=stripe_id(subscription.get("customer")))
    status = required_str(subscription, "status")
    items = get_path(subscription, "items", "data")
    first_item = items[0] if isinstance(items, list) and items else {}
    if not isinstance(first_item, dict):
        raise EventProblem(IssueKind.MALFORMED_PAYLOAD, "The subscription items are not objects.")
    price_id = _price_id_of_line(first_item)
    started = timestamp(subscription.get("start_date"))
    # Before 2025 API versions the period is on the subscription, since then on its items.
    period_end = timestamp(
        subscription.get("current_period_end") or first_item.get("current_period_end")
    )
    ended = timestamp(subscription.get("ended_at"))
    has_ended = event.type.endswith(".deleted") or status in ENDED_SUBSCRIPTION_STATUSES
    plan_price = None
    if not has_ended:
        plan_price = _plan_price(
            price_id, subscription=stripe_id(subscription.get("id")), status=status
        )
    profile = profile_for(event)
    if _stale(event, profile, ends=has_ended):
        raise _stale_problem(event, profile, status=status)
    profile.stripe_state_at = event.created or profile.stripe_state_at
    profile.subscription_status = status
    profile.subscription_started_at = started or profile.subscription_started_at
    if has_ended:
        profile.plan = UserProfile._meta.get_field("plan").get_default()
        profile.subscription_ends_at = ended or period_end or timezone.now()
    else:
        profile.plan = plan_price.plan
        profile.stripe_price_id = price_id
        profile.subscription_ends_at = period_end
    profile.save(update_fields=SUBSCRIPTION_FIELDS)
    return profile
