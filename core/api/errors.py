"""One error shape for every API response that is not a success.

    {"error": {"code": "insufficient_credits", "message": "...", "details": {...}}}

DRF's own exceptions keep their status codes and gain a code; domain errors
(`core.exceptions.DomainError`: the ledger's, billing's and the migration's) map to their
own status and code.
"""

import math

from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.audit import log_refusal
from core.exceptions import DomainError


def error_body(code: str, message: str, details: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def exception_handler(exc, context):
    response = _handle(exc, context)
    if response is not None and response.status_code == status.HTTP_403_FORBIDDEN:
        log_refusal(context["request"], code=response.data["error"]["code"])
    return response


def _handle(exc, context):
    if isinstance(exc, DomainError):
        return Response(error_body(str(exc.code), exc.message, exc.details), status=exc.status_code)
    # Django's own 404 and 403 become DRF's, as DRF's handler would do, so they get a code.
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        details = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        response.data = error_body("invalid", "The request is not valid.", details)
    elif isinstance(exc, exceptions.Throttled):
        response.data = error_body(
            str(exc.default_code),
            "Too many requests; try again later.",
            {"wait_seconds": math.ceil(exc.wait)} if exc.wait else {},
        )
    else:
        response.data = error_body(str(exc.default_code), str(exc.detail))
    return response


def json_not_found(request, exception=None):
    return JsonResponse(error_body("not_found", "Not found."), status=status.HTTP_404_NOT_FOUND)


def json_server_error(request):
    return JsonResponse(
        error_body("server_error", "The server failed; the request changed nothing it could not."),
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )
