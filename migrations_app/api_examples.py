"""Realistic examples for the migration endpoints in the API docs (see
credits.api.examples)."""

from core.api.examples import error_example, request_example, response_example

STATUS_EXAMPLES = [
    response_example(
        "Half way",
        {
            "status": "in_progress",
            "summary": {
                "users": 1200,
                "profiles": 1200,
                "pro_users": 310,
                "pro_profiles": 310,
                "users_to_migrate": 540,
                "failed": 3,
                "data_mismatches": 1,
                "sources": {
                    "usd_balance": {
                        "statuses": {"COMPLETED": 657, "FAILED": 3},
                        "to_migrate": 540,
                    },
                    "user_fields": {"statuses": {"COMPLETED": 1200}, "to_migrate": 0},
                },
            },
            "recommendation": "Retry or fix the 3 failed users, then migrate the remaining 540.",
            "failures": [
                {
                    "user_id": 1042,
                    "email": "olena@example.com",
                    "source": "usd_balance",
                    "error": "negative legacy balance (-5.00 USD, 0.00 UAH)",
                },
                {
                    "user_id": 1187,
                    "email": "mark@example.com",
                    "source": "usd_balance",
                    "error": "balance_usd is NaN",
                },
                {
                    "user_id": 2210,
                    "email": "",
                    "source": "usd_balance",
                    "error": "negative legacy balance (0.00 USD, -12.40 UAH)",
                },
            ],
        },
        200,
    ),
]

RUN_START_EXAMPLES = [
    request_example("Preview usd_balance", {"sources": ["usd_balance"]}, "A dry run (the default)"),
    request_example(
        "Migrate 10% of usd_balance",
        {
            "sources": ["usd_balance"],
            "dry_run": False,
            "percent": "10",
            "rates": {"USD": "1.0", "UAH": "0.024"},
            "notify": True,
        },
        "Execute for a tenth of the users, with the rates written out",
    ),
    response_example(
        "Started",
        {
            "run_id": 17,
            "mode": "execute",
            "status": "running",
            "status_url": "/api/migrate/runs/17/",
        },
        202,
    ),
]
RUN_START_ERRORS = [
    error_example(
        409,
        "run_already_active",
        "An execute run of these sources is already running; wait for it to finish.",
        {"run_id": 16, "sources": ["usd_balance"]},
    ),
]

RUN_EXAMPLES = [
    response_example(
        "Finished",
        {
            "id": 17,
            "sources": ["usd_balance"],
            "mode": "execute",
            "status": "completed",
            "parameters": {
                "rates": {"USD": "1.0", "UAH": "0.024"},
                "percent": "10",
                "users": None,
                "batch_size": 500,
                "keep_legacy": False,
                "notify": True,
            },
            "progress": {
                "processed": 120,
                "total": 120,
                "percent": 100.0,
                "batches_done": 1,
                "batches_total": 1,
            },
            "stats": {"migrated": 118, "failed": 2, "credits": "26365.86"},
            "errors": [
                {
                    "user_id": 311,
                    "source": "usd_balance",
                    "error": "legacy balance is negative (-5.00 USD)",
                }
            ],
            "failed": 2,
            "error": "",
            "triggered_by": 2,
            "started_at": "2026-12-01T09:00:02Z",
            "heartbeat_at": "2026-12-01T09:00:41Z",
            "finished_at": "2026-12-01T09:00:41Z",
        },
        200,
    ),
]

ROLLBACK_EXAMPLES = [
    request_example(
        "Roll back two users",
        {"users": [311, 312], "sources": ["usd_balance"], "reason": "Asked to stay on legacy"},
    ),
    response_example(
        "One rolled back, one refused",
        {
            "run_id": 18,
            "status_url": "/api/migrate/runs/18/",
            "users": {"rolled_back": 1, "refused": 1},
            "credits": "-30.00",
            "spent_before_rollback": "4.00",
            "taken_from_account": "0.00",
            "shortfall": "4.00",
            "failures": [
                {
                    "user_id": 312,
                    "source": "usd_balance",
                    "outcome": "refused",
                    "credits": "0",
                    "legacy_amounts": {},
                    "rounding_remainder": "0",
                    "history_entries": 0,
                    "note": "",
                    "error": "active holds reserve 5.00 of the 12.50 credits; releasing them, or "
                    "forcing the rollback (which reverses what is available and records the "
                    "shortfall), lets it through",
                    "data_mismatch": False,
                }
            ],
        },
        200,
    ),
]
