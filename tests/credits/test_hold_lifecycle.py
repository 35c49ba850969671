"""A hold from creation to capture and release on both write paths: replays, refusals, and
the account's held moving with it."""

from decimal import Decimal

import pytest

from credits.exceptions import HoldNotActive, IdempotencyConflict, InsufficientCredits
from credits.models import CreditHold
from credits.services import (
    credit_hold_capture,
    credit_hold_create,
    credit_hold_release,
    credit_spend,
)
from tests.helpers import assert_ledger_consistent, fund

pytestmark = pytest.mark.django_db


def test_hold_flow(write_path, account):
    account = fund(account, "100.00")
    hold = credit_hold_create(account=account, amount=Decimal("30"), idempotency_key="h1")
    account.refresh_from_db()
    assert account.held == Decimal("30.00")
    with pytest.raises(InsufficientCredits):
        credit_spend(account=account, amount=Decimal("70.01"), idempotency_key="s1")
    again = credit_hold_create(account=account, amount=Decimal("30"), idempotency_key="h1")
    assert again.pk == hold.pk and again.replayed
    entry = credit_hold_capture(hold=hold, amount=Decimal("12.5"), idempotency_key="c1")
    assert entry.amount == Decimal("-12.50")
    account.refresh_from_db()
    assert account.held == 0 and account.balance == Decimal("87.50")
    replay = credit_hold_capture(
        hold=CreditHold.objects.get(pk=hold.pk), amount=Decimal("12.5"), idempotency_key="c1"
    )
    assert replay.pk == entry.pk and replay.replayed
    with pytest.raises(HoldNotActive):
        credit_hold_capture(hold=hold, idempotency_key="c2")
    h2 = credit_hold_create(account=account, amount=Decimal("10"), idempotency_key="h2")
    with pytest.raises(IdempotencyConflict):
        credit_hold_capture(hold=h2, idempotency_key="c1")
    credit_hold_release(hold=h2)
    account.refresh_from_db()
    assert account.held == 0
    assert_ledger_consistent()
