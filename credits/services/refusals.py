"""Records of refused spends, for monitoring. Not ledger entries: nothing moved."""

from decimal import Decimal

from credits.models import CreditAccount, SpendRefusal


def spend_refusal_record(
    *,
    account: CreditAccount,
    amount: Decimal,
    code: str,
    source: str = "",
    balance: Decimal | None = None,
) -> SpendRefusal:
    """Record a refused spend of `amount` on the account, with the balance it met (the one
    the refusal reported, else the balance now)."""
    if balance is None:
        balance = CreditAccount.objects.values_list("balance", flat=True).get(pk=account.pk)
    return SpendRefusal.objects.create(
        account=account, amount=amount, balance=balance, code=code, source=source
    )
