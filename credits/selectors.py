"""Reads of the ledger."""

from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import F, QuerySet, Sum, Value
from django.db.models.functions import Coalesce, Round

from credits.models import AMOUNT_PLACES, CENT, CreditAccount, CreditTransaction, SpendRefusal


def credit_account_for_user(*, user: AbstractBaseUser) -> CreditAccount | None:
    return CreditAccount.objects.filter(user=user).first()


def credit_history(*, account: CreditAccount) -> QuerySet[CreditTransaction]:
    """The account's entries, newest first."""
    return CreditTransaction.objects.filter(account=account).order_by("-id")


def ledger_sum(*, account: CreditAccount) -> Decimal:
    """The sum of the account's entries, exact to the cent on every database."""
    total = CreditTransaction.objects.filter(account=account).aggregate(
        total=Round(Sum("amount"), AMOUNT_PLACES)
    )["total"]
    # SQLite sums decimals as floats; the rounding above and here makes that sum exact again.
    return Decimal(str(total or 0)).quantize(CENT)


def accounts_out_of_balance() -> QuerySet[CreditAccount]:
    """Accounts whose balance differs from the sum of their entries (should be none)."""
    return CreditAccount.objects.annotate(
        ledger_total=Round(Coalesce(Sum("entries__amount"), Value(Decimal("0"))), AMOUNT_PLACES)
    ).exclude(balance=F("ledger_total"))


def accounts_with_negative_balance() -> QuerySet[CreditAccount]:
    """Accounts below zero: the database CHECK makes this impossible; monitoring still looks."""
    return CreditAccount.objects.filter(balance__lt=0)


def spend_refusals_since(*, since) -> QuerySet[SpendRefusal]:
    """Spends refused (too little credit) since a moment."""
    return SpendRefusal.objects.filter(created_at__gte=since)
