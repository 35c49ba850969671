"""Ledger admin: balances and entries are read-only; staff move credits only through actions
that call the staff services (`credits.services.staff`), which hold the roles, the limits and
the two-person approval. The admin parses a form, calls a service per account, and reports.

The account's change page offers the same actions as buttons (Grant, Refund, Adjust): each
opens the list action's form for that one account and goes through the same code. Every staff
action that writes (or asks for approval) is recorded as an admin LogEntry on the account or the
request, with the amount and the reason, so History and Recent actions show it.

An action's form carries a submission key (a UUID made when the form is rendered, in a hidden
field); each account's idempotency key is built from it, so submitting the same form twice
writes once.
"""

import csv
import uuid
from decimal import Decimal

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpResponseRedirect, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import Truncator

from core.exceptions import DomainError
from core.keys import admin_idempotency_key
from credits import selectors
from credits.api.fields import AmountFormField
from credits.exceptions import CreditError
from credits.models import (
    CENT,
    ApprovalStatus,
    CreditAccount,
    CreditApprovalRequest,
    CreditTransaction,
    EntryKind,
)
from credits.selectors import staff_daily_allowance
from credits.services import (
    MAX_AMOUNT,
    credit_approval_approve,
    credit_approval_reject,
    credit_staff_adjust,
    credit_staff_grant,
    credit_staff_refund,
)
from credits.services.staff import PERMISSION_FOR_KIND, staff_can, staff_limit

LEDGER_PAGE_SIZE = 25
EXPORT_CHUNK = 2000


def truncated(text: str, length: int = 48):
    """A long text in a list column: cut to `length` characters, the whole text on hover (and
    on the object's own page), so rows stay one line on a laptop screen."""
    if not text:
        return "-"
    return format_html('<span title="{}">{}</span>', text, Truncator(text).chars(length))


def user_label(user) -> str:
    """A user as staff search for them: the email, else the username."""
    if user is None:
        return "-"
    return user.email or user.get_username()


def error_with_figures(error: DomainError) -> str:
    """A refusal's message with the figures it carries (balance, available, what is left), so
    a staff member sees why without opening the ledger."""
    figures = [
        f"{label} {error.details[name]}"
        for name, label in (
            ("balance", "balance"),
            ("available", "available"),
            ("requested", "asked for"),
            ("amount", "asked for"),
            ("left", "left of your daily limit"),
            ("limit", "limit"),
        )
        if error.details.get(name) not in (None, "")
    ]
    if not figures:
        return error.message
    return f"{error.message} {'; '.join(figures).capitalize()}."


class CompactListMedia:
    """The lists' stylesheet: one-line rows, long texts cut (whole on hover)."""

    css = {"all": ["admin/credits_lists.css"]}


class ReadOnlyAdminMixin:
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# --- staff action forms -------------------------------------------------------------------


class StaffAmountForm(forms.Form):
    amount = AmountFormField(
        min_value=CENT,
        max_value=MAX_AMOUNT,
        help_text="Credits for each selected account, at most 2 decimal places.",
    )
    reason = forms.CharField(
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Recorded on the ledger entry with your name.",
    )
    submission_key = forms.UUIDField(widget=forms.HiddenInput)

    def service_arguments(self) -> dict:
        """Arguments of the service beyond account, amount, key, actor and reason."""
        return {}


class StaffAdjustForm(StaffAmountForm):
    amount = AmountFormField(
        min_value=-MAX_AMOUNT,
        max_value=MAX_AMOUNT,
        help_text="Signed: positive adds credits, negative removes them. At most 2 decimal places.",
    )

    def clean_amount(self):
        amount = self.cleaned_data["amount"]
        if amount == 0:
            raise forms.ValidationError("An adjustment must not be zero.")
        return amount


# (title, message on success, form, service) per kind.
STAFF_ACTIONS = {
    EntryKind.GRANT: (
        "Grant credits",
        "Granted {amount} credits to {email}; balance now {balance}.",
        StaffAmountForm,
        credit_staff_grant,
    ),
    EntryKind.REFUND: (
        "Refund credits",
        "Refunded {amount} credits of {email}; balance now {balance}.",
        StaffAmountForm,
        credit_staff_refund,
    ),
    EntryKind.ADJUSTMENT: (
        "Adjust balance",
        "Adjusted {email} by {amount} credits; balance now {balance}.",
        StaffAdjustForm,
        credit_staff_adjust,
    ),
}


# --- credit accounts ----------------------------------------------------------------------


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
        return super().change_view(request, object_id, form_url, extra_context)


def _profile(account):
    try:
        return account.user.profile
    except account.user._meta.model.profile.RelatedObjectDoesNotExist:
        return None


def _threshold() -> Decimal:
    return settings.CREDITS_APPROVAL_THRESHOLD


# --- ledger entries -----------------------------------------------------------------------

