from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from billing.api import BalanceApi
from billing.staff_api import StaffAdjustApi, StaffRefundApi
from billing.stripe.checkout import CheckoutApi
from billing.stripe.webhook import ModeCheckedWebhookView
from migrations_app.api import MigrationRollbackApi, MigrationRunApi, MigrationStatusApi
from ops.api import BillingHealthApi, UserSummaryApi
from project import pages
from project.views import healthz

urlpatterns = [
    path("", pages.landing, name="landing"),
    path("account/credits/", pages.account_credits, name="account-credits"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(next_page="landing"), name="logout"),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("api/credits/balance/", BalanceApi.as_view(), name="credits-balance"),
    path("api/credits/checkout/", CheckoutApi.as_view(), name="credits-checkout"),
    path("api/credits/", include("credits.api.urls")),
    path("api/admin/billing/credits/adjust", StaffAdjustApi.as_view(), name="staff-credits-adjust"),
    path("api/admin/billing/refund", StaffRefundApi.as_view(), name="staff-refund"),
    path(
        "api/admin/billing/user/<int:user_id>/summary",
        UserSummaryApi.as_view(),
        name="staff-user-summary",
    ),
    path("api/migrate/user-credits/", MigrationStatusApi.as_view(), name="migrate-status"),
    path("api/migrate/runs/<int:run_id>/", MigrationRunApi.as_view(), name="migrate-run"),
    path("api/migrate/rollback/", MigrationRollbackApi.as_view(), name="migrate-rollback"),
    path("api/admin/billing/health", BillingHealthApi.as_view(), name="billing-health"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    # Stripe webhooks: /stripe/webhook/<WebhookEndpoint.djstripe_uuid>/ (see README).
    # The same path as dj-stripe's, first: an event of the other mode is refused (billing.stripe).
    path("stripe/webhook/<uuid:uuid>/", ModeCheckedWebhookView.as_view(), name="stripe-webhook"),
    path("stripe/", include("djstripe.urls", namespace="djstripe")),
]

handler403 = "project.views.permission_denied"
handler404 = "project.views.not_found"
handler500 = "project.views.server_error"
