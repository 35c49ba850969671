"""GET /api/admin/billing/user/<user_id>/summary: one customer as staff see them.

The profile, the account's figures, the newest ledger entries, pending approval requests and
the user's migrations, read in a handful of queries. It lives here, at the top of the
dependency chain, because it reads all three apps (migrations_app -> billing -> credits).

The read itself (`customer_summary`) checks `billing.view_customer_summary`, so any caller, not
only this view, shares the rule; `is_staff` only lets a request reach it.
"""

from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from billing.models import UserProfile
from billing.selectors import profile_for_user
from core.api.schema import error_responses
from core.api.views import StaffApiView
from credits.api.serializers import MAX_ID, EntryOutputSerializer
from credits.exceptions import StaffPermissionDenied
from credits.models import AMOUNT_DIGITS, AMOUNT_PLACES, ApprovalStatus, CreditApprovalRequest
from credits.selectors import credit_account_for_user, credit_history
from migrations_app.models import UserMigration

LAST_ENTRIES = 20
SUMMARY_PERMISSION = "billing.view_customer_summary"


def check_customer_summary_permission(*, actor) -> None:
    if actor is None or not actor.has_perm(SUMMARY_PERMISSION):
        raise StaffPermissionDenied(
            "You do not have the permission to view customer summaries.",
            permission=SUMMARY_PERMISSION,
        )


def customer_summary(*, actor, user) -> dict:
    """One customer as staff see them; refused without `billing.view_customer_summary`."""
    check_customer_summary_permission(actor=actor)
    account = credit_account_for_user(user=user)
    return {
        "user": user,
        "profile": profile_for_user(user=user),
        "account": account,
        "last_entries": list(credit_history(account=account)[:LAST_ENTRIES]) if account else [],
        "pending_approvals": list(
            CreditApprovalRequest.objects.filter(
                account=account, status=ApprovalStatus.PENDING
            ).order_by("-pk")
        )
        if account
        else [],
        "migrations": list(UserMigration.objects.filter(user=user).order_by("source")),
    }


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
        responses={200: UserSummaryOutputSerializer, **error_responses(401, 403, 404, 429)}
    )
    def get(self, request, user_id: int):
        # Refused before the lookup, so a 404 tells nobody without the right who exists.
        check_customer_summary_permission(actor=request.user)
        user = get_user_model().objects.filter(pk=user_id).first() if user_id <= MAX_ID else None
        if user is None:
            raise NotFound(f"No user {user_id}.")
        body = customer_summary(actor=request.user, user=user)
        return Response(UserSummaryOutputSerializer(body).data)
