"""Realistic examples for the API docs (drf-spectacular's OpenApiExample): what a client sees
for a real account, figures that add up (balance_before + amount = balance_after), and each
error as the error handler writes it. Views attach them with `extend_schema(examples=...)`;
`error_responses` attaches the error ones, so every documented status has one.
"""

from drf_spectacular.utils import OpenApiExample

GRANT_ENTRY = {
    "id": 1,
    "kind": "grant",
    "amount": "20.00",
    "balance_before": "0.00",
    "balance_after": "20.00",
    "source": "signup",
    "description": "Welcome credits",
    "reverses": None,
    "created_at": "2026-11-30T09:12:41.504Z",
}
SPEND_ENTRY = {
    "id": 2,
    "kind": "spend",
    "amount": "-12.50",
    "balance_before": "20.00",
    "balance_after": "7.50",
    "source": "api",
    "description": "Report export",
    "reverses": None,
    "created_at": "2026-12-01T14:03:07.118Z",
}


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
        {"balance": "7.50", "requested": "500.00"},
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

SPEND_EXAMPLES = [
    request_example(
        "Spend 12.50",
        {"amount": "12.50", "idempotency_key": "order-1042", "description": "Report export"},
    ),
    response_example(
        "Spent", {"transaction": SPEND_ENTRY, "balance": "7.50"}, 201, "Written (201)"
    ),
    response_example(
        "Replayed",
        {"transaction": SPEND_ENTRY, "balance": "7.50"},
        200,
        "The same key again: the original entry, nothing written (200)",
    ),
]

TRANSACTIONS_EXAMPLES = [
    # One entry of a page (newest first); drf-spectacular wraps it in the page's
    # next/previous/results.
    response_example("A page of history", SPEND_ENTRY, 200),
]
