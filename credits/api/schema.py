"""The error shape as an OpenAPI component, and the error responses views declare.

Every view lists the errors it can answer with `error_responses(400, 403, ...)`, so the schema
says what a client must handle and schema tests can hold the API to it.
"""

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable, machine-readable: e.g. insufficient_credits.")
    message = serializers.CharField()
    details = serializers.DictField(help_text="Field errors, or facts about the refusal.")


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()

    class Meta:
        ref_name = "Error"


MEANINGS = {
    400: "The request is not valid (code `invalid`, field errors in details); nothing written.",
    401: "Not authenticated (code `not_authenticated` or `authentication_failed`).",
    402: "Too little credit (code `insufficient_credits`); nothing written.",
    403: "Not allowed (code `permission_denied`): staff only.",
    404: "Not found (code `not_found`).",
    409: "A conflict; nothing written.",
    429: "Throttled (code `throttled`, `wait_seconds` in details).",
    502: "Stripe refused or could not make the refund (code `stripe_refund_failed`); nothing "
    "written.",
}


def error_responses(*codes: int) -> dict[int, OpenApiResponse]:
    return {code: OpenApiResponse(ErrorSerializer, description=MEANINGS[code]) for code in codes}
