"""The balance a frontend shows: the account's figures with the user's plan and migration state."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.api_examples import BALANCE_EXAMPLES
from billing.selectors import profile_for_user, user_is_migrated
from core.api.schema import error_responses
from credits.models import AMOUNT_DIGITS, AMOUNT_PLACES
from credits.selectors import credit_account_for_user


def _amount():
    return serializers.DecimalField(max_digits=AMOUNT_DIGITS, decimal_places=AMOUNT_PLACES)


class BalanceOutputSerializer(serializers.Serializer):
    balance = _amount()
    total_earned = _amount()
    total_spent = _amount()
    plan = serializers.CharField()
    migrated = serializers.BooleanField()
    updated_at = serializers.DateTimeField(allow_null=True)


class BalanceApi(APIView):
    @extend_schema(
        responses={200: BalanceOutputSerializer, **error_responses(401)},
        examples=BALANCE_EXAMPLES,
    )
    def get(self, request):
        account = credit_account_for_user(user=request.user)
        profile = profile_for_user(user=request.user)
        zero = "0.00"
        body = {
            "balance": account.balance if account else zero,
            "total_earned": account.total_earned if account else zero,
            "total_spent": account.total_spent if account else zero,
            "plan": profile.plan if profile else "free",
            "migrated": user_is_migrated(user=request.user),
            "updated_at": account.updated_at if account else None,
        }
        return Response(BalanceOutputSerializer(body).data)
