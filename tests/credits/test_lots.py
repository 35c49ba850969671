"""The draw-down rule, one test per key of it, and what debits, refunds and reversals do to
lots: every credit-adding entry makes a lot, every debit records the lots it took from
(CreditAllocation), a reversal gives back to exactly those. Both write paths (`write_path`).
"""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from credits.exceptions import InsufficientCredits
from credits.models import CreditLot, CreditTransaction, EntryKind, LotCategory
from credits.services import (
    credit_adjust,
    credit_grant,
    credit_hold_create,
    credit_refund,
    credit_reverse,
    credit_spend,
)
from tests.helpers import assert_ledger_consistent, ledger_state

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("write_path")]


def grant(account, amount, key, **terms):
    """A grant (a purchase with kind="purchase") and the lot it made."""
    entry = credit_grant(account=account, amount=Decimal(amount), idempotency_key=key, **terms)
    return CreditLot.objects.get(entry_id=entry.pk)


def taken(entry):
    """(lot id, amount) of each allocation of the entry, in the order it drew them."""
    return list(entry.allocations.order_by("id").values_list("lot_id", "amount"))


def remaining(*lots):
    return [CreditLot.objects.get(pk=lot.pk).remaining for lot in lots]


def in_days(days):
    return timezone.now() + timedelta(days=days)


def test_every_credit_adding_entry_makes_a_lot_of_its_kind_s_category(account, staff_user):
    # when
    paid = grant(account, "10", "buy", kind=EntryKind.PURCHASE)
    promotional = grant(account, "5", "gift")
    monthly = grant(account, "7", "month", kind=EntryKind.MONTHLY_GRANT)
    migration = grant(account, "3", "moved", kind=EntryKind.MIGRATION)
    paid_migration = grant(account, "2", "usd", kind=EntryKind.MIGRATION, source="usd_balance")
    adjusted = credit_adjust(
        account=account, amount=Decimal("4"), idempotency_key="adj", actor=staff_user, reason="x"
    )

    # then each is a lot of its whole amount, of the category the settings give its kind
    lots = [paid, promotional, monthly, migration, paid_migration, adjusted.lot]
    assert [(lot.category, lot.amount, lot.remaining) for lot in lots] == [
        (LotCategory.PAID, Decimal("10.00"), Decimal("10.00")),
        (LotCategory.PROMOTIONAL, Decimal("5.00"), Decimal("5.00")),
        (LotCategory.MONTHLY, Decimal("7.00"), Decimal("7.00")),
        (LotCategory.MIGRATION, Decimal("3.00"), Decimal("3.00")),
        (LotCategory.PAID, Decimal("2.00"), Decimal("2.00")),
        (LotCategory.PROMOTIONAL, Decimal("4.00"), Decimal("4.00")),
    ]
    assert all(lot.expires_at is None for lot in lots)
    assert_ledger_consistent()


def test_promotional_credits_are_spent_before_paid_ones(account):
    # given a purchase, then a newer promotional grant
    paid = grant(account, "100", "buy", kind=EntryKind.PURCHASE)
    promotional = grant(account, "50", "gift")

    # when
    spend = credit_spend(account=account, amount=Decimal("70"), idempotency_key="spend")

    # then the promotional lot went first, the paid one paid the rest
    assert taken(spend) == [(promotional.pk, Decimal("50.00")), (paid.pk, Decimal("20.00"))]
    assert remaining(promotional, paid) == [Decimal("0.00"), Decimal("80.00")]
    assert_ledger_consistent()


def test_migration_credits_go_after_free_ones_and_before_paid_ones(account):
    # given
    paid = grant(account, "10", "buy", kind=EntryKind.PURCHASE)
    migration = grant(account, "10", "moved", kind=EntryKind.MIGRATION)
    monthly = grant(account, "10", "month", kind=EntryKind.MONTHLY_GRANT)

    # when
    spend = credit_spend(account=account, amount=Decimal("25"), idempotency_key="spend")

    # then
    assert taken(spend) == [
        (monthly.pk, Decimal("10.00")),
        (migration.pk, Decimal("10.00")),
        (paid.pk, Decimal("5.00")),
    ]


