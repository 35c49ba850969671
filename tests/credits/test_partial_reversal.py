"""credit_reverse(amount=...): a reversal of part of an entry, at most the entry's amount, and
still the entry's one reversal. A reversal of credits added takes from the entry's own lot
first; a partial reversal of a spend gives back to the lots the spend took from."""

from decimal import Decimal

import pytest

from credits.exceptions import AlreadyReversed, IdempotencyConflict, InvalidAmount
from credits.models import CreditLot, CreditTransaction, EntryKind
from credits.services import credit_grant, credit_reverse, credit_spend
from tests.helpers import assert_ledger_consistent, fund, ledger_state

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("write_path")]


@pytest.fixture
def two_lots(account):
    """100.00 granted (promotional, drawn first), then 50.00 bought (paid)."""
    fund(account)
    credit_grant(
        account=account,
        amount=Decimal("50.00"),
        idempotency_key="bought",
        kind=EntryKind.PURCHASE,
    )
    return account


def remaining(key: str) -> Decimal:
    return CreditLot.objects.get(entry__idempotency_key=key).remaining


def test_a_partial_reversal_of_a_grant_takes_from_its_own_lot(two_lots):
    # given
    purchase = CreditTransaction.objects.get(idempotency_key="bought")
    # when
    reversal = credit_reverse(entry=purchase, idempotency_key="rev", amount=Decimal("20.00"))
    # then
    two_lots.refresh_from_db()
    assert reversal.amount == Decimal("-20.00")
    assert reversal.metadata["partial_of"] == "50.00"
    assert (remaining("bought"), remaining("fund")) == (Decimal("30.00"), Decimal("100.00"))
    assert (two_lots.balance, two_lots.total_earned) == (Decimal("130.00"), Decimal("130.00"))
    assert_ledger_consistent()


def test_a_partial_reversal_beyond_its_own_lot_takes_the_rest_by_the_rule(two_lots):
    # given: 30.00 of the purchase spent (the promotional lot first, then the purchase)
    credit_spend(account=two_lots, amount=Decimal("130.00"), idempotency_key="spent")
    purchase = CreditTransaction.objects.get(idempotency_key="bought")
    assert remaining("bought") == Decimal("20.00")
    # when: 20.00 left of its lot, 25.00 reversed: the account has no other lot left
    reversal = credit_reverse(
        entry=purchase, idempotency_key="rev", amount=Decimal("25.00"), allow_partial=True
    )
    # then: what is available, and the shortfall recorded
    two_lots.refresh_from_db()
    assert reversal.amount == Decimal("-20.00")
    assert reversal.metadata["shortfall"] == "5.00"
    assert two_lots.balance == Decimal("0.00")
    assert_ledger_consistent()


def test_a_partial_reversal_of_a_spend_gives_part_back(two_lots):
    # given
    spend = credit_spend(account=two_lots, amount=Decimal("120.00"), idempotency_key="spent")
    # when
    reversal = credit_reverse(entry=spend, idempotency_key="rev", amount=Decimal("30.00"))
    # then: given back to the lots the spend took from, in the order it took them
    two_lots.refresh_from_db()
    assert reversal.amount == Decimal("30.00")
    assert (remaining("fund"), remaining("bought")) == (Decimal("30.00"), Decimal("30.00"))
    assert (two_lots.balance, two_lots.total_spent) == (Decimal("60.00"), Decimal("90.00"))
    assert_ledger_consistent()


@pytest.mark.parametrize("amount", [Decimal("50.01"), Decimal("0"), Decimal("-1.00")])
def test_a_reversal_of_more_than_the_entry_or_of_nothing_is_refused(two_lots, amount):
    # given
    purchase = CreditTransaction.objects.get(idempotency_key="bought")
    before = ledger_state(two_lots)
    # when / then
    with pytest.raises(InvalidAmount):
        credit_reverse(entry=purchase, idempotency_key="rev", amount=amount)
    assert ledger_state(two_lots) == before


def test_a_partly_reversed_entry_is_reversed_at_most_once(two_lots):
    # given
    purchase = CreditTransaction.objects.get(idempotency_key="bought")
    first = credit_reverse(entry=purchase, idempotency_key="rev", amount=Decimal("10.00"))
    before = ledger_state(two_lots)
    # when / then: a replay returns it; another amount under its key is a conflict; another
    # reversal of the rest is refused
    replay = credit_reverse(entry=purchase, idempotency_key="rev", amount=Decimal("10.00"))
    assert (replay.pk, replay.replayed) == (first.pk, True)
    with pytest.raises(IdempotencyConflict):
        credit_reverse(entry=purchase, idempotency_key="rev", amount=Decimal("20.00"))
    with pytest.raises(AlreadyReversed):
        credit_reverse(entry=purchase, idempotency_key="rev-2", amount=Decimal("40.00"))
    assert ledger_state(two_lots) == before
    assert_ledger_consistent()
