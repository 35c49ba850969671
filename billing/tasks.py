"""Celery tasks of billing: thin, each calls a service."""

from celery import shared_task

from billing.services import monthly_credits_grant


@shared_task(name="billing.tasks.grant_monthly_credits")
def grant_monthly_credits(period: str | None = None) -> int:
    """Grant the monthly plan credits for a period (default: this UTC month)."""
    return monthly_credits_grant(period=period)