EXPORT_COLUMNS = [
    ("id", "id"),
    ("created_at", "created_at"),
    ("account_id", "account_id"),
    ("account__user__email", "user_email"),
    ("kind", "kind"),
    ("amount", "amount"),
    ("balance_before", "balance_before"),
    ("balance_after", "balance_after"),
    ("source", "source"),
    ("description", "description"),
    ("idempotency_key", "idempotency_key"),
    ("actor__email", "actor_email"),
    ("reason", "reason"),
    ("reverses_id", "reverses_id"),
    ("migrated_from", "migrated_from"),
    ("stripe_event_id", "stripe_event_id"),
]
# Free text that a spreadsheet could take for a formula (CSV injection) gets a leading quote.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
TEXT_COLUMNS = {"user_email", "description", "idempotency_key", "actor_email", "reason"}


class _Echo:
    """A file-like object whose write returns the line, so csv.writer feeds a generator."""

    def write(self, value):
        return value


def _csv_cell(name, value):
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    text = str(value)
    if name in TEXT_COLUMNS and text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


@admin.register(CreditTransaction)
class CreditTransactionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "created",
        "user_email",
        "kind",
        "amount",
        "balance_after",
        "source",
        "actor_label",
        "short_reason",
    ]
    list_filter = ["kind", "source", "created_at"]
    search_fields = ["idempotency_key", "account__user__email", "=account__user__id"]
    search_help_text = "Search by user email, user id or idempotency key."
    list_select_related = ["account__user", "actor"]
    date_hierarchy = "created_at"
    readonly_fields = [field.name for field in CreditTransaction._meta.fields]
    change_list_template = "admin/credits/credittransaction/change_list.html"

    Media = CompactListMedia

    @admin.display(description="user", ordering="account__user__email")
    def user_email(self, entry):
        return entry.account.user.email or entry.account.user.get_username()

    @admin.display(description="created", ordering="created_at")
    def created(self, entry):
        return timezone.localtime(entry.created_at).strftime("%Y-%m-%d %H:%M")

    @admin.display(description="by", ordering="actor__email")
    def actor_label(self, entry):
        return truncated(user_label(entry.actor), 24) if entry.actor_id else "-"

    @admin.display(description="reason")
    def short_reason(self, entry):
        return truncated(entry.reason or entry.description)

    def get_urls(self):
        return [
            path(
                "export/",
                self.admin_site.admin_view(self.export_csv_view),
                name="credits_credittransaction_export",
            ),
            *super().get_urls(),
        ]

    def export_csv_view(self, request):
        """The filtered, searched list as CSV, streamed a chunk of rows at a time."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            return HttpResponseRedirect(
                reverse("admin:credits_credittransaction_changelist") + "?e=1"
            )
        names = [name for name, _ in EXPORT_COLUMNS]
        rows = changelist.queryset.values_list(*names).iterator(chunk_size=EXPORT_CHUNK)
        writer = csv.writer(_Echo())

        def lines():
            yield writer.writerow([header for _, header in EXPORT_COLUMNS])
            for row in rows:
                yield writer.writerow(
                    [
                        _csv_cell(header, value)
                        for (_, header), value in zip(EXPORT_COLUMNS, row, strict=True)
                    ]
                )

        response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
        filename = f"ledger-entries-{timezone.now():%Y%m%d-%H%M%S}.csv"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response


# --- approval requests --------------------------------------------------------------------


class DecisionForm(forms.Form):
    """The request page's confirmation; a rejection says why (kept on the request as its
    decision reason, and in its History)."""

    reason = forms.CharField(
        label="Why reject",
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text="Kept on the request, with your name, for the staff member who asked.",
    )

    def __init__(self, *args, rejecting: bool, **kwargs):
        super().__init__(*args, **kwargs)
        if not rejecting:
            del self.fields["reason"]


@admin.register(CreditApprovalRequest)
class CreditApprovalRequestAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "requested",
        "user_email",
        "kind",
        "amount",
        "status",
        "short_reason",
        "requested_by_label",
        "decided_by_label",
        "entry_link",
    ]
    list_filter = ["status", "kind"]
    search_fields = ["account__user__email", "=account__user__id", "reason"]
    list_select_related = ["account__user", "requested_by", "decided_by"]
    readonly_fields = [
        "account",
        "kind",
        "amount",
        "reason",
        "status",
        "requested_by",
        "requested_at",
        "decided_by",
        "decided_at",
        "decision_reason",
        "entry_link",
        "idempotency_key",
    ]
    fields = readonly_fields
    actions = ["approve_requests", "reject_requests"]

    Media = CompactListMedia

    @admin.display(description="user", ordering="account__user__email")
    def user_email(self, request_row):
        return request_row.account.user.email

    @admin.display(description="reason")
    def short_reason(self, request_row):
        return truncated(request_row.reason, 36)

    @admin.display(description="requested", ordering="requested_at")
    def requested(self, request_row):
        return timezone.localtime(request_row.requested_at).strftime("%Y-%m-%d %H:%M")

    @admin.display(description="by", ordering="requested_by__email")
    def requested_by_label(self, request_row):
        return truncated(user_label(request_row.requested_by), 24)

    @admin.display(description="decided by", ordering="decided_by__email")
    def decided_by_label(self, request_row):
        return truncated(user_label(request_row.decided_by), 24)

    @admin.display(description="entry")
    def entry_link(self, request_row):
        if request_row.entry_id is None:
            return "-"
        url = reverse("admin:credits_credittransaction_change", args=[request_row.entry_id])
        return format_html('<a href="{}">#{}</a>', url, request_row.entry_id)

    def has_decide_permission(self, request):
        return any(request.user.has_perm(name) for name in PERMISSION_FOR_KIND.values())

    # The list actions offered as buttons on a pending request's page, with their labels.
    object_actions = [("approve_requests", "Approve"), ("reject_requests", "Reject")]

    def get_urls(self):
        return [
            path(
                "<path:object_id>/decide/<str:action>/",
                self.admin_site.admin_view(self.object_action_view),
                name=f"{self.opts.app_label}_{self.opts.model_name}_object_action",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        approval = self.get_object(request, unquote(object_id))
        extra_context = dict(extra_context or {})
        if approval is not None and approval.status == ApprovalStatus.PENDING:
            allowed = self.get_actions(request)
            extra_context["object_action_buttons"] = [
                (
                    reverse(
                        f"admin:{self.opts.app_label}_{self.opts.model_name}_object_action",
                        args=[approval.pk, name],
                    ),
                    label,
                )
                for name, label in self.object_actions
                if name in allowed
            ]
        return super().change_view(request, object_id, form_url, extra_context)

    def object_action_view(self, request, object_id, action):
        """Approve or reject one request: a confirmation page, then the list action for it."""
        allowed = self.get_actions(request)
        labels = dict(self.object_actions)
        if action not in labels or action not in allowed:
            raise PermissionDenied
        approval = self.get_object(request, unquote(object_id))
        if approval is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        change_url = reverse(
            f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[approval.pk]
        )
        form = DecisionForm(
            request.POST if request.method == "POST" else None,
            rejecting=action == "reject_requests",
        )
        if request.method == "POST" and form.is_valid():
            selected = self.get_queryset(request).filter(pk=approval.pk)
            if action == "reject_requests":
                self._reject(request, selected, reason=form.cleaned_data["reason"])
            else:
                func, _name, _description = allowed[action]
                func(self, request, selected)
            return HttpResponseRedirect(change_url)
        context = {
            "form": form,
            **self.admin_site.each_context(request),
            "title": f"{labels[action]} request #{approval.pk}",
            "opts": self.opts,
            "approval": approval,
            "label": labels[action],
            "action": action,
            "cancel_url": change_url,
        }
        return TemplateResponse(request, "admin/credits/creditapprovalrequest/decide.html", context)

    @admin.action(description="Approve selected requests", permissions=["decide"])
    def approve_requests(self, request, queryset):
        for approval in queryset.select_related("account__user").order_by("pk"):
            try:
                entry = credit_approval_approve(approval=approval, actor=request.user)
            except CreditError as error:
                self.message_user(
                    request,
                    f"Request #{approval.pk}: not approved. {error_with_figures(error)}",
                    "error",
                )
                continue
            if entry.replayed:
                message = f"Request #{approval.pk} was already approved (entry #{entry.pk})."
                self.message_user(request, message, messages.INFO)
            else:
                self.message_user(
                    request,
                    f"Request #{approval.pk} approved: entry #{entry.pk}, "
                    f"{approval.account.user.email} balance now {entry.balance_after}.",
                    messages.SUCCESS,
                )
                self.log_change(
                    request,
                    approval,
                    f"Approved the {approval.kind} of {approval.amount} credits for "
                    f"{approval.account.user.email} (entry #{entry.pk}, balance now "
                    f"{entry.balance_after}). Reason: {approval.reason}",
                )

    @admin.action(description="Reject selected requests", permissions=["decide"])
    def reject_requests(self, request, queryset):
        self._reject(request, queryset, reason="")

    def _reject(self, request, queryset, *, reason: str):
        for approval in queryset.select_related("account__user").order_by("pk"):
            was_rejected = approval.status == ApprovalStatus.REJECTED
            try:
                credit_approval_reject(approval=approval, actor=request.user, reason=reason)
            except CreditError as error:
                self.message_user(
                    request, f"Request #{approval.pk}: not rejected. {error.message}", "error"
                )
                continue
            message = f"Request #{approval.pk} rejected; nothing written to the ledger."
            self.message_user(request, message, messages.SUCCESS)
            if not was_rejected:
                self.log_change(
                    request,
                    approval,
                    f"Rejected the {approval.kind} of {approval.amount} credits for "
                    f"{approval.account.user.email}; nothing written to the ledger. "
                    f"Reason: {approval.reason}"
                    + (f" Rejected because: {reason}" if reason else ""),
                )
