"""credits.services: every writer, its replays, conflicts and refusals.

A refused operation must change nothing: the balance, the totals and the entry count are
checked after every refusal. Every test runs on both write paths (`write_path`).
"""

from decimal import Decimal

import pytest

from credits.exceptions import (
    AlreadyReversed,
    IdempotencyConflict,
    InsufficientCredits,
    InvalidAmount,
    NotReversible,
    ReasonRequired,
)
from credits.models import CreditTransaction, EntryKind
from credits.selectors import accounts_out_of_balance, ledger_sum
from credits.services import (
    credit_account_open,
    credit_adjust,
    credit_grant,
    credit_refund,
    credit_reverse,
    credit_spend,
)
from tests.helpers import fund, ledger_state

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("write_path")]


def assert_consistent(account):
    account.refresh_from_db()
    assert account.balance == ledger_sum(account=account)
    assert account.balance == account.total_earned - account.total_spent
    assert not accounts_out_of_balance().exists()


@pytest.fixture
def funded(account):
    return fund(account)


def test_open_account_is_idempotent(user):
    first = credit_account_open(user=user)
    second = credit_account_open(user=user)
    assert first.pk == second.pk
    assert first.balance == Decimal("0.00")


def test_grant_records_the_entry_and_moves_the_balance(account, staff_user):
    # when
    entry = credit_grant(
        account=account,
        amount=Decimal("20"),
        idempotency_key="grant-1",
        actor=staff_user,
        reason="goodwill",
        source="support",
        metadata={"ticket": 7},
    )
    # then
    account.refresh_from_db()
    assert account.balance == Decimal("20.00")
    assert account.total_earned == Decimal("20.00")
    assert account.total_spent == Decimal("0.00")
    assert (entry.kind, entry.amount) == (EntryKind.GRANT, Decimal("20.00"))
    assert (entry.balance_before, entry.balance_after) == (Decimal("0.00"), Decimal("20.00"))
    assert entry.actor == staff_user
    assert entry.reason == "goodwill"
    assert entry.metadata == {"ticket": 7}
    assert not entry.replayed
    assert_consistent(account)


@pytest.mark.parametrize("kind", [EntryKind.PURCHASE, EntryKind.MIGRATION, EntryKind.MONTHLY_GRANT])
def test_grant_writes_the_crediting_kinds(account, kind):
    entry = credit_grant(account=account, amount=Decimal("5"), idempotency_key=kind, kind=kind)
    assert entry.kind == kind
    assert_consistent(account)


@pytest.mark.parametrize("kind", [EntryKind.SPEND, EntryKind.REFUND, EntryKind.HISTORY])
def test_grant_refuses_kinds_that_do_not_credit(account, kind):
    before = ledger_state(account)
    with pytest.raises(InvalidAmount):
        credit_grant(account=account, amount=Decimal("5"), idempotency_key="k", kind=kind)
    assert ledger_state(account) == before


def test_spend_takes_credits_and_counts_them_as_spent(funded):
    entry = credit_spend(account=funded, amount=Decimal("0.01"), idempotency_key="s")
    funded.refresh_from_db()
    assert entry.amount == Decimal("-0.01")
    assert entry.balance_after == Decimal("99.99")
    assert funded.balance == Decimal("99.99")
    assert funded.total_spent == Decimal("0.01")
    assert funded.total_earned == Decimal("100.00")
    assert_consistent(funded)


def test_spend_of_the_whole_balance_leaves_zero(funded):
    credit_spend(account=funded, amount=Decimal("100"), idempotency_key="all")
    funded.refresh_from_db()
    assert funded.balance == Decimal("0.00")


def test_spend_beyond_the_balance_is_refused_and_changes_nothing(funded):
    before = ledger_state(funded)
    with pytest.raises(InsufficientCredits) as refused:
        credit_spend(account=funded, amount=Decimal("100.01"), idempotency_key="over")
    assert refused.value.details == {
        "balance": "100.00",
        "held": "0.00",
        "available": "100.00",
        "requested": "100.01",
    }
    assert ledger_state(funded) == before


def test_replay_returns_the_original_entry_and_changes_nothing(funded):
    first = credit_spend(account=funded, amount=Decimal("3"), idempotency_key="once")
    before = ledger_state(funded)
    again = credit_spend(account=funded, amount=Decimal("3"), idempotency_key="once")
    assert again.pk == first.pk
    assert again.replayed
    assert ledger_state(funded) == before


def test_replay_after_the_balance_ran_out_is_still_a_replay(account):
    credit_grant(account=account, amount=Decimal("3"), idempotency_key="fund")
    first = credit_spend(account=account, amount=Decimal("3"), idempotency_key="all")
    assert credit_spend(account=account, amount=Decimal("3"), idempotency_key="all").pk == first.pk