@pytest.mark.parametrize("monthly_days, promotional_days", [(10, 5), (5, 10)])
def test_monthly_and_promotional_credits_tie_broken_by_soonest_expiry(
    account, monthly_days, promotional_days
):
    # given a monthly and a promotional lot (one rank) expiring at different times
    monthly = grant(
        account, "10", "month", kind=EntryKind.MONTHLY_GRANT, expires_at=in_days(monthly_days)
    )
    promotional = grant(account, "10", "gift", expires_at=in_days(promotional_days))

    # when
    spend = credit_spend(account=account, amount=Decimal("12"), idempotency_key="spend")

    # then the one that expires sooner went first, whatever its category
    first, second = sorted([monthly, promotional], key=lambda lot: lot.expires_at)
    assert taken(spend) == [(first.pk, Decimal("10.00")), (second.pk, Decimal("2.00"))]


def test_soonest_expiry_goes_first_and_lots_that_never_expire_last(account):
    # given, oldest first: a lot that never expires, one in 30 days, one in 3 days
    never = grant(account, "10", "never")
    later = grant(account, "10", "later", expires_at=in_days(30))
    sooner = grant(account, "10", "sooner", expires_at=in_days(3))

    # when
    spend = credit_spend(account=account, amount=Decimal("25"), idempotency_key="spend")

    # then
    assert taken(spend) == [
        (sooner.pk, Decimal("10.00")),
        (later.pk, Decimal("10.00")),
        (never.pk, Decimal("5.00")),
    ]
    assert remaining(never, later, sooner) == [Decimal("5.00"), Decimal("0.00"), Decimal("0.00")]


def test_lower_priority_goes_first_among_lots_of_one_rank_and_expiry(account):
    # given an older lot of priority 5 and a newer one of priority 1, same category and expiry
    expiry = in_days(7)
    five = grant(account, "10", "five", priority=5, expires_at=expiry)
    one = grant(account, "10", "one", priority=1, expires_at=expiry)

    # when
    spend = credit_spend(account=account, amount=Decimal("15"), idempotency_key="spend")

    # then
    assert taken(spend) == [(one.pk, Decimal("10.00")), (five.pk, Decimal("5.00"))]


def test_oldest_goes_first_among_equal_lots(account):
    # given three lots alike but for their age
    lots = [grant(account, "10", f"lot-{index}") for index in range(3)]

    # when
    spend = credit_spend(account=account, amount=Decimal("15"), idempotency_key="spend")

    # then
    assert taken(spend) == [(lots[0].pk, Decimal("10.00")), (lots[1].pk, Decimal("5.00"))]


def test_the_category_order_is_a_setting(account, settings):
    # given paid credits ranked before promotional ones
    settings.CREDITS_DRAW_DOWN_RANKS = {"paid": 0, "promotional": 1, "monthly": 1, "migration": 1}
    promotional = grant(account, "10", "gift")
    paid = grant(account, "10", "buy", kind=EntryKind.PURCHASE)

    # when
    spend = credit_spend(account=account, amount=Decimal("12"), idempotency_key="spend")

    # then
    assert taken(spend) == [(paid.pk, Decimal("10.00")), (promotional.pk, Decimal("2.00"))]


def test_allocations_answer_which_purchase_paid_for_a_spend(account):
    # given two purchases and a promotional grant
    grant(account, "30", "buy-1", kind=EntryKind.PURCHASE)
    grant(account, "30", "buy-2", kind=EntryKind.PURCHASE)
    grant(account, "10", "gift")

    # when a spend takes the gift, all of the first purchase and some of the second
    spend = credit_spend(account=account, amount=Decimal("45"), idempotency_key="spend")

    # then the purchases that paid for it, and how much each paid
    paid_by = (
        CreditTransaction.objects.filter(lot__allocations__entry=spend, kind=EntryKind.PURCHASE)
        .order_by("pk")
        .values_list("idempotency_key", "lot__allocations__amount")
    )
    assert list(paid_by) == [("buy-1", Decimal("30.00")), ("buy-2", Decimal("5.00"))]


