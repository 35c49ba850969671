"""The user's own lots and holds. Thin: parse, call a service, render.

A hold reserves credits before an operation knows its cost; the client then captures (spends at
most the hold, the rest freed) or releases it, and a hold left alone expires. Every write
answers with the account's figures after it (balance, held, available = balance - held), so a
client never needs a second request to know what it may still spend. The client's keys are
scoped to its user (core.keys.api_hold_key, api_capture_key), like a spend's, so users neither
collide nor probe each other; a hold of another user, like an id that names none, is a 404
`hold_not_found`.

Lists are newest first (by id) with the transactions' cursors: a draw-down order would move
under a cursor as lots are spent, so a client that wants it sorts a page by the rule the docs
state (category, soonest expiry, priority, oldest).
"""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from core.api.schema import error_responses
from core.keys import api_capture_key, api_hold_key
from credits import selectors, services
from credits.api.examples import (
    CAPTURE_ERRORS,
    CAPTURE_EXAMPLES,
    HOLD_CREATE_ERRORS,
    HOLD_CREATE_EXAMPLES,
    HOLDS_EXAMPLES,
    LOTS_EXAMPLES,
    RELEASE_ERRORS,
    RELEASE_EXAMPLES,
)
from credits.api.serializers import (
    MAX_ID,
    CaptureInputSerializer,
    CaptureOutputSerializer,
    HoldInputSerializer,
    HoldOutputSerializer,
    HoldWriteOutputSerializer,
    LotOutputSerializer,
)
from credits.api.views import (
    PAGE_PARAMETERS,
    NewestFirstPagination,
    client_key_errors,
    own_account,
    refusal_recorded,
)
from credits.exceptions import HoldNotFound
from credits.models import CreditAccount, CreditHold, CreditLot, HoldStatus

# The source recorded with a hold refused for want of credits (check_credits counts them).
HOLD_REFUSAL_SOURCE = "api-hold"
DRAW_DOWN_RULE = (
    "Credits are drawn from lots by one rule: category (by default promotional and monthly, "
    "then migration, then paid: the setting CREDITS_DRAW_DOWN_RANKS), then the soonest expiry "
    "(lots that never expire last), then priority (lower first), then the oldest."
)


class LotPagination(NewestFirstPagination):
    example_path = "lots/"


class HoldPagination(NewestFirstPagination):
    example_path = "holds/"


class HoldThrottle(ScopedRateThrottle):
    """The "holds" rate, on writes only: reading the list is not limited (as transactions)."""

    def allow_request(self, request, view):
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return True
        return super().allow_request(request, view)


def _figures(account: CreditAccount) -> dict:
    """The account's balance, held and available, read after the write."""
    account.refresh_from_db(fields=["balance", "held"])
    return {
        "balance": account.balance,
        "held": account.held,
        "available": account.balance - account.held,
    }


def _own_hold(user, hold_id: int) -> tuple[CreditHold, CreditAccount]:
    """The user's hold with this id and their account, or HoldNotFound (an id beyond a bigint
    names none)."""
    account = selectors.credit_account_for_user(user=user)
    hold = None
    if account is not None and hold_id <= MAX_ID:
        hold = selectors.credit_hold_of_account(account=account, hold_id=hold_id)
    if hold is None:
        raise HoldNotFound(hold_id=hold_id)
    hold.account = account
    return hold, account


def _hold_body(hold: CreditHold, account: CreditAccount, **extra) -> dict:
    return {**extra, "hold": hold, **_figures(account)}


@extend_schema(
    summary="Your credit lots, newest first",
    description=(
        "Each lot is the credits one entry added (a purchase, a grant, a migration, a monthly "
        "grant) and what is left of them; the balance is the sum of the lots' remaining. "
        f"{DRAW_DOWN_RULE} The list is newest first (by id), so its cursors hold still while "
        "lots are drawn down."
    ),
    parameters=[
        OpenApiParameter(
            "open",
            bool,
            description="true: only lots with credit left; false or absent: every lot.",
            required=False,
        ),
        *PAGE_PARAMETERS,
    ],
    responses={200: LotOutputSerializer(many=True), **error_responses(400, 401, 404)},
    examples=LOTS_EXAMPLES,
)
class LotListApi(ListAPIView):
    serializer_class = LotOutputSerializer
    pagination_class = LotPagination

    def get_queryset(self):
        raw = self.request.query_params.get("open")
        if raw not in (None, "true", "false"):
            raise ValidationError({"open": ["Send true or false."]})
        account = selectors.credit_account_for_user(user=self.request.user)
        if account is None:
            return CreditLot.objects.none()
        return selectors.credit_lots(account=account, open_only=raw == "true")


