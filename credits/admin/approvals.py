"""Approval requests: staff grants, refunds and adjustments above CREDITS_APPROVAL_THRESHOLD,
approved or rejected by a second staff member (from the list or the request's page)."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from credits.admin.common import (
    CompactListMedia,
    ReadOnlyAdminMixin,
    error_with_figures,
    truncated,
    user_label,
)
from credits.exceptions import CreditError
from credits.models import ApprovalStatus, CreditApprovalRequest, EntryKind
from credits.services import credit_approval_approve, credit_approval_reject
from credits.services.staff import PERMISSION_FOR_KIND


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


def request_lot_terms(request_row: CreditApprovalRequest) -> str:
    if request_row.kind != EntryKind.GRANT:
        return "-"
    category = request_row.lot_category or "default category"
    if request_row.lot_expires_at is None:
        return f"{category}, never expires"
    expires = timezone.localtime(request_row.lot_expires_at).strftime("%Y-%m-%d %H:%M")
    return f"{category}, expires {expires}"


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
        "lot_terms",
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

    @admin.display(description="lot")
    def lot_terms(self, request_row):
        """What a grant's lot will be: its category and expiry, or the defaults."""
        return request_lot_terms(request_row)

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
            "lot_terms": request_lot_terms(approval) if approval.kind == EntryKind.GRANT else "",
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
