from decimal import Decimal

from credits.selectors import ledger_sum
from credits.services import credit_grant, credit_spend


def test_grant_then_spend(account):
    credit_grant(account=account, amount=Decimal("10.10"), idempotency_key="g1")
    entry = credit_spend(account=account, amount=Decimal("0.20"), idempotency_key="s1")
    account.refresh_from_db()
    assert account.balance == Decimal("9.90")
    assert entry.balance_after == Decimal("9.90")
    assert ledger_sum(account=account) == Decimal("9.90")
