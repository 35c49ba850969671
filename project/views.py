from django.db import connection
from django.http import JsonResponse
from django.views import defaults
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from core.api.errors import error_body, json_not_found, json_server_error
from core.audit import log_refusal


@never_cache
@require_GET
def healthz(request):
    """Answer 200 when the database answers a query, 503 otherwise."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as error:  # any failure to reach the database is "unhealthy"
        return JsonResponse(
            {"status": "unavailable", "checks": {"database": f"error: {type(error).__name__}"}},
            status=503,
        )
    return JsonResponse({"status": "ok", "checks": {"database": "ok"}})


def not_found(request, exception=None):
    """JSON in the API's error shape under /api/, Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return json_not_found(request, exception)
    return defaults.page_not_found(request, exception)


def permission_denied(request, exception=None):
    """Django's 403 (the admin's refusals), logged on credits.audit."""
    log_refusal(request, code="permission_denied", detail=str(exception or ""))
    if request.path.startswith("/api/"):
        return JsonResponse(
            error_body("permission_denied", "You do not have permission to do this."), status=403
        )
    return defaults.permission_denied(request, exception)


def server_error(request):
    if request.path.startswith("/api/"):
        return json_server_error(request)
    return defaults.server_error(request)
