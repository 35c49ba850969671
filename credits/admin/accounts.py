"""Credit accounts: the balance, held and available read-only; the account's lots (open ones
first), its active holds (each with a Release link for staff who may) and its ledger; and the
staff actions.

Grant, Refund and Adjust are list actions with an intermediate form, and buttons on the
account's page that open the same form for that one account and go through the same code.
Every staff action that writes (or asks for approval) is recorded as an admin LogEntry on the
account or the request, with the amount and the reason, so History and Recent actions show it.
"""

import uuid
from decimal import Decimal

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from core.exceptions import DomainError
from core.keys import admin_idempotency_key
from credits import selectors
from credits.admin.common import ReadOnlyAdminMixin, error_with_figures
from credits.admin.forms import STAFF_ACTIONS
from credits.models import CreditAccount, CreditApprovalRequest, CreditHold, EntryKind
from credits.selectors import staff_daily_allowance
from credits.services.staff import RELEASE_HOLD_PERMISSION, staff_can, staff_limit

LEDGER_PAGE_SIZE = 25
LOTS_PAGE_SIZE = 25


class MigratedFilter(admin.SimpleListFilter):
    title = "migrated"
    parameter_name = "migrated"

    def lookups(self, request, model_admin):
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(
                user__profile__migration_completed_at__isnull=self.value() == "no"
            )
        return queryset