@pytest.mark.parametrize(
    "call",
    [
        lambda account, other: credit_spend(
            account=account, amount=Decimal("4"), idempotency_key="key"
        ),
        lambda account, other: credit_spend(
            account=other, amount=Decimal("3"), idempotency_key="key"
        ),
        lambda account, other: credit_grant(
            account=account, amount=Decimal("3"), idempotency_key="key"
        ),
    ],
    ids=["other-amount", "other-account", "other-kind"],
)
def test_key_reused_for_another_operation_is_a_conflict(funded, call):
    from tests.factories import UserFactory

    other = credit_account_open(user=UserFactory())
    credit_grant(account=other, amount=Decimal("50"), idempotency_key="fund-other")
    credit_spend(account=funded, amount=Decimal("3"), idempotency_key="key")
    before, before_other = ledger_state(funded), ledger_state(other)
    with pytest.raises(IdempotencyConflict):
        call(funded, other)
    assert ledger_state(funded) == before
    assert ledger_state(other) == before_other


@pytest.mark.parametrize(
    "amount",
    [
        Decimal("0"),
        Decimal("-1"),
        Decimal("1.005"),
        Decimal("1e12"),
        Decimal("NaN"),
        1.5,
        "5",
        True,
    ],
)
def test_bad_amounts_are_refused_and_change_nothing(funded, amount):
    before = ledger_state(funded)
    with pytest.raises(InvalidAmount):
        credit_spend(account=funded, amount=amount, idempotency_key="bad")
    with pytest.raises(InvalidAmount):
        credit_grant(account=funded, amount=amount, idempotency_key="bad")
    assert ledger_state(funded) == before


@pytest.mark.parametrize("key", ["", "   ", "k" * 201, None])
def test_bad_idempotency_keys_are_refused(funded, key):
    before = ledger_state(funded)
    with pytest.raises(InvalidAmount):
        credit_spend(account=funded, amount=Decimal("1"), idempotency_key=key)
    assert ledger_state(funded) == before


def test_int_amounts_are_accepted(account):
    entry = credit_grant(account=account, amount=7, idempotency_key="int")
    assert entry.amount == Decimal("7.00")


def test_refund_removes_credits_and_records_reason(funded, staff_user):
    entry = credit_refund(
        account=funded,
        amount=Decimal("30"),
        idempotency_key="refund",
        reason="customer asked",
        actor=staff_user,
    )
    funded.refresh_from_db()
    assert entry.kind == EntryKind.REFUND
    assert entry.amount == Decimal("-30.00")
    assert funded.balance == Decimal("70.00")
    assert funded.total_earned == Decimal("70.00")
    assert funded.total_spent == Decimal("0.00")
    assert (entry.actor, entry.reason) == (staff_user, "customer asked")
    assert_consistent(funded)


def test_refund_needs_a_reason(funded):
    before = ledger_state(funded)
    with pytest.raises(ReasonRequired):
        credit_refund(account=funded, amount=Decimal("1"), idempotency_key="r", reason=" ")
    assert ledger_state(funded) == before


def test_refund_beyond_the_balance_is_refused_unless_partial(funded):
    credit_spend(account=funded, amount=Decimal("80"), idempotency_key="spent")
    before = ledger_state(funded)
    with pytest.raises(InsufficientCredits):
        credit_refund(account=funded, amount=Decimal("50"), idempotency_key="r", reason="pack")
    assert ledger_state(funded) == before

    entry = credit_refund(
        account=funded, amount=Decimal("50"), idempotency_key="r", reason="pack", allow_partial=True
    )
    funded.refresh_from_db()
    assert entry.amount == Decimal("-20.00")
    assert entry.metadata == {"requested_amount": "-50.00", "shortfall": "30.00"}
    assert funded.balance == Decimal("0.00")
    # The replay matches on what was asked for, not on what could be taken.
    again = credit_refund(
        account=funded, amount=Decimal("50"), idempotency_key="r", reason="pack", allow_partial=True
    )
    assert again.pk == entry.pk and again.replayed
    assert_consistent(funded)


def test_partial_refund_of_an_empty_account_is_refused(account):
    with pytest.raises(InsufficientCredits):
        credit_refund(
            account=account,
            amount=Decimal("5"),
            idempotency_key="r",
            reason="x",
            allow_partial=True,
        )
    assert CreditTransaction.objects.count() == 0


