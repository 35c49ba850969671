"""Random sequences of grant, spend, refund, adjust, reverse and replay, with invariants 1-4
checked against the database after every step.

A plain Python model of each balance says what every call should do; the database must agree
with it and with itself (balance = sum of entries = earned - spent, each entry chained to the
previous one, keys unique), on both write paths (`write_path`).
"""

import itertools
from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.db.models import Count
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from credits.exceptions import (
    AlreadyReversed,
    IdempotencyConflict,
    InsufficientCredits,
)
from credits.models import CreditAccount, CreditTransaction, EntryKind
from credits.selectors import ledger_sum
from credits.services import (
    credit_account_open,
    credit_adjust,
    credit_grant,
    credit_refund,
    credit_reverse,
    credit_spend,
)
from tests.factories import UserFactory

KEYS = itertools.count()
amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("500"), places=2)


@dataclass
class Call:
    service: object
    kwargs: dict
    entry_pk: int


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.expected: dict[int, Decimal] = {}
        self.calls: list[Call] = []
        self.reversed: set[int] = set()

    @initialize()
    def open_accounts(self):
        self.staff = UserFactory(is_staff=True)
        self.accounts = [credit_account_open(user=UserFactory()) for _ in range(2)]
        for account in self.accounts:
            self.expected[account.pk] = Decimal("0.00")

    def key(self):
        # Unique across examples too: they share one database transaction (id(self) is not
        # unique: a new machine may reuse a collected one's id).
        return f"key-{next(KEYS)}"

    def call(self, service, **kwargs):
        entry = service(**kwargs)
        self.calls.append(Call(service, kwargs, entry.pk))
        return entry

    @rule(index=st.integers(0, 1), amount=amounts)
    def grant(self, index, amount):
        account = self.accounts[index]
        self.call(credit_grant, account=account, amount=amount, idempotency_key=self.key())
        self.expected[account.pk] += amount

    @rule(index=st.integers(0, 1), amount=amounts)
    def spend(self, index, amount):
        account = self.accounts[index]
        if amount > self.expected[account.pk]:
            with pytest.raises(InsufficientCredits):
                credit_spend(account=account, amount=amount, idempotency_key=self.key())
            return
        self.call(credit_spend, account=account, amount=amount, idempotency_key=self.key())
        self.expected[account.pk] -= amount

    @rule(index=st.integers(0, 1), amount=amounts, allow_partial=st.booleans())
    def refund(self, index, amount, allow_partial):
        account = self.accounts[index]
        held = self.expected[account.pk]
        kwargs = dict(
            account=account,
            amount=amount,
            idempotency_key=self.key(),
            reason="refund",
            allow_partial=allow_partial,
        )
        if amount > held and not (allow_partial and held > 0):
            with pytest.raises(InsufficientCredits):
                credit_refund(**kwargs)
            return
        entry = self.call(credit_refund, **kwargs)
        assert entry.amount == -min(amount, held)
        self.expected[account.pk] -= min(amount, held)

    @rule(index=st.integers(0, 1), amount=amounts, sign=st.sampled_from([1, -1]))
    def adjust(self, index, amount, sign):
        account = self.accounts[index]
        signed = amount * sign
        kwargs = dict(
            account=account,
            amount=signed,
            idempotency_key=self.key(),
            actor=self.staff,
            reason="fix",
        )
        if self.expected[account.pk] + signed < 0:
            with pytest.raises(InsufficientCredits):
                credit_adjust(**kwargs)
            return
        self.call(credit_adjust, **kwargs)
        self.expected[account.pk] += signed

    @precondition(lambda self: self.calls)
    @rule(data=st.data())
    def reverse(self, data):
        target = CreditTransaction.objects.get(pk=data.draw(st.sampled_from(self.calls)).entry_pk)
        key = self.key()
        if target.kind == EntryKind.REVERSAL:
            return
        if target.pk in self.reversed:
            with pytest.raises(AlreadyReversed):
                credit_reverse(entry=target, idempotency_key=key)
            return
        held = self.expected[target.account_id]
        if held - target.amount < 0:
            with pytest.raises(InsufficientCredits):
                credit_reverse(entry=target, idempotency_key=key)
            return
        self.call(credit_reverse, entry=target, idempotency_key=key)
        self.reversed.add(target.pk)
        self.expected[target.account_id] -= target.amount

    @precondition(lambda self: self.calls)
    @rule(data=st.data(), tamper=st.booleans())
    def replay(self, data, tamper):
        previous = data.draw(st.sampled_from(self.calls))
        before = self.database_state()
        if tamper and "amount" in previous.kwargs:
            # A different amount, never zero (an adjustment of -0.01 plus 0.01 would be invalid).
            tampered = previous.kwargs["amount"] + Decimal("0.01") or Decimal("0.02")
            kwargs = {**previous.kwargs, "amount": tampered}
            with pytest.raises(IdempotencyConflict):
                previous.service(**kwargs)
        else:
            entry = previous.service(**previous.kwargs)
            assert entry.pk == previous.entry_pk
            assert entry.replayed
        assert self.database_state() == before

    def database_state(self):
        return (
            list(CreditAccount.objects.order_by("pk").values_list("pk", "balance")),
            CreditTransaction.objects.count(),
        )

    @invariant()
    def balances_match_the_model_and_the_ledger(self):
        for account in getattr(self, "accounts", []):
            account.refresh_from_db()
            # invariant 1: balance = sum of entries; invariant 2: never negative
            assert account.balance == self.expected[account.pk]
            assert account.balance == ledger_sum(account=account)
            assert account.balance >= 0
            assert account.balance == account.total_earned - account.total_spent
            assert account.total_spent >= 0

    @invariant()
    def entries_chain_and_keys_are_unique(self):
        for account in getattr(self, "accounts", []):
            previous_after = Decimal("0.00")
            for entry in CreditTransaction.objects.filter(account=account).order_by("id"):
                # invariant 3: each entry's arithmetic, and each starts where the last ended
                assert entry.balance_after == entry.balance_before + entry.amount
                assert entry.balance_before == previous_after
                assert entry.amount != 0
                previous_after = entry.balance_after
        # invariant 4: one entry per key
        assert not (
            CreditTransaction.objects.values("idempotency_key")
            .annotate(n=Count("id"))
            .filter(n__gt=1)
            .exists()
        )


@pytest.mark.django_db
@pytest.mark.usefixtures("write_path")
def test_random_sequences_keep_the_ledger_invariants():
    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=40,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
