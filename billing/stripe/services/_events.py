"""The frame every webhook service runs in: the event, its problems recorded for staff,
reading the payload, and finding the user it is about."""

import logging
from datetime import UTC, datetime
from typing import Any

from django.contrib.auth import get_user_model

from billing.models import IssueKind, StripeEventIssue, UserProfile
from billing.services import user_provision
from credits.exceptions import CreditError

logger = logging.getLogger(__name__)

STRIPE_SOURCE = "stripe"


class EventProblem(Exception):
    """A problem with an event that retrying cannot fix; recorded, never raised to dj-stripe."""

    def __init__(self, kind: str, detail: str, **data: Any):
        self.kind = kind
        self.detail = detail
        self.data = data
        super().__init__(detail)


class HandledEvent:
    """The event being handled, and who it turned out to be about (for the issue record)."""

    def __init__(
        self, *, event_id: str, event_type: str, payload: Any, expected: str, created=None
    ):
        self.id = event_id
        self.type = event_type
        # When Stripe made the event (dj-stripe's Event.created); None when a caller has none.
        self.created = created
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


def handled(expected: str):
    """Run a service; record an EventProblem (or a ledger refusal) for staff instead of raising."""

    def decorate(service):
        def run(*, event_id: str, event_type: str, payload: Any, created=None):
            event = None
            try:
                event = HandledEvent(
                    event_id=event_id,
                    event_type=event_type,
                    payload=payload,
                    expected=expected,
                    created=created,
                )
                return service(event)
            except EventProblem as problem:
                record_issue(event_id, event_type, event, problem)
            except CreditError as error:
                # The ledger's refusals (a conflicting key, a duplicate reference) do not
                # change on a retry either.
                problem = EventProblem(
                    IssueKind.LEDGER_REFUSED, error.message, code=str(error.code), **error.details
                )
                record_issue(event_id, event_type, event, problem)
            return None

        run.__name__ = service.__name__
        run.__doc__ = service.__doc__
        return run

    return decorate


def record_issue(event_id: str, event_type: str, event: HandledEvent | None, problem: EventProblem):
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


def get_path(obj: Any, *path: str) -> Any:
    for name in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(name)
    return obj


def stripe_id(value: Any) -> str:
    """An id that Stripe sends as a string, or as the expanded object."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) else ""


def required_int(obj: dict, *path: str) -> int:
    value = get_path(obj, *path)
    if isinstance(value, bool) or not isinstance(value, int):
        raise EventProblem(
            IssueKind.MALFORMED_PAYLOAD, f"{'.'.join(path)} is not an integer: {value!r}."
        )
    return value


def required_str(obj: dict, *path: str) -> str:
    value = get_path(obj, *path)
    if not isinstance(value, str) or not value:
        raise EventProblem(IssueKind.MALFORMED_PAYLOAD, f"{'.'.join(path)} is missing.")
    return value


def timestamp(value: Any):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise EventProblem(IssueKind.MALFORMED_PAYLOAD, f"{value!r} is not a Unix timestamp.")
    return datetime.fromtimestamp(value, tz=UTC)


# --- Who the event is about -----------------------------------------------------------------


def profile_for(event: HandledEvent) -> UserProfile:
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
