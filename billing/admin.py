from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin

from billing.models import UserProfile
from billing.services import user_provision


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


user_model = get_user_model()
admin.site.unregister(user_model)


@admin.register(user_model)
class ProvisioningUserAdmin(UserAdmin):
    """Django's user admin; a user added here is onboarded like any signup."""

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not change:
            user_provision(user=obj, signup_grant=True)
