"""Refuse, before any view runs, what no view can take: a body over the upload limit and NUL
characters in the path or the query string.

Both used to reach code that raised (Django's RequestDataTooBig page in HTML, a database that
refuses NUL in a filter or a search), so the answer was an HTML page or a 500. Here they are
a 413 or a 400: in the API's error shape under /api/, a short plain page elsewhere (the admin).
"""

from django.conf import settings
from django.http import HttpResponse, JsonResponse

from core.api.errors import error_body

TOO_LARGE = "The request body is larger than {limit} bytes."
NUL_REFUSED = "NUL characters are not allowed in the address or its parameters."


def _refusal(request, status: int, code: str, message: str):
    if request.path_info.startswith("/api/"):
        return JsonResponse(error_body(code, message), status=status)
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


class InputBoundsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if limit is not None and length > limit:
            return _refusal(request, 413, "request_too_large", TOO_LARGE.format(limit=limit))
        if "\x00" in request.path_info or any(
            "\x00" in key or any("\x00" in value for value in values)
            for key, values in request.GET.lists()
        ):
            return _refusal(request, 400, "invalid", NUL_REFUSED)
        return self.get_response(request)