@admin.register(CreditAccount)
class CreditAccountAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "email",
        "plan",
        "balance",
        "total_earned",
        "total_spent",
        "is_migrated",
        "updated_at",
    ]
    list_display_links = ["email"]
    search_fields = ["user__email", "user__username", "=user__id"]
    search_help_text = "Search by email, username or user id."
    list_filter = [("user__profile__plan", admin.AllValuesFieldListFilter), MigratedFilter]
    list_select_related = ["user__profile"]
    readonly_fields = [
        "user",
        "email",
        "plan",
        "is_migrated",
        "balance",
        "held",
        "available",
        "total_earned",
        "total_spent",
        "created_at",
        "updated_at",
    ]
    fields = readonly_fields
    actions = ["grant_credits", "refund_credits", "adjust_credits"]
    # (title, message, form, service) per kind; billing's admin extends the refund with Stripe.
    staff_actions = STAFF_ACTIONS
    change_form_template = "admin/credits/creditaccount/change_form.html"

    @admin.display(description="email", ordering="user__email")
    def email(self, account):
        return account.user.email

    @admin.display(description="available")
    def available(self, account):
        return account.balance - account.held

    @admin.display(description="plan", ordering="user__profile__plan")
    def plan(self, account):
        profile = _profile(account)
        return profile.plan if profile else "-"

    @admin.display(description="migrated", boolean=True)
    def is_migrated(self, account):
        profile = _profile(account)
        return profile.is_legacy_settled if profile else None

    # Actions are offered only to staff whose role allows them (admin.action permissions=...).
    def has_grant_permission(self, request):
        return staff_can(request.user, EntryKind.GRANT)

    def has_refund_permission(self, request):
        return staff_can(request.user, EntryKind.REFUND)

    def has_adjust_permission(self, request):
        return staff_can(request.user, EntryKind.ADJUSTMENT)

    @admin.action(description="Grant credits", permissions=["grant"])
    def grant_credits(self, request, queryset):
        return self._staff_action(request, queryset, EntryKind.GRANT, "grant_credits")

    @admin.action(description="Refund credits", permissions=["refund"])
    def refund_credits(self, request, queryset):
        return self._staff_action(request, queryset, EntryKind.REFUND, "refund_credits")

    @admin.action(description="Adjust balance", permissions=["adjust"])
    def adjust_credits(self, request, queryset):
        return self._staff_action(request, queryset, EntryKind.ADJUSTMENT, "adjust_credits")

    def _staff_action(self, request, queryset, kind, action):
        title, done, form_class, service = self.staff_actions[kind]
        accounts = list(queryset.select_related("user__profile").order_by("pk"))
        if "apply" in request.POST:
            form = form_class(request.POST)
            if form.is_valid():
                self._apply(request, accounts, kind, form, done, service)
                return None  # back to the changelist, messages on top
            self.message_user(
                request, "Nothing was written: correct the errors below.", messages.ERROR
            )
        else:
            form = form_class(initial={"submission_key": uuid.uuid4()})
        limit = staff_limit(request.user)
        context = {
            "daily": staff_daily_allowance(actor=request.user),
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.model._meta,
            "form": form,
            "accounts": accounts,
            "action": action,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            "limit": limit,
            "threshold": _threshold(),
            "submit_label": title,
            "kind": kind,
            "cancel_url": reverse("admin:credits_creditaccount_changelist"),
        }
        return TemplateResponse(request, "admin/credits/creditaccount/staff_action.html", context)

    def _apply(self, request, accounts, kind, form, done, service):
        # Messages never start with an email: the admin capitalises a message's first letter.
        data = form.cleaned_data
        for account in accounts:
            email = account.user.email or account.user.get_username()
            try:
                result = service(
                    account=account,
                    amount=data["amount"],
                    idempotency_key=admin_idempotency_key(
                        kind=kind, submission_key=data["submission_key"], account_id=account.pk
                    ),
                    actor=request.user,
                    reason=data["reason"],
                    **form.service_arguments(),
                )
            except DomainError as error:
                self.message_user(
                    request, f"Nothing written for {email}: {error_with_figures(error)}", "error"
                )
                continue
            if isinstance(result, CreditApprovalRequest):
                self.message_user(
                    request,
                    f"Request #{result.pk} for {email}: {abs(result.amount)} credits are above "
                    "the approval threshold and wait for another staff member's approval.",
                    messages.WARNING,
                )
                self.log_change(
                    request,
                    account,
                    f"Asked for approval of a {kind} of {result.amount} credits "
                    f"(request #{result.pk}). Reason: {data['reason']}",
                )
            elif result.replayed:
                self.message_user(
                    request,
                    f"Nothing written again for {email}: this form was already applied "
                    f"(entry #{result.pk}).",
                    messages.INFO,
                )
            else:
                # Adjustments are signed; grants and refunds say how much in their words.
                amount = result.amount if kind == EntryKind.ADJUSTMENT else abs(result.amount)
                message = done.format(email=email, amount=amount, balance=result.balance_after)
                terms = form.describe_terms() if hasattr(form, "describe_terms") else ""
                if terms:
                    message = f"{message[:-1]} ({terms})."
                self.message_user(request, message, messages.SUCCESS)
                self.log_change(
                    request,
                    account,
                    f"{message[:-1]} (entry #{result.pk}). Reason: {data['reason']}",
                )

    # --- the same actions as buttons on the account's page ---------------------------------

    # The list actions offered as buttons on the change page, in order, with their labels.
    object_actions = [
        ("grant_credits", "Grant"),
        ("refund_credits", "Refund"),
        ("adjust_credits", "Adjust"),
    ]

    def get_urls(self):
        return [
            path(
                "<path:object_id>/staff/<str:action>/",
                self.admin_site.admin_view(self.object_action_view),
                name=f"{self.opts.app_label}_{self.opts.model_name}_object_action",
            ),
            *super().get_urls(),
        ]

    def _object_actions(self, request):
        """The buttons this staff member may use: the list actions their permissions allow."""
        allowed = self.get_actions(request)
        return [(name, label) for name, label in self.object_actions if name in allowed]

    def object_action_view(self, request, object_id, action):
        """A list action for one account: the same form, permissions and service."""
        allowed = self.get_actions(request)
        if action not in dict(self.object_actions) or action not in allowed:
            raise PermissionDenied
        account = self.get_object(request, unquote(object_id))
        if account is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        change_url = reverse(
            f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[account.pk]
        )
        func, _name, _description = allowed[action]
        response = func(self, request, self.get_queryset(request).filter(pk=account.pk))
        if response is None:
            return HttpResponseRedirect(change_url)
        response.context_data["cancel_url"] = change_url
        return response

    def change_view(self, request, object_id, form_url="", extra_context=None):
        account = self.get_object(request, object_id)
        extra_context = dict(extra_context or {})
        if account is not None:
            extra_context["object_action_buttons"] = [
                (
                    reverse(
                        f"admin:{self.opts.app_label}_{self.opts.model_name}_object_action",
                        args=[account.pk, name],
                    ),
                    label,
                )
                for name, label in self._object_actions(request)
            ]
            paginator = Paginator(
                selectors.credit_history(account=account).select_related("actor"),
                LEDGER_PAGE_SIZE,
            )
            extra_context["ledger_page"] = paginator.get_page(request.GET.get("entries_page"))
            extra_context["ledger_url"] = (
                reverse("admin:credits_credittransaction_changelist")
                + f"?account__id__exact={account.pk}"
            )
            lots = Paginator(
                selectors.account_lots_open_first(account=account).select_related("entry"),
                LOTS_PAGE_SIZE,
            )
            extra_context["lots_page"] = lots.get_page(request.GET.get("lots_page"))
            extra_context["active_holds"] = list(selectors.account_holds_active(account=account))
            if self.admin_site.is_registered(CreditHold):
                extra_context["holds_url"] = (
                    reverse("admin:credits_credithold_changelist")
                    + f"?account__id__exact={account.pk}"
                )
            extra_context["can_release_holds"] = request.user.has_perm(RELEASE_HOLD_PERMISSION)
        return super().change_view(request, object_id, form_url, extra_context)


def _profile(account):
    try:
        return account.user.profile
    except account.user._meta.model.profile.RelatedObjectDoesNotExist:
        return None


def _threshold() -> Decimal:
    return settings.CREDITS_APPROVAL_THRESHOLD