def test_a_refund_of_a_purchase_takes_its_own_lot_first(account):
    # given a promotional grant and two purchases
    promotional = grant(account, "50", "gift")
    first = grant(account, "100", "buy-1", kind=EntryKind.PURCHASE)
    second = grant(account, "100", "buy-2", kind=EntryKind.PURCHASE)

    # when the second purchase is refunded in part
    refund = credit_refund(
        account=account,
        amount=Decimal("30"),
        idempotency_key="refund",
        reason="money back",
        purchase=second.entry,
    )

    # then its lot gave the credits, not the promotional one the rule would take first
    assert taken(refund) == [(second.pk, Decimal("30.00"))]
    assert remaining(promotional, first, second) == [
        Decimal("50.00"),
        Decimal("100.00"),
        Decimal("70.00"),
    ]
    assert_ledger_consistent()


def test_a_refund_beyond_its_purchase_s_lot_takes_the_rest_by_the_rule(account):
    # given a purchase of which a spend took 80 (after the gift's 20)
    promotional = grant(account, "20", "gift")
    purchase = grant(account, "100", "buy", kind=EntryKind.PURCHASE)
    other = grant(account, "100", "buy-2", kind=EntryKind.PURCHASE)
    credit_spend(account=account, amount=Decimal("100"), idempotency_key="spend")
    assert remaining(promotional, purchase, other) == [
        Decimal("0.00"),
        Decimal("20.00"),
        Decimal("100.00"),
    ]

    # when the whole purchase is refunded
    refund = credit_refund(
        account=account,
        amount=Decimal("100"),
        idempotency_key="refund",
        reason="money back",
        purchase=purchase.entry,
    )

    # then its lot's 20 went first, the rule took the other 80
    assert taken(refund) == [(purchase.pk, Decimal("20.00")), (other.pk, Decimal("80.00"))]
    assert_ledger_consistent()


def test_a_refund_without_purchase_draws_by_the_rule(account):
    promotional = grant(account, "50", "gift")
    paid = grant(account, "100", "buy", kind=EntryKind.PURCHASE)

    refund = credit_refund(
        account=account, amount=Decimal("60"), idempotency_key="refund", reason="money back"
    )

    assert taken(refund) == [(promotional.pk, Decimal("50.00")), (paid.pk, Decimal("10.00"))]


def test_a_reversal_of_a_spend_gives_back_to_exactly_the_lots_it_took(account):
    # given a spend over two lots, and a later spend from the paid lot
    promotional = grant(account, "50", "gift", expires_at=in_days(5))
    paid = grant(account, "100", "buy", kind=EntryKind.PURCHASE)
    spend = credit_spend(account=account, amount=Decimal("70"), idempotency_key="spend")
    credit_spend(account=account, amount=Decimal("10"), idempotency_key="later")
    assert remaining(promotional, paid) == [Decimal("0.00"), Decimal("70.00")]

    # when the first spend is reversed
    reversal = credit_reverse(entry=spend, idempotency_key="reverse")

    # then each lot got back what that spend took from it, recorded as negative allocations
    assert taken(reversal) == [(promotional.pk, Decimal("-50.00")), (paid.pk, Decimal("-20.00"))]
    assert remaining(promotional, paid) == [Decimal("50.00"), Decimal("90.00")]
    assert_ledger_consistent()


