"""Holds through the services: reserve, capture (whole or part), release, expiry; each
idempotent, each refusal changing nothing. Both write paths (`write_path`)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from credits.exceptions import (
    HoldNotActive,
    IdempotencyConflict,
    InsufficientCredits,
    InvalidAmount,
)
from credits.models import (
    CreditAccount,
    CreditAllocation,
    CreditHold,
    CreditLot,
    CreditTransaction,
    EntryKind,
    HoldStatus,
)
from credits.services import (
    credit_account_open,
    credit_grant,
    credit_hold_capture,
    credit_hold_create,
    credit_hold_release,
    credit_holds_expire,
    credit_lots_expire,
    credit_spend,
)
from tests.factories import UserFactory
from tests.helpers import assert_ledger_consistent, fund, table_contents

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("write_path")]

TABLES = (CreditAccount, CreditTransaction, CreditLot, CreditAllocation, CreditHold)


@pytest.fixture
def funded(account):
    return fund(account, "100")


def hold(account, amount="30", key="hold", **kwargs):
    return credit_hold_create(
        account=account, amount=Decimal(amount), idempotency_key=key, **kwargs
    )


def figures(account):
    account.refresh_from_db()
    return account.balance, account.held


def test_a_hold_reserves_credits_without_moving_the_balance(funded):
    # when
    created = hold(funded, "30", description="render job")

    # then
    created.refresh_from_db()
    assert (created.status, created.amount, created.captured) == (
        HoldStatus.ACTIVE,
        Decimal("30.00"),
        Decimal("0.00"),
    )
    assert created.description == "render job"
    assert figures(funded) == (Decimal("100.00"), Decimal("30.00"))
    assert CreditTransaction.objects.filter(account=funded).count() == 1
    assert_ledger_consistent()


def test_a_hold_expires_after_its_ttl_or_the_default(funded, settings):
    settings.CREDITS_HOLD_DEFAULT_TTL = 600
    before = timezone.now()
    default = hold(funded, "1", "default")
    custom = hold(funded, "1", "custom", ttl_seconds=60)
    after = timezone.now()

    assert before + timedelta(seconds=600) <= default.expires_at <= after + timedelta(seconds=600)
    assert before + timedelta(seconds=60) <= custom.expires_at <= after + timedelta(seconds=60)


@pytest.mark.parametrize("ttl", [0, -1, 7 * 24 * 3600 + 1, 1.5, "60", True])
def test_a_ttl_out_of_range_is_refused(funded, ttl):
    before = table_contents(*TABLES)
    with pytest.raises(InvalidAmount):
        hold(funded, ttl_seconds=ttl)
    assert table_contents(*TABLES) == before


def test_holds_cannot_reserve_more_than_is_available(funded):
    # given a hold of 70 of the 100
    hold(funded, "70", "first")
    before = table_contents(*TABLES)

    # when another asks for 31
    with pytest.raises(InsufficientCredits) as refused:
        hold(funded, "31", "second")

    # then it is refused with the figures, and nothing changed
    assert refused.value.details == {
        "balance": "100.00",
        "held": "70.00",
        "available": "30.00",
        "requested": "31.00",
    }
    assert table_contents(*TABLES) == before
    # and the 30 available can still be held
    hold(funded, "30", "third")
    assert figures(funded) == (Decimal("100.00"), Decimal("100.00"))
    assert_ledger_consistent()


def test_a_hold_replayed_with_its_key_is_the_same_hold(funded):
    first = hold(funded, "30")
    before = table_contents(*TABLES)

    again = hold(funded, "30")

    assert again.pk == first.pk
    assert again.replayed
    assert table_contents(*TABLES) == before


def test_a_hold_key_reused_for_another_amount_or_account_is_a_conflict(funded):
    hold(funded, "30")
    other = fund(credit_account_open(user=UserFactory()), "100", key="fund-other")
    before = table_contents(*TABLES)

    with pytest.raises(IdempotencyConflict):
        hold(funded, "31")
    with pytest.raises(IdempotencyConflict):
        hold(other, "30")
    assert table_contents(*TABLES) == before


def test_a_replay_of_a_hold_that_took_the_last_credits_is_a_replay(funded):
    # given a hold of all the credits: its replay meets too little available, and must still
    # be answered as the replay it is
    first = hold(funded, "100")
    again = hold(funded, "100")
    assert (again.pk, again.replayed) == (first.pk, True)


def test_a_capture_spends_the_hold_by_the_draw_down_rule(funded):
    # given a hold over a promotional lot and a paid one
    credit_grant(
        account=funded, amount=Decimal("50"), idempotency_key="buy", kind=EntryKind.PURCHASE
    )
    held = hold(funded, "120")

    # when it is captured whole
    spend = credit_hold_capture(hold=held, idempotency_key="capture")

    # then one spend of its amount, the gift first, and nothing held
    assert (spend.kind, spend.amount, spend.source) == (
        EntryKind.SPEND,
        Decimal("-120.00"),
        "hold",
    )
    assert list(spend.allocations.values_list("lot__entry__idempotency_key", "amount")) == [
        ("fund", Decimal("100.00")),
        ("buy", Decimal("20.00")),
    ]
    held.refresh_from_db()
    assert (held.status, held.captured, held.entry_id) == (
        HoldStatus.CAPTURED,
        Decimal("120.00"),
        spend.pk,
    )
    assert figures(funded) == (Decimal("30.00"), Decimal("0.00"))
    funded.refresh_from_db()
    assert funded.total_spent == Decimal("120.00")
    assert_ledger_consistent()


def test_a_partial_capture_spends_part_and_frees_the_rest(funded):
    held = hold(funded, "30")
    hold(funded, "10", "other")

    spend = credit_hold_capture(hold=held, idempotency_key="capture", amount=Decimal("12.50"))

    assert spend.amount == Decimal("-12.50")
    held.refresh_from_db()
    assert (held.status, held.captured) == (HoldStatus.CAPTURED, Decimal("12.50"))
    # the other hold's 10 is still reserved
    assert figures(funded) == (Decimal("87.50"), Decimal("10.00"))
    assert_ledger_consistent()


def test_a_capture_above_the_hold_is_refused(funded):
    held = hold(funded, "30")
    before = table_contents(*TABLES)

    with pytest.raises(InvalidAmount):
        credit_hold_capture(hold=held, idempotency_key="capture", amount=Decimal("30.01"))

    assert table_contents(*TABLES) == before


def test_a_capture_replayed_with_its_key_returns_its_entry(funded):
    held = hold(funded, "30")
    spend = credit_hold_capture(hold=held, idempotency_key="capture", amount=Decimal("20"))
    before = table_contents(*TABLES)

    again = credit_hold_capture(hold=held, idempotency_key="capture", amount=Decimal("20"))
    without_amount = credit_hold_capture(hold=held, idempotency_key="capture")

    assert (again.pk, again.replayed) == (spend.pk, True)
    assert without_amount.pk == spend.pk
    assert table_contents(*TABLES) == before


def test_a_capture_key_replayed_with_another_amount_is_a_conflict(funded):
    # given a captured hold
    held = hold(funded, "30")
    credit_hold_capture(hold=held, idempotency_key="capture", amount=Decimal("20"))
    before = table_contents(*TABLES)

    # when its key comes again with another amount: the same key for another operation
    with pytest.raises(IdempotencyConflict):
        credit_hold_capture(hold=held, idempotency_key="capture", amount=Decimal("21"))

    # then
    assert table_contents(*TABLES) == before


def test_a_captured_hold_captured_under_another_key_is_not_active(funded):
    held = hold(funded, "30")
    credit_hold_capture(hold=held, idempotency_key="capture")
    before = table_contents(*TABLES)

    with pytest.raises(HoldNotActive) as refused:
        credit_hold_capture(hold=held, idempotency_key="capture-2")

    assert refused.value.details["status"] == HoldStatus.CAPTURED
    assert table_contents(*TABLES) == before


def test_a_capture_under_a_key_another_entry_has_is_a_conflict(funded):
    # given a spend of 30 and an active hold of 30, whose capture reuses the spend's key
    credit_spend(account=funded, amount=Decimal("30"), idempotency_key="used")
    held = hold(funded, "30")
    before = table_contents(*TABLES)

    with pytest.raises(IdempotencyConflict):
        credit_hold_capture(hold=held, idempotency_key="used")

    # then the hold is still active, its credits still held
    assert table_contents(*TABLES) == before


def test_a_release_frees_the_hold(funded, staff_user):
    held = hold(funded, "30")

    released = credit_hold_release(hold=held, actor=staff_user, reason="job aborted")

    released.refresh_from_db()
    assert (released.status, released.released_by, released.reason) == (
        HoldStatus.RELEASED,
        staff_user,
        "job aborted",
    )
    assert released.resolved_at is not None
    assert figures(funded) == (Decimal("100.00"), Decimal("0.00"))
    assert_ledger_consistent()


def test_a_release_replayed_changes_nothing(funded):
    held = hold(funded, "30")
    credit_hold_release(hold=held)
    before = table_contents(*TABLES)

    again = credit_hold_release(hold=held)

    assert again.replayed
    assert table_contents(*TABLES) == before


@pytest.mark.parametrize("resolve", ["capture", "expire"])
def test_a_hold_no_longer_active_cannot_be_released_nor_captured(funded, resolve):
    held = hold(funded, "30")
    if resolve == "capture":
        credit_hold_capture(hold=held, idempotency_key="capture")
    else:
        assert credit_holds_expire(now=held.expires_at) == 1
    before = table_contents(*TABLES)

    with pytest.raises(HoldNotActive):
        credit_hold_release(hold=held)
    with pytest.raises(HoldNotActive):
        credit_hold_capture(hold=held, idempotency_key="late-capture")

    assert table_contents(*TABLES) == before


def test_a_released_hold_cannot_be_captured(funded):
    held = hold(funded, "30")
    credit_hold_release(hold=held)
    before = table_contents(*TABLES)

    with pytest.raises(HoldNotActive):
        credit_hold_capture(hold=held, idempotency_key="capture")

    assert table_contents(*TABLES) == before


def test_a_hold_past_its_expiry_cannot_be_captured_but_can_be_released(funded):
    # given a hold whose time is up, before the beat task ran
    held = hold(funded, "30", ttl_seconds=1)
    CreditHold.objects.filter(pk=held.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    before = table_contents(*TABLES)

    with pytest.raises(HoldNotActive) as refused:
        credit_hold_capture(hold=held, idempotency_key="capture")

    assert refused.value.details["status"] == HoldStatus.EXPIRED
    assert table_contents(*TABLES) == before
    credit_hold_release(hold=held)
    assert figures(funded) == (Decimal("100.00"), Decimal("0.00"))


def test_the_beat_task_expires_due_holds_once_and_leaves_the_rest(funded):
    # given three holds: two due at `now`, one later
    now = timezone.now() + timedelta(hours=2)
    due = [hold(funded, "10", "a", ttl_seconds=60), hold(funded, "20", "b", ttl_seconds=3600)]
    later = hold(funded, "30", "c", ttl_seconds=3 * 3600)

    # when
    assert credit_holds_expire(now=now) == 2
    assert credit_holds_expire(now=now) == 0

    # then
    for expired in due:
        expired.refresh_from_db()
        assert (expired.status, expired.resolved_at) == (HoldStatus.EXPIRED, now)
    later.refresh_from_db()
    assert later.status == HoldStatus.ACTIVE
    assert figures(funded) == (Decimal("100.00"), Decimal("30.00"))
    assert_ledger_consistent()


def test_the_beat_task_takes_at_most_its_limit(funded):
    now = timezone.now() + timedelta(hours=2)
    for index in range(3):
        hold(funded, "1", f"h{index}")

    assert credit_holds_expire(now=now, limit=2) == 2
    assert credit_holds_expire(now=now, limit=2) == 1
    assert figures(funded) == (Decimal("100.00"), Decimal("0.00"))


def test_exactly_the_available_credits_can_be_held_spent_and_expired(account):
    # given 0.30 of which a hold reserves 0.10: on SQLite, which keeps decimals as binary
    # floats, 0.30 - 0.10 is a hair below 0.20, so an unrounded check would refuse 0.20
    fund(account, "0.30")
    hold(account, "0.10", "first")

    # when a second hold takes exactly the 0.20 available, and is released
    second = hold(account, "0.20", "second")
    credit_hold_release(hold=second)
    # and a spend takes exactly the 0.20 available
    spend = credit_spend(account=account, amount=Decimal("0.20"), idempotency_key="spend")

    # then each went through
    assert spend.amount == Decimal("-0.20")
    assert figures(account) == (Decimal("0.10"), Decimal("0.10"))
    assert_ledger_consistent()


def test_a_lot_expires_down_to_exactly_what_holds_reserve(account):
    # given a lot of 0.30 due to expire, of which a hold reserves 0.10
    now = timezone.now()
    credit_grant(account=account, amount=Decimal("0.30"), idempotency_key="gift", expires_at=now)
    hold(account, "0.10")

    # when the task runs
    [expired] = credit_lots_expire(now=now)

    # then it took the 0.20 available, down to exactly the held 0.10
    assert expired.amount == Decimal("-0.20")
    assert figures(account) == (Decimal("0.10"), Decimal("0.10"))
    assert_ledger_consistent()
