"""Reads of the ledger."""

from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import F, QuerySet, Sum, Value
from django.db.models.functions import Coalesce, Round

from credits.models import CreditAccount, CreditTransaction


def credit_account_for_user(*, user: AbstractBaseUser) -> CreditAccount | None:
    return CreditAccount.objects.filter(user=user).first()


def credit_history(*, account: CreditAccount) -> QuerySet[CreditTransaction]:
    """The account's entries, newest first."""
    return CreditTransaction.objects.filter(account=account).order_by("-id")


def ledger_sum(*, account: CreditAccount) -> Decimal:
    total = CreditTransaction.objects.filter(account=account).aggregate(total=Sum("amount"))
    return total["total"] or Decimal("0.00")


def accounts_out_of_balance() -> QuerySet[CreditAccount]:
    """Accounts whose balance differs from the sum of their entries (should be none)."""
    return CreditAccount.objects.annotate(
        ledger_total=Round(Coalesce(Sum("entries__amount"), Value(Decimal("0"))), 2)
    ).exclude(balance=F("ledger_total"))
