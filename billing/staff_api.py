"""Staff endpoints that change a customer's credits: adjust and refund.

Thin: parse, call the staff services, render. The roles and limits are the services' (the
admin's actions call the same ones): a permission or limit refusal is a 403 in the error shape,
and above the approval threshold the answer is 202 with a pending approval request instead of
an entry. Every write carries an idempotency key (the body's `idempotency_key` or the
`Idempotency-Key` header), scoped to the staff member, so a retried request writes once.
"""

from django.contrib.auth import get_user_model
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.response import Response

from billing.api_examples import (
    ADJUST_ERRORS,
    ADJUST_EXAMPLES,
    REFUND_ERRORS,
    REFUND_EXAMPLES,
)
from billing.stripe.refunds import billing_staff_refund
from core.api.schema import error_responses
from core.api.views import StaffApiView
from core.keys import STAFF_CLIENT_KEY_MAX_LENGTH, staff_idempotency_key
from credits.api.fields import IdempotencyKeyField, StrictBooleanField, StrictDecimalField
from credits.api.serializers import MAX_ID, EntryOutputSerializer
from credits.api.views import client_key_errors
from credits.exceptions import AccountNotFound
from credits.models import CreditApprovalRequest, CreditTransaction
from credits.selectors import credit_account_for_user
from credits.services import credit_staff_adjust

KEY_HEADER = "Idempotency-Key"


class StaffWriteInputSerializer(serializers.Serializer):
    user_id = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    amount = StrictDecimalField(signed=True)
    reason = serializers.CharField(max_length=1000)
    idempotency_key = IdempotencyKeyField(
        max_length=STAFF_CLIENT_KEY_MAX_LENGTH,
        required=False,
        help_text=f"Or the {KEY_HEADER} header; one of them is required.",
    )

    def validate(self, data):
        header = self.context["request"].headers.get(KEY_HEADER, "").strip()
        key = data.get("idempotency_key", "").strip() or header
        if not key:
            raise serializers.ValidationError(
                {"idempotency_key": [f"Send an idempotency_key or the {KEY_HEADER} header."]}
            )
        # The header too is held to the body field's rules.
        limit = self.fields["idempotency_key"].max_length
        if len(key) > limit or not key.isprintable():
            raise serializers.ValidationError(
                {"idempotency_key": [f"Use at most {limit} printable characters."]}
            )
        data["idempotency_key"] = key
        return data


class AdjustInputSerializer(StaffWriteInputSerializer):
    def validate_amount(self, amount):
        if amount == 0:
            raise serializers.ValidationError("An adjustment must not be zero.")
        return amount


class RefundInputSerializer(StaffWriteInputSerializer):
    amount = StrictDecimalField()
    stripe_refund = StrictBooleanField(default=False)
    payment_intent_id = serializers.CharField(
        max_length=255,
        required=False,
        allow_blank=True,
        default="",
        help_text='Required when "stripe_refund" is true: the payment to refund (pi_...).',
    )

    def validate(self, data):
        data = super().validate(data)
        if data["stripe_refund"] and not data["payment_intent_id"].strip():
            raise serializers.ValidationError(
                {"payment_intent_id": ["A Stripe refund needs the payment intent."]}
            )
        return data


class ApprovalRequestOutputSerializer(serializers.ModelSerializer):
    amount = serializers.DecimalField(max_digits=14, decimal_places=2, coerce_to_string=True)

    class Meta:
        model = CreditApprovalRequest
        fields = ["id", "kind", "amount", "reason", "status", "requested_at"]


class StaffWriteOutputSerializer(serializers.Serializer):
    transaction = EntryOutputSerializer(required=False)
    approval_request = ApprovalRequestOutputSerializer(required=False)
    balance = serializers.DecimalField(max_digits=14, decimal_places=2, coerce_to_string=True)


def _account_of(user_id: int):
    user = get_user_model().objects.filter(pk=user_id).first()
    account = credit_account_for_user(user=user) if user is not None else None
    if account is None:
        raise AccountNotFound(user_id=user_id)
    return account


def _render(result, account) -> Response:
    account.refresh_from_db(fields=["balance"])
    if isinstance(result, CreditTransaction):
        body = {"transaction": result, "balance": account.balance}
        code = status.HTTP_200_OK if result.replayed else status.HTTP_201_CREATED
    else:
        body = {"approval_request": result, "balance": account.balance}
        code = status.HTTP_202_ACCEPTED
    return Response(StaffWriteOutputSerializer(body).data, status=code)


KEY_PARAMETER = OpenApiParameter(
    KEY_HEADER, str, OpenApiParameter.HEADER, required=False, description="The write's key."
)


def _write_responses(*errors: int, examples=()) -> dict:
    return {
        201: StaffWriteOutputSerializer,
        200: StaffWriteOutputSerializer,
        202: StaffWriteOutputSerializer,
        **error_responses(*errors, examples=examples),
    }


class StaffWriteApi(StaffApiView):
    """Parse the body, find the user's account, call the service, answer 201/200/202."""

    input_serializer: type[StaffWriteInputSerializer]
    action: str

    def write(self, *, data, account, idempotency_key, actor):
        raise NotImplementedError

    def post(self, request):
        serializer = self.input_serializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        account = _account_of(data["user_id"])
        with client_key_errors(data["idempotency_key"]):
            result = self.write(
                data=data,
                account=account,
                idempotency_key=staff_idempotency_key(
                    actor_id=request.user.pk,
                    action=self.action,
                    client_key=data["idempotency_key"],
                ),
                actor=request.user,
            )
        return _render(result, account)


@extend_schema_view(
    post=extend_schema(
        request=AdjustInputSerializer,
        parameters=[KEY_PARAMETER],
        responses=_write_responses(400, 401, 402, 403, 404, 409, 429, examples=ADJUST_ERRORS),
        examples=ADJUST_EXAMPLES,
    )
)
class StaffAdjustApi(StaffWriteApi):
    input_serializer = AdjustInputSerializer
    action = "adjust"

    def write(self, *, data, account, idempotency_key, actor):
        return credit_staff_adjust(
            account=account,
            amount=data["amount"],
            idempotency_key=idempotency_key,
            actor=actor,
            reason=data["reason"],
        )


@extend_schema_view(
    post=extend_schema(
        request=RefundInputSerializer,
        parameters=[KEY_PARAMETER],
        responses=_write_responses(400, 401, 402, 403, 404, 409, 429, 502, examples=REFUND_ERRORS),
        examples=REFUND_EXAMPLES,
    )
)
class StaffRefundApi(StaffWriteApi):
    input_serializer = RefundInputSerializer
    action = "refund"

    def write(self, *, data, account, idempotency_key, actor):
        return billing_staff_refund(
            account=account,
            amount=data["amount"],
            idempotency_key=idempotency_key,
            actor=actor,
            reason=data["reason"],
            stripe_refund=data["stripe_refund"],
            payment_intent_id=data["payment_intent_id"].strip(),
        )
