"""Holds: read-only, filterable by status; staff with `credits.release_hold` release active ones
with a reason, from the list (an action), from a hold's page (a button) or from the account's
page (a link per active hold), always through a confirmation page that asks the reason and
then `credit_staff_release_hold`, which checks the permission again. A refusal (a hold captured
or expired meanwhile, no permission) is a message; nothing is written."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
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
from credits.models import CreditHold, HoldStatus
from credits.services import credit_staff_release_hold
from credits.services.staff import RELEASE_HOLD_PERMISSION


class ReleaseForm(forms.Form):
    reason = forms.CharField(
        label="Why release",
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text="Kept on the hold with your name. The customer's operation can no longer "
        "capture it.",
    )


def _short_time(moment) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M") if moment else "-"


@admin.register(CreditHold)
class CreditHoldAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "user_email", "amount", "status", "expires", "created", "short_text"]
    list_filter = ["status"]
    search_fields = ["account__user__email", "=account__user__id", "idempotency_key"]
    search_help_text = "Search by user email, user id or idempotency key."
    list_select_related = ["account__user"]
    readonly_fields = [
        "account",
        "amount",
        "captured",
        "status",
        "expires_at",
        "description",
        "idempotency_key",
        "entry_link",
        "released_by",
        "reason",
        "created_at",
        "resolved_at",
    ]
    fields = readonly_fields
    actions = ["release_holds"]
    change_form_template = "admin/credits/credithold/change_form.html"

    Media = CompactListMedia

    @admin.display(description="user", ordering="account__user__email")
    def user_email(self, hold):
        return truncated(user_label(hold.account.user), 28)

    @admin.display(description="expires", ordering="expires_at")
    def expires(self, hold):
        return _short_time(hold.expires_at)

    @admin.display(description="created", ordering="created_at")
    def created(self, hold):
        return _short_time(hold.created_at)

    @admin.display(description="for / why")
    def short_text(self, hold):
        return truncated(hold.reason or hold.description, 36)

    @admin.display(description="entry")
    def entry_link(self, hold):
        if hold.entry_id is None:
            return "-"
        url = reverse("admin:credits_credittransaction_change", args=[hold.entry_id])
        return format_html('<a href="{}">#{}</a>', url, hold.entry_id)

    def has_release_permission(self, request):
        return request.user.has_perm(RELEASE_HOLD_PERMISSION)

    @admin.action(description="Release selected holds", permissions=["release"])
    def release_holds(self, request, queryset):
        holds = list(queryset.select_related("account__user").order_by("pk"))
        form = ReleaseForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            self._release(request, holds, form.cleaned_data["reason"])
            return None  # back to the list (or the page it came from), messages on top
        context = {
            **self.admin_site.each_context(request),
            "title": "Release holds" if len(holds) != 1 else f"Release hold #{holds[0].pk}",
            "opts": self.opts,
            "form": form,
            "holds": holds,
            "action": "release_holds",
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            "cancel_url": reverse("admin:credits_credithold_changelist"),
        }
        return TemplateResponse(request, "admin/credits/credithold/release.html", context)

    def _release(self, request, holds, reason):
        for hold in holds:
            email = user_label(hold.account.user)
            try:
                released = credit_staff_release_hold(actor=request.user, hold=hold, reason=reason)
            except CreditError as error:
                self.message_user(
                    request,
                    f"Hold #{hold.pk} of {email}: not released. {error_with_figures(error)}",
                    messages.ERROR,
                )
                continue
            if released.replayed:
                message = f"Hold #{hold.pk} of {email} was already released; nothing changed."
                self.message_user(request, message, messages.INFO)
                continue
            hold.account.refresh_from_db(fields=["balance", "held"])
            message = (
                f"Released hold #{hold.pk} of {email}: {hold.amount} credits free again "
                f"(available now {hold.account.balance - hold.account.held})."
            )
            self.message_user(request, message, messages.SUCCESS)
            for obj in (hold, hold.account):
                self.log_change(request, obj, f"{message} Reason: {reason}")

    # --- the same action as a button on an active hold's page (and a link on its account's)

    def get_urls(self):
        return [
            path(
                "<path:object_id>/release/",
                self.admin_site.admin_view(self.release_view),
                name="credits_credithold_release",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        hold = self.get_object(request, unquote(object_id))
        extra_context = dict(extra_context or {})
        active = hold is not None and hold.status == HoldStatus.ACTIVE
        if active and self.has_release_permission(request):
            url = reverse("admin:credits_credithold_release", args=[hold.pk])
            extra_context["object_action_buttons"] = [(url, "Release")]
        return super().change_view(request, object_id, form_url, extra_context)

    def release_view(self, request, object_id):
        """Release one hold: the list action's confirmation and code for it. With
        `?from=account` it returns to the hold's account page."""
        if not self.has_release_permission(request):
            raise PermissionDenied
        hold = self.get_object(request, unquote(object_id))
        if hold is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if request.GET.get("from") == "account":
            back = reverse("admin:credits_creditaccount_change", args=[hold.account_id])
        else:
            back = reverse("admin:credits_credithold_change", args=[hold.pk])
        response = self.release_holds(request, self.get_queryset(request).filter(pk=hold.pk))
        if response is None:
            return HttpResponseRedirect(back)
        response.context_data["cancel_url"] = back
        return response
