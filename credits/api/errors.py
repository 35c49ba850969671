"""One error shape for every API response that is not a success.

    {"error": {"code": "insufficient_credits", "message": "...", "details": {...}}}

DRF's own exceptions keep their status codes and gain a code; domain errors from
`credits.exceptions` map to their own status and code.
"""

from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from credits.exceptions import CreditError


def error_body(code: str, message: str, details: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def exception_handler(exc, context):
    if isinstance(exc, CreditError):
        return Response(error_body(str(exc.code), exc.message, exc.details), status=exc.status_code)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        details = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        body = error_body("invalid", "The request is not valid.", details)
    elif isinstance(exc, exceptions.APIException):
        body = error_body(str(exc.default_code), str(exc.detail))
    elif isinstance(exc, Http404):
        body = error_body("not_found", "Not found.")
    else:
        body = error_body("error", str(exc))
    response.data = body
    return response


def json_not_found(request, exception=None):
    return JsonResponse(error_body("not_found", "Not found."), status=status.HTTP_404_NOT_FOUND)


def json_server_error(request):
    return JsonResponse(
        error_body("server_error", "The server failed; the request changed nothing it could not."),
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )
