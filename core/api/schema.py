"""The error shape as an OpenAPI component, and the error responses views declare.

Every view lists the errors it can answer with `error_responses(400, 403, ...)`, so the schema
says what a client must handle and schema tests can hold the API to it.
"""

from drf_spectacular.utils import OpenApiExample, OpenApiResponse
from rest_framework import serializers

from core.api.examples import ERROR_EXAMPLES


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


def error_responses(*codes: int, examples: list[OpenApiExample] = ()) -> dict[int, OpenApiResponse]:
    """The documented error responses, each with an example: the view's own `examples` for
    that status (the codes it answers with), else the commonest one of the status."""
    own = {code: [e for e in examples if str(code) in e.status_codes] for code in codes}
    return {
        code: OpenApiResponse(
            ErrorSerializer,
            description=MEANINGS[code],
            examples=own[code] or [ERROR_EXAMPLES[code]],
        )
        for code in codes
    }


# Request bodies whose serializer refuses fields it does not know (a 400 per unknown field):
# the schema says so, or a client (and schemathesis) would take extra fields as allowed.
CLOSED_REQUEST_COMPONENTS = {"RunInputRequest"}
# Maps whose keys the serializer limits (the migration's rates are for these currencies).
CLOSED_MAP_KEYS = {("RunInputRequest", "rates"): ("USD", "UAH")}


def close_request_objects(result, generator, request, public):
    """drf-spectacular postprocessing hook: `additionalProperties: false` where it holds."""
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name in CLOSED_REQUEST_COMPONENTS:
            component["additionalProperties"] = False
        for (component_name, field), keys in CLOSED_MAP_KEYS.items():
            prop = component.get("properties", {}).get(field) if name == component_name else None
            if prop is not None and isinstance(prop.get("additionalProperties"), dict):
                value = prop.pop("additionalProperties")
                prop["properties"] = {key: value for key in keys}
                prop["additionalProperties"] = False
    return result
