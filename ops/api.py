"""Staff endpoints that read every app: a customer's summary and the monitoring checks.

GET /api/admin/billing/user/<user_id>/summary: one customer as staff see them (the read is
`ops.selectors.customer_summary`). GET /api/admin/billing/health: what needs attention, the
facts of `check_credits` (`ops.health`). Thin: parse, call a selector, render.
"""

from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from billing.api_examples import USER_SUMMARY_ERRORS, USER_SUMMARY_EXAMPLES
from billing.models import UserProfile
from core.api.schema import error_responses
from core.api.views import StaffApiView
from credits.api.serializers import MAX_ID, EntryOutputSerializer
from credits.models import AMOUNT_DIGITS, AMOUNT_PLACES, CreditApprovalRequest
from migrations_app.models import UserMigration
from ops.api_examples import HEALTH_EXAMPLES
from ops.health import credits_health
from ops.selectors import check_customer_summary_permission, customer_summary


def _amount(**kwargs):
    return serializers.DecimalField(
        max_digits=AMOUNT_DIGITS, decimal_places=AMOUNT_PLACES, **kwargs
    )


class SummaryUserSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    email = serializers.EmailField(allow_blank=True)
    is_active = serializers.BooleanField()
    date_joined = serializers.DateTimeField()


class SummaryProfileSerializer(serializers.ModelSerializer):
    class Meta:
        model = UserProfile
        fields = [
            "plan",
            "subscription_status",
            "subscription_started_at",
            "subscription_ends_at",
            "stripe_customer_id",
            "stripe_price_id",
            "preferences",
            "usage_stats",
            "migration_completed_at",
        ]


class SummaryAccountSerializer(serializers.Serializer):
    balance = _amount()
    total_earned = _amount()
    total_spent = _amount()
    updated_at = serializers.DateTimeField()


class SummaryMigrationSerializer(serializers.ModelSerializer):
    initial_credits_granted = _amount()

    class Meta:
        model = UserMigration
        fields = [
            "source",
            "status",
            "legacy_amounts",
            "rates",
            "initial_credits_granted",
            "rounding_remainder",
            "historical_operations",
            "data_mismatch",
            "mismatch_detail",
            "error_message",
            "attempts",
            "migration_date",
        ]


class SummaryApprovalSerializer(serializers.ModelSerializer):
    amount = _amount()

    class Meta:
        model = CreditApprovalRequest
        fields = ["id", "kind", "amount", "reason", "status", "requested_at"]


class UserSummaryOutputSerializer(serializers.Serializer):
    user = SummaryUserSerializer()
    profile = SummaryProfileSerializer(allow_null=True)
    account = SummaryAccountSerializer(allow_null=True)
    last_entries = EntryOutputSerializer(many=True)
    pending_approvals = SummaryApprovalSerializer(many=True)
    migrations = SummaryMigrationSerializer(many=True)


class UserSummaryApi(StaffApiView):
    @extend_schema(
        responses={
            200: UserSummaryOutputSerializer,
            **error_responses(401, 403, 404, 429, examples=USER_SUMMARY_ERRORS),
        },
        examples=USER_SUMMARY_EXAMPLES,
    )
    def get(self, request, user_id: int):
        # Refused before the lookup, so a 404 tells nobody without the right who exists.
        check_customer_summary_permission(actor=request.user)
        user = get_user_model().objects.filter(pk=user_id).first() if user_id <= MAX_ID else None
        if user is None:
            raise NotFound(f"No user {user_id}.")
        body = customer_summary(actor=request.user, user=user)
        return Response(UserSummaryOutputSerializer(body).data)


# --- monitoring ---------------------------------------------------------------------------


class HealthCheckSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    needs_attention = serializers.BooleanField()
    examples = serializers.ListField(child=serializers.DictField())
    meaning = serializers.CharField()


class HealthOutputSerializer(serializers.Serializer):
    needs_attention = serializers.BooleanField()
    checked_at = serializers.DateTimeField()
    checks = serializers.DictField(child=HealthCheckSerializer())


class BillingHealthApi(StaffApiView):
    @extend_schema(
        summary="What needs attention (the facts of `check_credits`)",
        responses={200: HealthOutputSerializer, **error_responses(401, 403, 429)},
        examples=HEALTH_EXAMPLES,
    )
    def get(self, request):
        return Response(HealthOutputSerializer(credits_health(actor=request.user)).data)
