"""Realistic examples of the ledger's endpoints for the API docs (drf-spectacular's
OpenApiExample): what a client sees for a real account, figures that add up (balance_before +
amount = balance_after). Views attach them with `extend_schema(examples=...)`; the error
examples every status has come from core.api.examples through `error_responses`.
"""

from core.api.examples import error_example, request_example, response_example

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


# --- lots and holds -----------------------------------------------------------------------
# One account throughout: 100.00 bought (paid, never expires) and 20.00 of welcome credits
# (promotional, expiring), a 30.00 hold on it, then 12.50 of the hold captured.

LOT_PAID = {
    "id": 7,
    "category": "paid",
    "amount": "100.00",
    "remaining": "100.00",
    "priority": 0,
    "effective_at": "2026-11-28T10:00:00Z",
    "expires_at": None,
}
LOT_PROMOTIONAL = {
    "id": 8,
    "category": "promotional",
    "amount": "20.00",
    "remaining": "7.50",
    "priority": 0,
    "effective_at": "2026-11-30T09:12:41.504Z",
    "expires_at": "2026-12-31T00:00:00Z",
}
HOLD_ACTIVE = {
    "id": 31,
    "amount": "30.00",
    "captured": "0.00",
    "status": "active",
    "expires_at": "2026-12-01T15:03:07.118Z",
    "description": "Video render",
    "created_at": "2026-12-01T14:03:07.118Z",
    "resolved_at": None,
}
HOLD_CAPTURED = {
    **HOLD_ACTIVE,
    "captured": "12.50",
    "status": "captured",
    "resolved_at": "2026-12-01T14:09:55.310Z",
}
HOLD_RELEASED = {**HOLD_ACTIVE, "status": "released", "resolved_at": "2026-12-01T14:05:12.002Z"}
CAPTURE_ENTRY = {
    "id": 58,
    "kind": "spend",
    "amount": "-12.50",
    "balance_before": "107.50",
    "balance_after": "95.00",
    "source": "hold",
    "description": "Video render",
    "reverses": None,
    "created_at": "2026-12-01T14:09:55.310Z",
}
HELD = {"balance": "107.50", "held": "30.00", "available": "77.50"}
FREED = {"balance": "107.50", "held": "0.00", "available": "107.50"}
CAPTURED = {"balance": "95.00", "held": "0.00", "available": "95.00"}

LOTS_EXAMPLES = [
    response_example("A page of lots", LOT_PROMOTIONAL, 200),
    response_example("A paid lot", LOT_PAID, 200),
]
HOLDS_EXAMPLES = [response_example("A page of holds", HOLD_ACTIVE, 200)]

HOLD_NOT_FOUND = error_example(
    404, "hold_not_found", "There is no such hold on your account.", {"hold_id": 31}
)
HOLD_NOT_ACTIVE = error_example(
    409,
    "hold_not_active",
    "This hold is no longer active: it was captured, released or has expired.",
    {"hold_id": 31, "status": "captured"},
)
KEY_CONFLICT = error_example(
    409,
    "idempotency_conflict",
    "This idempotency key was already used for a different operation.",
    {"idempotency_key": "render-7781"},
)
HOLD_TOO_LITTLE = error_example(
    402,
    "insufficient_credits",
    "The account does not hold enough credits.",
    {"balance": "107.50", "held": "30.00", "available": "77.50", "requested": "500.00"},
)

HOLD_CREATE_EXAMPLES = [
    request_example(
        "Hold 30.00 for an hour",
        {
            "amount": "30.00",
            "idempotency_key": "render-7781",
            "ttl_seconds": 3600,
            "description": "Video render",
        },
    ),
    response_example("Held", {"hold": HOLD_ACTIVE, **HELD}, 201, "Reserved (201)"),
    response_example(
        "Replayed",
        {"hold": HOLD_ACTIVE, **HELD},
        200,
        "The same key again: the original hold as it is now, nothing reserved (200)",
    ),
]
HOLD_CREATE_ERRORS = [HOLD_TOO_LITTLE, KEY_CONFLICT]

CAPTURE_EXAMPLES = [
    request_example("Capture 12.50", {"amount": "12.50", "idempotency_key": "render-7781-done"}),
    response_example(
        "Captured",
        {"transaction": CAPTURE_ENTRY, "hold": HOLD_CAPTURED, **CAPTURED},
        201,
        "Spent 12.50 of the hold, the other 17.50 freed (201)",
    ),
    response_example(
        "Replayed",
        {"transaction": CAPTURE_ENTRY, "hold": HOLD_CAPTURED, **CAPTURED},
        200,
        "The same key again: the original entry, nothing written (200)",
    ),
]
CAPTURE_ERRORS = [
    error_example(
        400,
        "invalid_amount",
        "A capture takes at most the hold's amount.",
        {"amount": "45.00", "hold_amount": "30.00"},
    ),
    HOLD_NOT_FOUND,
    HOLD_NOT_ACTIVE,
    KEY_CONFLICT,
]

RELEASE_EXAMPLES = [
    response_example(
        "Released",
        {"hold": HOLD_RELEASED, **FREED},
        200,
        "Freed (or already released: the same answer, nothing changed)",
    ),
]
RELEASE_ERRORS = [HOLD_NOT_FOUND, HOLD_NOT_ACTIVE]
