"""The project's URLs plus the benchmark's bare view (see benchmarks.balance_settings).

The bare view answers a constant JSON body as long as the balance's, through Django's whole
middleware stack, with no database access: the ceiling a Django view reaches on this server.
"""

from django.http import JsonResponse
from django.urls import path

from project.urls import urlpatterns as project_urlpatterns

BARE_PATH = "bench/bare/"
BARE_BODY = {
    "balance": "347.50",
    "available": "332.50",
    "held": "15.00",
    "expiring": {"amount": "42.00", "expires_at": "2026-12-11T06:00:00Z"},
    "total_earned": "360.00",
    "total_spent": "12.50",
    "plan": "free",
    "migrated": False,
    "updated_at": "2026-12-01T14:03:07.118000Z",
}


def bare(request):
    return JsonResponse(BARE_BODY)


urlpatterns = [path(BARE_PATH, bare, name="bench-bare"), *project_urlpatterns]

handler403 = "project.views.permission_denied"
handler404 = "project.views.not_found"
handler500 = "project.views.server_error"