def test_a_reversal_of_a_grant_takes_its_own_lot_first(account):
    # given a gift the rule would draw first, and a purchase
    promotional = grant(account, "50", "gift")
    purchase = grant(account, "100", "buy", kind=EntryKind.PURCHASE)

    # when the purchase is reversed
    reversal = credit_reverse(entry=purchase.entry, idempotency_key="reverse")

    # then its own lot went, the gift stayed
    assert taken(reversal) == [(purchase.pk, Decimal("100.00"))]
    assert remaining(promotional, purchase) == [Decimal("50.00"), Decimal("0.00")]
    assert_ledger_consistent()


def test_a_reversal_of_a_partly_spent_grant_takes_its_lot_then_the_rule(account):
    # given a gift of 50 of which a spend took 30, and a purchase
    promotional = grant(account, "50", "gift")
    purchase = grant(account, "100", "buy", kind=EntryKind.PURCHASE)
    credit_spend(account=account, amount=Decimal("30"), idempotency_key="spend")

    # when the gift is reversed
    reversal = credit_reverse(entry=promotional.entry, idempotency_key="reverse")

    # then
    assert taken(reversal) == [(promotional.pk, Decimal("20.00")), (purchase.pk, Decimal("30.00"))]
    assert remaining(promotional, purchase) == [Decimal("0.00"), Decimal("70.00")]
    assert_ledger_consistent()


def test_spends_check_available_credits_not_the_balance(account):
    # given 100 credits of which a hold reserves 60
    grant(account, "100", "gift")
    credit_hold_create(account=account, amount=Decimal("60"), idempotency_key="hold")
    before = ledger_state(account)

    # when a spend asks for more than the 40 available
    with pytest.raises(InsufficientCredits) as refused:
        credit_spend(account=account, amount=Decimal("41"), idempotency_key="too-much")

    # then it is refused with the figures, and nothing changed
    assert refused.value.details == {
        "balance": "100.00",
        "held": "60.00",
        "available": "40.00",
        "requested": "41.00",
    }
    assert ledger_state(account) == before
    # and all that is available can be spent
    credit_spend(account=account, amount=Decimal("40"), idempotency_key="all-available")
    account.refresh_from_db()
    assert (account.balance, account.held) == (Decimal("60.00"), Decimal("60.00"))
    assert_ledger_consistent()


def test_a_partial_refund_takes_only_the_available_credits(account):
    # given a purchase of 100 of which a hold reserves 70
    purchase = grant(account, "100", "buy", kind=EntryKind.PURCHASE)
    credit_hold_create(account=account, amount=Decimal("70"), idempotency_key="hold")

    # when 50 is refunded, partial allowed
    refund = credit_refund(
        account=account,
        amount=Decimal("50"),
        idempotency_key="refund",
        reason="money back",
        allow_partial=True,
        purchase=purchase.entry,
    )

    # then only the 30 available went, and the shortfall is recorded
    assert refund.amount == Decimal("-30.00")
    assert refund.metadata["shortfall"] == "20.00"
    assert taken(refund) == [(purchase.pk, Decimal("30.00"))]
    account.refresh_from_db()
    assert (account.balance, account.held) == (Decimal("70.00"), Decimal("70.00"))
    assert_ledger_consistent()


def test_a_reversal_of_a_grant_checks_available_credits(account):
    # given a grant whose credits a hold reserves in part
    lot = grant(account, "100", "gift")
    credit_hold_create(account=account, amount=Decimal("1"), idempotency_key="hold")
    before = ledger_state(account)

    # when / then
    with pytest.raises(InsufficientCredits):
        credit_reverse(entry=lot.entry, idempotency_key="reverse")
    assert ledger_state(account) == before
    assert remaining(lot) == [Decimal("100.00")]

    # and with allow_partial it takes what is available
    reversal = credit_reverse(entry=lot.entry, idempotency_key="reverse", allow_partial=True)
    assert reversal.amount == Decimal("-99.00")
    assert remaining(lot) == [Decimal("1.00")]
    assert_ledger_consistent()
