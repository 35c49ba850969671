"""Small helpers the migration tests share."""

from decimal import Decimal

from django.apps import apps

from credits.models import CreditAccount, CreditTransaction
from credits.selectors import ledger_sum

ALL_SOURCES = ("user_fields", "usd_balance", "rate_limit", "usage_tiers")


def sources_args(*names):
    """`--source NAME` for each name (all four sources when none are named)."""
    return [arg for name in names or ALL_SOURCES for arg in ("--source", name)]


def table_contents(*models):
    """Every row of these models (of every installed model when none are named), by label."""
    models = models or apps.get_models(include_auto_created=True)
    return {
        model._meta.label: list(model._base_manager.order_by("pk").values()) for model in models
    }


def balance_of(user_id: int) -> Decimal:
    """The user's balance, checked against the sum of their ledger entries."""
    account = CreditAccount.objects.get(user_id=user_id)
    assert account.balance == ledger_sum(account=account)
    return account.balance


def entries_of(user, **filters):
    return CreditTransaction.objects.filter(account__user=user, **filters).order_by("pk")
