"""Realistic examples for billing's endpoints in the API docs (see credits.api.examples)."""

from core.api.examples import ERROR_EXAMPLES, error_example, request_example, response_example
from credits.api.examples import GRANT_ENTRY, SPEND_ENTRY

BALANCE_EXAMPLES = [
    response_example(
        "A migrated pro user",
        {
            "balance": "247.50",
            "available": "232.50",
            "held": "15.00",
            "expiring": {"amount": "42.00", "expires_at": "2026-12-31T23:59:59Z"},
            "total_earned": "260.00",
            "total_spent": "12.50",
            "plan": "pro",
            "migrated": True,
            "updated_at": "2026-12-01T14:03:07.118000Z",
        },
        200,
        summary="A job holds 15.00; 42.00 of monthly credits expire at the period's end",
    ),
    response_example(
        "A signed-up user",
        {
            "balance": "20.00",
            "available": "20.00",
            "held": "0.00",
            "expiring": None,
            "total_earned": "20.00",
            "total_spent": "0.00",
            "plan": "free",
            "migrated": False,
            "updated_at": "2026-12-01T09:12:44.301000Z",
        },
        200,
        summary="The welcome credits, which never expire; nothing held",
    ),
]

CHECKOUT_EXAMPLES = [
    request_example("Buy pack 3", {"pack": 3, "idempotency_key": "buy-2026-12-01-a"}),
    response_example(
        "Checkout session",
        {
            "id": "cs_test_a1B2c3D4e5F6g7H8i9J0",
            "url": "https://checkout.stripe.com/c/pay/cs_test_a1B2c3D4e5F6g7H8i9J0",
            "pack": 3,
        },
        201,
    ),
]
CHECKOUT_ERRORS = [
    error_example(404, "pack_not_found", "No active credit pack has this id.", {"pack": 999}),
    error_example(
        502,
        "stripe_checkout_failed",
        "Stripe could not create the checkout session; nothing was charged.",
    ),
]

CHECKOUT_FORBIDDEN = [
    error_example(
        403, "permission_denied", "Only an active user may buy credits, for their own account."
    ),
    error_example(403, "purchase_not_allowed", "Your plan may not buy credit packs."),
]

ADJUSTMENT_ENTRY = {
    **SPEND_ENTRY,
    "id": 3,
    "kind": "adjustment",
    "amount": "25.00",
    "balance_before": "7.50",
    "balance_after": "32.50",
    "source": "staff",
    "description": "Balance adjusted by support",
    "created_at": "2026-12-01T15:20:44.902Z",
}
REFUND_ENTRY = {
    **ADJUSTMENT_ENTRY,
    "id": 4,
    "kind": "refund",
    "amount": "-10.00",
    "balance_before": "32.50",
    "balance_after": "22.50",
    "description": "Credits refunded by support",
    "created_at": "2026-12-01T15:24:10.337Z",
}
PENDING_APPROVAL = {
    "id": 1,
    "kind": "adjustment",
    "amount": "9000.00",
    "reason": "Enterprise contract",
    "status": "pending",
    "requested_at": "2026-12-01T15:22:03.640Z",
}
ABOVE_LIMIT = error_example(
    403,
    "over_limit",
    "The amount is above your limit per action (CREDITS_ADMIN_LIMIT); a billing super admin "
    "can do it.",
    {"limit": "1000", "amount": "1500.00"},
)

ADJUST_EXAMPLES = [
    request_example(
        "Goodwill after an outage",
        {
            "user_id": 42,
            "amount": "25.00",
            "reason": "Outage goodwill, ticket 881",
            "idempotency_key": "ticket-881",
        },
    ),
    response_example(
        "Written", {"transaction": ADJUSTMENT_ENTRY, "balance": "32.50"}, 201, "Written (201)"
    ),
    response_example(
        "Replayed",
        {"transaction": ADJUSTMENT_ENTRY, "balance": "32.50"},
        200,
        "The same key again: the original entry (200)",
    ),
    response_example(
        "Waits for approval",
        {"approval_request": PENDING_APPROVAL, "balance": "32.50"},
        202,
        "Above the approval threshold: a request for a second staff member (202)",
    ),
]
ADJUST_ERRORS = [ERROR_EXAMPLES[403], ABOVE_LIMIT]

REFUND_EXAMPLES = [
    request_example(
        "Charged twice",
        {
            "user_id": 42,
            "amount": "10.00",
            "reason": "Charged twice, ticket 883",
            "idempotency_key": "ticket-883",
        },
        "Take credits back",
    ),
    request_example(
        "With a Stripe refund",
        {
            "user_id": 42,
            "amount": "150.00",
            "reason": "Bought the wrong pack",
            "idempotency_key": "ticket-884",
            "stripe_refund": True,
            "payment_intent_id": "pi_3QxY2bLkdIwHu7ix0Abc1234",
        },
        "Take credits back and refund the payment through Stripe",
    ),
    response_example(
        "Written", {"transaction": REFUND_ENTRY, "balance": "22.50"}, 201, "Written (201)"
    ),
    response_example(
        "Replayed",
        {"transaction": REFUND_ENTRY, "balance": "22.50"},
        200,
        "The same key again: the original entry (200)",
    ),
    response_example(
        "Waits for approval",
        {"approval_request": {**PENDING_APPROVAL, "kind": "refund"}, "balance": "22.50"},
        202,
        "Above the approval threshold (202)",
    ),
]
REFUND_ERRORS = [
    ERROR_EXAMPLES[403],
    ABOVE_LIMIT,
    ERROR_EXAMPLES[404],
    error_example(
        404,
        "payment_not_found",
        "No credit purchase on this account was paid with this payment intent.",
        {"payment_intent_id": "pi_3QxY2bLkdIwHu7ix0Abc1234"},
    ),
]

USER_SUMMARY_EXAMPLES = [
    response_example(
        "A migrated customer",
        {
            "user": {
                "id": 42,
                "username": "alice",
                "email": "alice@example.com",
                "is_active": True,
                "date_joined": "2025-03-14T10:00:00Z",
            },
            "profile": {
                "plan": "pro",
                "subscription_status": "active",
                "subscription_started_at": "2025-03-14T10:05:00Z",
                "subscription_ends_at": "2026-12-14T10:05:00Z",
                "stripe_customer_id": "cus_R2f8Xyz1AbCdEf",
                "stripe_price_id": "price_1PqPro260Monthly",
                "preferences": {"theme": "dark"},
                "usage_stats": {"reports": 118},
                "migration_completed_at": "2026-11-20T08:30:12Z",
            },
            "account": {
                "balance": "7.50",
                "total_earned": "20.00",
                "total_spent": "12.50",
                "updated_at": "2026-12-01T14:03:07.118Z",
            },
            "last_entries": [SPEND_ENTRY, GRANT_ENTRY],
            "pending_approvals": [],
            "migrations": [
                {
                    "source": "usd_balance",
                    "status": "COMPLETED",
                    "legacy_amounts": {"USD": "20.00"},
                    "rates": {"USD": "1.0"},
                    "initial_credits_granted": "20.00",
                    "rounding_remainder": "0",
                    "historical_operations": 3,
                    "data_mismatch": False,
                    "mismatch_detail": "",
                    "error_message": "",
                    "attempts": 1,
                    "migration_date": "2026-11-20T08:30:12Z",
                }
            ],
        },
        200,
    ),
]
USER_SUMMARY_ERRORS = [error_example(404, "not_found", "No user 999999.")]
