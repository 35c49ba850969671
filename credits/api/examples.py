"""Realistic examples of the ledger's endpoints for the API docs (drf-spectacular's
OpenApiExample): what a client sees for a real account, figures that add up (balance_before +
amount = balance_after). Views attach them with `extend_schema(examples=...)`; the error
examples every status has come from core.api.examples through `error_responses`.
"""

from core.api.examples import request_example, response_example

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