class HoldListApi(ListAPIView):
    serializer_class = HoldOutputSerializer
    pagination_class = HoldPagination
    throttle_classes = [HoldThrottle]
    throttle_scope = "holds"

    def get_queryset(self):
        wanted = self.request.query_params.get("status")
        if wanted is not None and wanted not in HoldStatus.values:
            raise ValidationError({"status": [f"One of: {', '.join(HoldStatus.values)}."]})
        account = selectors.credit_account_for_user(user=self.request.user)
        if account is None:
            return CreditHold.objects.none()
        return selectors.credit_holds(account=account, status=wanted)

    @extend_schema(
        summary="Your holds, newest first",
        parameters=[
            OpenApiParameter(
                "status",
                str,
                enum=HoldStatus.values,
                description="Only holds in this status (e.g. active).",
                required=False,
            ),
            *PAGE_PARAMETERS,
        ],
        responses={200: HoldOutputSerializer(many=True), **error_responses(400, 401, 404)},
        examples=HOLDS_EXAMPLES,
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Reserve credits",
        description=(
            "Reserves `amount` of the available credits (balance - held) until `expires_at`: "
            "201 with the hold and the account's figures. The same `idempotency_key` again: 200 "
            "with that hold as it is now, nothing reserved; with another amount: 409 "
            "`idempotency_conflict`. Too little available: 402 `insufficient_credits` with "
            "balance, held, available and requested; nothing reserved."
        ),
        request=HoldInputSerializer,
        responses={
            201: HoldWriteOutputSerializer,
            200: HoldWriteOutputSerializer,
            **error_responses(400, 401, 402, 404, 409, 429, examples=HOLD_CREATE_ERRORS),
        },
        examples=HOLD_CREATE_EXAMPLES,
    )
    def post(self, request):
        serializer = HoldInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        account = own_account(request.user)
        # Refusals are counted by check_credits with the refused spends; the hold wrote nothing.
        with (
            refusal_recorded(account=account, amount=data["amount"], source=HOLD_REFUSAL_SOURCE),
            client_key_errors(data["idempotency_key"]),
        ):
            hold = services.credit_hold_create(
                account=account,
                amount=data["amount"],
                idempotency_key=api_hold_key(
                    user_id=request.user.pk, client_key=data["idempotency_key"]
                ),
                ttl_seconds=data.get("ttl_seconds"),
                description=data["description"],
            )
        body = HoldWriteOutputSerializer(_hold_body(hold, account)).data
        return Response(
            body, status=status.HTTP_200_OK if hold.replayed else status.HTTP_201_CREATED
        )


class HoldCaptureApi(APIView):
    throttle_classes = [HoldThrottle]
    throttle_scope = "holds"

    @extend_schema(
        summary="Spend a hold",
        description=(
            "Spends `amount` of an active hold (all of it when absent; more is 400 "
            "`invalid_amount`) and frees the rest: 201 with the spend entry, the hold and the "
            "account's figures. The same `idempotency_key` again: 200 with that entry, nothing "
            "written. A hold captured, released or expired: 409 `hold_not_active`; a hold that "
            "is not yours, or no hold: 404 `hold_not_found`."
        ),
        request=CaptureInputSerializer,
        responses={
            201: CaptureOutputSerializer,
            200: CaptureOutputSerializer,
            **error_responses(400, 401, 404, 409, 429, examples=CAPTURE_ERRORS),
        },
        examples=CAPTURE_EXAMPLES,
    )
    def post(self, request, hold_id: int):
        serializer = CaptureInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        hold, account = _own_hold(request.user, hold_id)
        with client_key_errors(data["idempotency_key"]):
            entry = services.credit_hold_capture(
                hold=hold,
                idempotency_key=api_capture_key(
                    user_id=request.user.pk, client_key=data["idempotency_key"]
                ),
                amount=data.get("amount"),
            )
        hold.refresh_from_db()
        body = CaptureOutputSerializer(_hold_body(hold, account, transaction=entry)).data
        return Response(
            body, status=status.HTTP_200_OK if entry.replayed else status.HTTP_201_CREATED
        )


class HoldReleaseApi(APIView):
    throttle_classes = [HoldThrottle]
    throttle_scope = "holds"

    @extend_schema(
        summary="Free a hold",
        description=(
            "Frees an active hold's credits (no body): 200 with the hold and the account's "
            "figures. A released hold: the same answer, nothing changed. A captured or expired "
            "hold: 409 `hold_not_active`; a hold that is not yours, or no hold: 404 "
            "`hold_not_found`."
        ),
        request=None,
        responses={
            200: HoldWriteOutputSerializer,
            **error_responses(401, 404, 409, 429, examples=RELEASE_ERRORS),
        },
        examples=RELEASE_EXAMPLES,
    )
    def post(self, request, hold_id: int):
        hold, account = _own_hold(request.user, hold_id)
        hold = services.credit_hold_release(hold=hold)
        hold.refresh_from_db()
        return Response(HoldWriteOutputSerializer(_hold_body(hold, account)).data)
