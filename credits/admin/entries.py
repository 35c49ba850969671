"""The ledger's entries: read-only, filterable, exportable to CSV (streamed)."""

import csv

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect, StreamingHttpResponse
from django.urls import path, reverse
from django.utils import timezone

from credits.admin.common import CompactListMedia, ReadOnlyAdminMixin, truncated, user_label
from credits.models import CreditTransaction

EXPORT_CHUNK = 2000

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
