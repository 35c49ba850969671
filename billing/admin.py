from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin

from billing.models import CreditPack, PlanPrice, StripeEventIssue, UserProfile
from billing.selectors import migrated_expression
from billing.services import user_provision
from billing.stripe.refunds import billing_staff_refund
from billing.stripe.services import stripe_issues_resolve
from credits.admin import STAFF_ACTIONS, CreditAccountAdmin, MigratedFilter, StaffAmountForm
from credits.models import CreditAccount, EntryKind


@admin.register(UserProfile)
class UserProfileAdmin(admin.ModelAdmin):
    list_display = [
        "user",
        "plan",
        "subscription_status",
        "stripe_customer_id",
        "migration_completed_at",
    ]
    list_filter = ["plan", "subscription_status"]
    search_fields = ["user__email", "user__username", "=user__id", "stripe_customer_id"]
    list_select_related = ["user"]
    readonly_fields = ["user", "migration_completed_at", "created_at", "updated_at"]

    def has_add_permission(self, request):
        # Profiles are made with their user (see ProvisioningUserAdmin), never on their own.
        return False

    def has_delete_permission(self, request, obj=None):
        # Every user has a profile; it goes only with its user.
        return False


user_model = get_user_model()
admin.site.unregister(user_model)


@admin.register(user_model)
class ProvisioningUserAdmin(UserAdmin):
    """Django's user admin; a user added here is onboarded like any signup."""

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not change:
            user_provision(user=obj, signup_grant=True)


@admin.register(CreditPack)
class CreditPackAdmin(admin.ModelAdmin):
    list_display = ["name", "stripe_price_id", "credits", "amount_cents", "currency", "is_active"]
    list_filter = ["is_active", "currency"]
    search_fields = ["name", "=stripe_price_id"]
    readonly_fields = ["created_at", "updated_at"]


@admin.register(PlanPrice)
class PlanPriceAdmin(admin.ModelAdmin):
    list_display = ["stripe_price_id", "plan", "interval", "is_active"]
    list_filter = ["plan", "interval", "is_active"]
    search_fields = ["=stripe_price_id", "plan"]
    readonly_fields = ["created_at", "updated_at"]


@admin.register(StripeEventIssue)
class StripeEventIssueAdmin(admin.ModelAdmin):
    """Webhook events that granted nothing (or less than asked): for staff to settle by hand."""

    list_display = [
        "created_at",
        "kind",
        "event_type",
        "stripe_event_id",
        "stripe_customer_id",
        "user",
        "is_resolved",
    ]
    list_filter = ["is_resolved", "kind", "event_type"]
    search_fields = [
        "=stripe_event_id",
        "=stripe_customer_id",
        "customer_email",
        "user__email",
        "detail",
    ]
    list_select_related = ["user"]
    readonly_fields = [
        "stripe_event_id",
        "event_type",
        "kind",
        "detail",
        "stripe_customer_id",
        "customer_email",
        "user",
        "data",
        "is_resolved",
        "resolved_by",
        "resolved_at",
        "created_at",
    ]
    actions = ["mark_resolved"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Mark resolved", permissions=["change"])
    def mark_resolved(self, request, queryset):
        resolved = stripe_issues_resolve(
            issue_ids=list(queryset.values_list("pk", flat=True)), actor=request.user
        )
        self.message_user(request, f"{resolved} issue(s) marked resolved.")


# --- credit accounts: the refund action may give the money back through Stripe ------------


class StaffRefundForm(StaffAmountForm):
    stripe_refund = forms.BooleanField(
        required=False,
        label="Also refund the payment through Stripe",
        help_text="Gives the customer's money back for a credit pack purchase, then takes its "
        "credits off. Up to the approval threshold only.",
    )
    payment_intent_id = forms.CharField(
        required=False,
        max_length=255,
        label="Payment intent",
        help_text="The purchase's Stripe payment intent (pi_...), shown on its ledger entry.",
    )

    def clean(self):
        data = super().clean()
        if data.get("stripe_refund") and not data.get("payment_intent_id", "").strip():
            self.add_error("payment_intent_id", "A Stripe refund needs the payment intent.")
        return data

    def service_arguments(self) -> dict:
        return {
            "stripe_refund": self.cleaned_data["stripe_refund"],
            "payment_intent_id": self.cleaned_data["payment_intent_id"].strip(),
        }


class MigratedBySourceFilter(MigratedFilter):
    """Migrated by a source (billing.selectors), not merely settled: signups are not."""

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(migrated_by_source=self.value() == "yes")
        return queryset


admin.site.unregister(CreditAccount)


@admin.register(CreditAccount)
class BillingCreditAccountAdmin(CreditAccountAdmin):
    """The ledger's account admin, with billing's refund (optionally through Stripe) and
    "migrated" meaning migrated by a source."""

    list_filter = [
        MigratedBySourceFilter if spec is MigratedFilter else spec
        for spec in CreditAccountAdmin.list_filter
    ]

    staff_actions = {
        **STAFF_ACTIONS,
        EntryKind.REFUND: (
            STAFF_ACTIONS[EntryKind.REFUND][0],
            STAFF_ACTIONS[EntryKind.REFUND][1],
            StaffRefundForm,
            billing_staff_refund,
        ),
    }

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(migrated_by_source=migrated_expression(user_path="user"))
        )

    @admin.display(description="migrated", boolean=True, ordering="migrated_by_source")
    def is_migrated(self, account):
        return account.migrated_by_source
