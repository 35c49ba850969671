"""Records of refused spends, for monitoring. Not ledger entries: nothing moved."""

from decimal import Decimal

from django.db import transaction

from credits.models import CreditAccount, SpendRefusal


def spend_refusal_record(
    *, account: CreditAccount, amount: Decimal, code: str, source: str = ""
) -> SpendRefusal:
    """Record a refused spend of `amount` on the account, with its balance now."""
    with transaction.atomic():
        balance = CreditAccount.objects.values_list("balance", flat=True).get(pk=account.pk)
        return SpendRefusal.objects.create(
            account=account, amount=amount, balance=balance, code=code, source=source
        )
