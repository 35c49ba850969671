"""The balance a frontend shows: the account's figures with the user's plan, migration state,
credits reserved by holds and the next expiry.

It is the most requested endpoint (a frontend polls it), so the view is built for speed. With
a token, authentication and the balance are one statement (BalanceTokenAuthentication reads
the token's user and billing.selectors' balance figures together); with a session, the
figures are one statement after the session's. The body is written straight from that row:
the output serializer documents the shape (OpenAPI) but is not run per request, since DRF's
field machinery would cost more than the rest of the view. Amounts are formatted as DRF's
DecimalField would (two places, a string), times as its DateTimeField would (ISO 8601 in
UTC, "Z").
"""

from datetime import UTC, datetime
from decimal import Decimal

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers
from rest_framework.authentication import TokenAuthentication
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.api_examples import BALANCE_EXAMPLES
from billing.selectors import balance_figures, token_user_and_balance_figures
from core.api.schema import error_responses
from credits.models import AMOUNT_DIGITS, AMOUNT_PLACES, CENT

ZERO = Decimal(0)
DEFAULT_PLAN = "free"


def _amount(**kwargs):
    return serializers.DecimalField(
        max_digits=AMOUNT_DIGITS, decimal_places=AMOUNT_PLACES, **kwargs
    )


class ExpiringSerializer(serializers.Serializer):
    amount = _amount(help_text="Credit left on the lots that expire at expires_at.")
    expires_at = serializers.DateTimeField(
        help_text="The soonest expiry of a lot with credit left (in the past when the expiry "
        "task has not yet run)."
    )


class BalanceOutputSerializer(serializers.Serializer):
    balance = _amount()
    available = _amount(help_text="balance - held: what a spend or a new hold may take.")
    held = _amount(help_text="Credits reserved by active holds.")
    expiring = ExpiringSerializer(
        allow_null=True, help_text="The next expiry; null when no credit left expires."
    )
    total_earned = _amount()
    total_spent = _amount()
    plan = serializers.CharField()
    migrated = serializers.BooleanField()
    updated_at = serializers.DateTimeField(allow_null=True)


def _money(value: Decimal | None) -> str:
    return str((value or ZERO).quantize(CENT))


def _instant(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


class BalanceTokenAuthentication(TokenAuthentication):
    """DRF's token authentication (same header, same refusals), reading the balance figures
    in the statement that finds the token; the view finds them on `request.auth`."""

    def authenticate_credentials(self, key):
        found = token_user_and_balance_figures(key=key)
        if found is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        user, figures = found
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        return user, BalanceAuth(key=key, figures=figures)


class BalanceAuth:
    """`request.auth` of a token request: the token's key (as DRF's Token has) and the
    balance figures read with it."""

    def __init__(self, *, key: str, figures: dict):
        self.key = key
        self.figures = figures


class BalanceApi(APIView):
    def initialize_request(self, request, *args, **kwargs):
        # The project's authenticators, with DRF's token authentication swapped for the one
        # that reads the balance on the way. Swapped here rather than in
        # authentication_classes so that the schema still names the one token scheme: to a
        # client the two are the same door.
        drf_request = super().initialize_request(request, *args, **kwargs)
        drf_request.authenticators = tuple(
            BalanceTokenAuthentication()
            if type(authenticator) is TokenAuthentication
            else authenticator
            for authenticator in drf_request.authenticators
        )
        return drf_request

    @extend_schema(
        responses={200: BalanceOutputSerializer, **error_responses(401)},
        examples=BALANCE_EXAMPLES,
    )
    def get(self, request):
        if isinstance(request.auth, BalanceAuth):
            row = request.auth.figures
        else:
            # A user deleted since authentication reads as one without an account.
            row = balance_figures(user_id=request.user.pk) or {}
        balance = row.get("balance") or ZERO
        held = row.get("held") or ZERO
        expiring_at = row.get("expiring_at")
        body = {
            "balance": _money(balance),
            "available": _money(balance - held),
            "held": _money(held),
            "expiring": (
                {"amount": _money(row["expiring_amount"]), "expires_at": _instant(expiring_at)}
                if expiring_at is not None
                else None
            ),
            "total_earned": _money(row.get("total_earned")),
            "total_spent": _money(row.get("total_spent")),
            "plan": row.get("plan") or DEFAULT_PLAN,
            "migrated": bool(row.get("migrated")),
            "updated_at": _instant(row.get("updated_at")),
        }
        return Response(body)
