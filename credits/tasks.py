"""Celery tasks of credits: thin, each calls a service."""

from celery import shared_task

from credits.services import credit_expiry_run


@shared_task(name="credits.tasks.expire_credits")
def expire_credits() -> dict:
    """Release the holds and expire the lots whose time has come (beat runs it every 5 min)."""
    run = credit_expiry_run()
    return {
        "holds_expired": run.holds_expired,
        "lots_expired": run.lots_expired,
        "credits_expired": str(run.credits_expired),
        "bounded": run.bounded,
    }
