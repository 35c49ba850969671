"""Ledger admin: everything read-only. Balances change only through `credits.services`."""

from django.contrib import admin

from credits.models import CreditAccount, CreditTransaction


class ReadOnlyAdminMixin:
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class EntryInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = CreditTransaction
    fk_name = "account"
    fields = [
        "created_at",
        "kind",
        "amount",
        "balance_before",
        "balance_after",
        "source",
        "description",
        "actor",
        "reason",
    ]
    readonly_fields = fields
    ordering = ["-id"]
    extra = 0
    show_change_link = True


@admin.register(CreditAccount)
class CreditAccountAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["user", "balance", "total_earned", "total_spent", "updated_at"]
    search_fields = ["user__email", "user__username", "=user__id"]
    list_select_related = ["user"]
    readonly_fields = ["user", "balance", "total_earned", "total_spent", "created_at", "updated_at"]
    inlines = [EntryInline]


@admin.register(CreditTransaction)
class CreditTransactionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "created_at",
        "account",
        "kind",
        "amount",
        "balance_after",
        "source",
        "actor",
    ]
    list_filter = ["kind", "source", "created_at"]
    search_fields = ["idempotency_key", "account__user__email", "=account__user__id"]
    list_select_related = ["account__user", "actor"]
    date_hierarchy = "created_at"
    readonly_fields = [field.name for field in CreditTransaction._meta.fields]
