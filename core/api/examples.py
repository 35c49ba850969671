"""Examples for the API docs (drf-spectacular's OpenApiExample): the builders every app's
examples use, and one realistic error of each status as the error handler writes it, which
`error_responses` attaches, so every documented status shows one. An app's own examples
(credits.api.examples, billing.api_examples, ...) name its endpoints' bodies.
"""

from drf_spectacular.utils import OpenApiExample


def request_example(name: str, value, summary: str = "") -> OpenApiExample:
    return OpenApiExample(name, value=value, summary=summary or name, request_only=True)


def response_example(name: str, value, status: int, summary: str = "") -> OpenApiExample:
    return OpenApiExample(
        name, value=value, summary=summary or name, response_only=True, status_codes=[str(status)]
    )


def error_example(status: int, code: str, message: str, details=None, name: str = ""):
    body = {"error": {"code": code, "message": message, "details": details or {}}}
    return response_example(name or code, body, status)


# One example per documented error status (the commonest answer with that status); views
# that answer a status with another code add their own (see error_responses(examples=...)).
ERROR_EXAMPLES = {
    400: error_example(
        400,
        "invalid",
        "The request is not valid.",
        {"amount": ['Send the number as a string, e.g. "12.50".']},
    ),
    401: error_example(401, "not_authenticated", "Authentication credentials were not provided."),
    402: error_example(
        402,
        "insufficient_credits",
        "The account does not hold enough credits.",
        {"balance": "7.50", "held": "0.00", "available": "7.50", "requested": "500.00"},
    ),
    403: error_example(
        403, "permission_denied", "You do not have permission to perform this action."
    ),
    404: error_example(404, "not_found", "Not found."),
    409: error_example(
        409,
        "idempotency_conflict",
        "This idempotency key was already used for a different operation.",
        {"idempotency_key": "order-1042"},
    ),
    429: error_example(
        429, "throttled", "Too many requests; try again later.", {"wait_seconds": 12}
    ),
    502: error_example(
        502,
        "stripe_refund_failed",
        "Stripe refused or could not make the refund; nothing was written.",
    ),
}