def test_adjust_is_signed_and_needs_actor_and_reason(funded, staff_user):
    up = credit_adjust(
        account=funded, amount=Decimal("5"), idempotency_key="a1", actor=staff_user, reason="fix"
    )
    down = credit_adjust(
        account=funded, amount=Decimal("-15"), idempotency_key="a2", actor=staff_user, reason="fix"
    )
    funded.refresh_from_db()
    assert (up.amount, down.amount) == (Decimal("5.00"), Decimal("-15.00"))
    assert funded.balance == Decimal("90.00")
    assert down.source == "staff"
    before = ledger_state(funded)
    with pytest.raises(ReasonRequired):
        credit_adjust(
            account=funded, amount=Decimal("1"), idempotency_key="a3", actor=None, reason="fix"
        )
    with pytest.raises(ReasonRequired):
        credit_adjust(
            account=funded, amount=Decimal("1"), idempotency_key="a3", actor=staff_user, reason=""
        )
    with pytest.raises(InvalidAmount):
        credit_adjust(
            account=funded, amount=Decimal("0"), idempotency_key="a3", actor=staff_user, reason="x"
        )
    with pytest.raises(InsufficientCredits):
        credit_adjust(
            account=funded,
            amount=Decimal("-91"),
            idempotency_key="a3",
            actor=staff_user,
            reason="x",
        )
    assert ledger_state(funded) == before
    assert_consistent(funded)


def test_reverse_appends_the_opposite_once(funded, staff_user):
    spend = credit_spend(account=funded, amount=Decimal("10"), idempotency_key="s")
    # when
    reversal = credit_reverse(entry=spend, idempotency_key="rev", actor=staff_user, reason="bug")
    # then
    funded.refresh_from_db()
    assert reversal.kind == EntryKind.REVERSAL
    assert reversal.amount == Decimal("10.00")
    assert reversal.reverses == spend
    assert funded.balance == Decimal("100.00")
    # a reversed spend is no longer counted as spent
    assert funded.total_spent == Decimal("0.00")
    assert funded.total_earned == Decimal("100.00")
    assert credit_reverse(entry=spend, idempotency_key="rev").pk == reversal.pk
    before = ledger_state(funded)
    with pytest.raises(AlreadyReversed):
        credit_reverse(entry=spend, idempotency_key="rev-2")
    assert ledger_state(funded) == before
    assert_consistent(funded)


def test_reversals_and_history_are_not_reversible(funded):
    grant = CreditTransaction.objects.get(idempotency_key="fund")
    reversal = credit_reverse(entry=grant, idempotency_key="rev")
    with pytest.raises(NotReversible):
        credit_reverse(entry=reversal, idempotency_key="rev-rev")


def test_reversing_a_grant_that_was_spent_needs_partial(funded):
    grant = CreditTransaction.objects.get(idempotency_key="fund")
    credit_spend(account=funded, amount=Decimal("60"), idempotency_key="spent")
    before = ledger_state(funded)
    with pytest.raises(InsufficientCredits):
        credit_reverse(entry=grant, idempotency_key="rev")
    assert ledger_state(funded) == before
    reversal = credit_reverse(entry=grant, idempotency_key="rev", allow_partial=True)
    funded.refresh_from_db()
    assert reversal.amount == Decimal("-40.00")
    assert reversal.metadata["shortfall"] == "60.00"
    assert funded.balance == Decimal("0.00")
    assert funded.total_earned == Decimal("60.00")
    assert funded.total_spent == Decimal("60.00")
    assert_consistent(funded)


def test_service_updates_the_account_instance_it_was_given(funded):
    credit_spend(account=funded, amount=Decimal("1.5"), idempotency_key="s")
    assert funded.balance == Decimal("98.50")
    assert funded.total_spent == Decimal("1.50")


def test_cents_stay_exact_over_many_small_entries(account):
    # SQLite stores decimals as floats; the services keep every balance exact to the cent.
    for index in range(30):
        credit_grant(account=account, amount=Decimal("0.10"), idempotency_key=f"g{index}")
    for index in range(30):
        credit_spend(account=account, amount=Decimal("0.10"), idempotency_key=f"s{index}")
    account.refresh_from_db()
    assert account.balance == Decimal("0.00")
    assert_consistent(account)


ENTRY_FIELDS = [field.attname for field in CreditTransaction._meta.concrete_fields]


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"source": "api", "description": "d", "metadata": {"order": 7}, "reason": "r"},
        {"stripe_event_id": "evt_1", "migrated_from": "usd_balance", "metadata": {"a": "b"}},
    ],
    ids=["plain", "described", "referenced"],
)
def test_returned_entry_is_what_the_database_holds(account, staff_user, extra):
    # given: any combination of the optional columns (each gets its own statement on PostgreSQL)
    # when
    written = credit_grant(
        account=account, amount=Decimal("3.50"), idempotency_key="g", actor=staff_user, **extra
    )
    # then
    stored = CreditTransaction.objects.get(pk=written.pk)
    assert {f: getattr(written, f) for f in ENTRY_FIELDS} == {
        f: getattr(stored, f) for f in ENTRY_FIELDS
    }
    assert stored.actor_id == staff_user.pk
    for name, value in extra.items():
        assert getattr(stored, name) == value
