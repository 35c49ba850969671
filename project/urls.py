from django.contrib import admin
from django.urls import include, path

from billing.api import BalanceApi
from project.views import healthz

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("api/credits/balance/", BalanceApi.as_view(), name="credits-balance"),
    path("api/credits/", include("credits.api.urls")),
    # Stripe webhooks: /stripe/webhook/<WebhookEndpoint.djstripe_uuid>/ (see README).
    path("stripe/", include("djstripe.urls", namespace="djstripe")),
]

handler404 = "project.views.not_found"
handler500 = "project.views.server_error"
