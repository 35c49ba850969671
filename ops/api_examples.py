"""Realistic examples for the monitoring endpoints in the API docs (see core.api.examples)."""

from core.api.examples import response_example

HEALTH_EXAMPLES = [
    response_example(
        "One thing to look at",
        {
            "needs_attention": True,
            "checked_at": "2026-12-01T09:05:00Z",
            "checks": {
                "ledger_mismatches": {
                    "count": 0,
                    "needs_attention": False,
                    "examples": [],
                    "meaning": (
                        "accounts whose balance differs from the sum of their ledger entries"
                    ),
                },
                "lot_mismatches": {
                    "count": 0,
                    "needs_attention": False,
                    "examples": [],
                    "meaning": (
                        "accounts whose balance differs from the sum of their lots' remaining, "
                        "and lots whose remaining differs from their amount less their "
                        "allocations"
                    ),
                },
                "failed_migrations": {
                    "count": 3,
                    "needs_attention": True,
                    "examples": [{"user_id": 311, "source": "usd_balance"}],
                    "meaning": "users whose migration from a source is FAILED",
                },
            },
        },
        200,
    ),
]
