"""factory_boy factories for the legacy billing tables, the "before" world the migration reads.

Each builds its own user unless given one. Ledger entries are never built here: the migration
writes them through `credits.services`.
"""

from datetime import timedelta
from decimal import Decimal

import factory
from django.utils import timezone

from billing.models import (
    LegacyAccount,
    LegacyBilling,
    LegacyCreditTransaction,
    LegacyOperation,
    LegacyPayment,
    LegacyUsage,
)
from tests.factories import UserFactory


def current_period() -> str:
    """The period usage_tiers reads: this month, as the command computes it."""
    return timezone.now().strftime("%Y-%m")


def previous_period() -> str:
    first_of_month = timezone.now().replace(day=1)
    return (first_of_month - timedelta(days=1)).strftime("%Y-%m")


class LegacyBillingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LegacyBilling

    user = factory.SubFactory(UserFactory)
    balance_usd = Decimal("0.00")
    balance_uah = Decimal("0.00")


class LegacyAccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LegacyAccount

    user = factory.SubFactory(UserFactory)
    plan = "free"
    credits_balance = Decimal("0.00")


class LegacyPaymentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LegacyPayment

    user = factory.SubFactory(UserFactory)
    stripe_payment_intent_id = factory.Sequence(lambda n: f"pi_legacy_{n}")
    amount = 1000
    currency = "usd"
    status = "PAID"
    created_at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=90))


class LegacyCreditTransactionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LegacyCreditTransaction

    user = factory.SubFactory(UserFactory)
    delta = Decimal("10.00")
    reason = "purchase"
    created_at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=60))


class LegacyOperationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LegacyOperation

    user = factory.SubFactory(UserFactory)
    kind = "request"
    created_at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=1))


class LegacyUsageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LegacyUsage

    user = factory.SubFactory(UserFactory)
    period = factory.LazyFunction(current_period)
    amount_used = Decimal("0.00")


def operations(user, count: int, *, days_ago: float = 1, kind: str = "request") -> None:
    """`count` legacy operations of `user`, `days_ago` days before now, in one INSERT."""
    when = timezone.now() - timedelta(days=days_ago)
    LegacyOperation.objects.bulk_create(
        [LegacyOperation(user=user, kind=kind, created_at=when) for _ in range(count)]
    )
