"""The ledger check every Stripe test ends with: balances equal their entries, chains unbroken."""

from decimal import Decimal

from credits.models import CreditAccount
from credits.selectors import accounts_out_of_balance, ledger_sum


def assert_ledger_consistent():
    assert not accounts_out_of_balance().exists()
    for account in CreditAccount.objects.order_by("pk"):
        assert account.balance == ledger_sum(account=account)
        running = Decimal("0.00")
        for before, amount, after in account.entries.order_by("pk").values_list(
            "balance_before", "amount", "balance_after"
        ):
            assert before == running
            assert after == before + amount
            running = after
        assert running == account.balance
