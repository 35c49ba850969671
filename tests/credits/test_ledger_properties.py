"""Random sequences of everything that moves credits, with every invariant checked against the
database after every step: grants (with categories, priorities, expiries past and future),
spends, refunds (with and without purchase=, partial), adjustments, reversals, holds, captures
(whole and partial), releases, hold expiry, lot expiry under a moving clock, and replays.

A plain Python model says what every call should do: each account's balance and held, each
hold's status, and each lot's remaining (drawn by `plan_draw`, the rule the services use, so a
debit that took the wrong lots shows). The database must agree with the model and with itself
(balance = sum of entries = sum of lots' remaining = earned - spent, each lot's remaining = its
amount less its allocations, 0 <= held <= balance, held = sum of active holds, entries chained,
keys unique), on both write paths (`write_path`).
"""

import itertools
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db.models import Count
from django.utils import timezone
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
    HoldNotActive,
    IdempotencyConflict,
    InsufficientCredits,
    InvalidAmount,
)
from credits.models import (
    CreditHold,
    CreditLot,
    CreditTransaction,
    EntryKind,
    HoldStatus,
    LotCategory,
)
from credits.selectors import (
    accounts_off_their_holds,
    accounts_off_their_lots,
    ledger_sum,
    lots_off_their_allocations,
)
from credits.services import (
    credit_account_open,
    credit_adjust,
    credit_grant,
    credit_hold_capture,
    credit_hold_create,
    credit_hold_release,
    credit_holds_expire,
    credit_lots_expire,
    credit_refund,
    credit_reverse,
    credit_spend,
)
from tests.credits.ledger_model import Call, LedgerModel, ModelHold
from tests.factories import UserFactory

KEYS = itertools.count()
CENT = Decimal("0.01")
amounts = st.decimals(min_value=CENT, max_value=Decimal("500"), places=2)
indexes = st.integers(0, 1)
# A lot's expiry in hours from the machine's start (negative: already past), or never.
expiries = st.one_of(st.none(), st.integers(-48, 240))
# Long enough that the wall clock never ends a hold during a run: only the moving `now`
# (credit_holds_expire's) does.
ttls = st.sampled_from([600, 3600, 6 * 3600, 48 * 3600])
CREDITING = [EntryKind.GRANT, EntryKind.PURCHASE, EntryKind.MONTHLY_GRANT, EntryKind.MIGRATION]


class LedgerMachine(LedgerModel, RuleBasedStateMachine):
    @initialize()
    def open_accounts(self):
        self.staff = UserFactory(is_staff=True)
        self.accounts = [credit_account_open(user=UserFactory()) for _ in range(2)]
        self.start = self.now = timezone.now()
        for account in self.accounts:
            self.expected[account.pk] = Decimal("0.00")
            self.held[account.pk] = Decimal("0.00")

    def key(self):
        # Unique across examples too: they share one database transaction (id(self) is not
        # unique: a new machine may reuse a collected one's id).
        return f"key-{next(KEYS)}"

    # --- entries -------------------------------------------------------------------------

    @rule(
        index=indexes,
        amount=amounts,
        kind=st.sampled_from(CREDITING),
        category=st.one_of(st.none(), st.sampled_from(LotCategory.values)),
        expires_in=expiries,
        priority=st.integers(0, 3),
    )
    def grant(self, index, amount, kind, category, expires_in, priority):
        terms = {"category": category, "priority": priority}
        terms["expires_at"] = (
            None if expires_in is None else self.start + timedelta(hours=expires_in)
        )
        kwargs = dict(
            account=self.accounts[index],
            amount=amount,
            idempotency_key=self.key(),
            kind=kind,
            **terms,
        )
        entry = credit_grant(**kwargs)
        self.credited(entry, terms)
        self.calls.append(Call(credit_grant, kwargs, entry.pk, {**kwargs, "amount": amount + CENT}))

    @rule(index=indexes, amount=amounts)
    def spend(self, index, amount):
        account = self.accounts[index]
        kwargs = dict(account=account, amount=amount, idempotency_key=self.key())
        if amount > self.available(account.pk):
            self.refused(InsufficientCredits, credit_spend, **kwargs)
            return
        entry = credit_spend(**kwargs)
        self.debited(entry)
        self.calls.append(Call(credit_spend, kwargs, entry.pk, {**kwargs, "amount": amount + CENT}))

    @rule(index=indexes, amount=amounts, allow_partial=st.booleans(), data=st.data())
    def refund(self, index, amount, allow_partial, data):
        account = self.accounts[index]
        # A purchase named, when there is one: of this account or (ignored) of the other.
        purchase_pk = data.draw(st.one_of(st.none(), st.sampled_from(self.crediting or [None])))
        purchase = CreditTransaction.objects.get(pk=purchase_pk) if purchase_pk else None
        kwargs = dict(
            account=account,
            amount=amount,
            idempotency_key=self.key(),
            reason="refund",
            allow_partial=allow_partial,
            purchase=purchase,
        )
        available = self.available(account.pk)
        if amount > available and not (allow_partial and available > 0):
            self.refused(InsufficientCredits, credit_refund, **kwargs)
            return
        entry = credit_refund(**kwargs)
        assert entry.amount == -min(amount, available)
        first = (
            self.entry_lot.get(purchase_pk)
            if purchase and purchase.account_id == account.pk
            else None
        )
        self.debited(entry, first)
        self.calls.append(
            Call(credit_refund, kwargs, entry.pk, {**kwargs, "amount": amount + CENT})
        )

    @rule(index=indexes, amount=amounts, sign=st.sampled_from([1, -1]))
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
        if signed < 0 and amount > self.available(account.pk):
            self.refused(InsufficientCredits, credit_adjust, **kwargs)
            return
        entry = credit_adjust(**kwargs)
        if signed > 0:
            self.credited(entry, {})
        else:
            self.debited(entry)
        # A different amount, never zero (an adjustment of -0.01 plus 0.01 would be invalid).
        tampered = signed + CENT or Decimal("0.02")
        self.calls.append(Call(credit_adjust, kwargs, entry.pk, {**kwargs, "amount": tampered}))

    @precondition(lambda self: self.reversible)
    @rule(data=st.data(), allow_partial=st.booleans())
    def reverse(self, data, allow_partial):
        target = CreditTransaction.objects.get(pk=data.draw(st.sampled_from(self.reversible)))
        kwargs = dict(entry=target, idempotency_key=self.key(), allow_partial=allow_partial)
        if target.pk in self.reversed:
            self.refused(AlreadyReversed, credit_reverse, **kwargs)
            return
        available = self.available(target.account_id)
        if (
            target.amount > 0
            and target.amount > available
            and not (allow_partial and available > 0)
        ):
            self.refused(InsufficientCredits, credit_reverse, **kwargs)
            return
        reversal = credit_reverse(**kwargs)
        self.reversed.add(target.pk)
        if target.amount > 0:
            assert reversal.amount == -min(target.amount, available)
            self.debited(reversal, self.entry_lot[target.pk])
        else:
            assert reversal.amount == -target.amount
            self.given_back(reversal, target.pk)
        self.calls.append(Call(credit_reverse, kwargs, reversal.pk))

    # --- holds ---------------------------------------------------------------------------

    @rule(index=indexes, amount=amounts, ttl=ttls)
    def hold(self, index, amount, ttl):
        account = self.accounts[index]
        kwargs = dict(account=account, amount=amount, idempotency_key=self.key(), ttl_seconds=ttl)
        if amount > self.available(account.pk):
            self.refused(InsufficientCredits, credit_hold_create, **kwargs)
            return
        created = credit_hold_create(**kwargs)
        self.holds[created.pk] = ModelHold(account.pk, amount, created.expires_at)
        self.held[account.pk] += amount
        self.calls.append(
            Call(credit_hold_create, kwargs, created.pk, {**kwargs, "amount": amount + CENT})
        )

    @precondition(lambda self: self.holds)
    @rule(data=st.data(), part=st.one_of(st.none(), st.integers(1, 100)), over=st.booleans())
    def capture(self, data, part, over):
        hold_pk = data.draw(st.sampled_from(sorted(self.holds)))
        model = self.holds[hold_pk]
        # The whole hold (None), a part of it, or (over) a cent more than it.
        amount = None if part is None else max(CENT, (model.amount * part / 100).quantize(CENT))
        if over:
            amount = model.amount + CENT
        kwargs = dict(
            hold=CreditHold.objects.get(pk=hold_pk), idempotency_key=self.key(), amount=amount
        )
        if model.status != HoldStatus.ACTIVE:
            self.refused(HoldNotActive, credit_hold_capture, **kwargs)
            return
        if over:
            self.refused(InvalidAmount, credit_hold_capture, **kwargs)
            return
        entry = credit_hold_capture(**kwargs)
        captured = model.amount if amount is None else amount
        assert entry.amount == -captured
        model.status = HoldStatus.CAPTURED
        self.held[model.account] -= model.amount
        self.debited(entry)
        self.calls.append(
            Call(credit_hold_capture, kwargs, entry.pk, {**kwargs, "amount": captured + CENT})
        )

    @precondition(lambda self: self.holds)
    @rule(data=st.data())
    def release(self, data):
        hold_pk = data.draw(st.sampled_from(sorted(self.holds)))
        model = self.holds[hold_pk]
        kwargs = dict(hold=CreditHold.objects.get(pk=hold_pk), reason="aborted")
        if model.status in (HoldStatus.CAPTURED, HoldStatus.EXPIRED):
            self.refused(HoldNotActive, credit_hold_release, **kwargs)
            return
        before = self.database_state()
        released = credit_hold_release(**kwargs)
        if model.status == HoldStatus.RELEASED:
            assert released.replayed
            assert self.database_state() == before
            return
        model.status = HoldStatus.RELEASED
        self.held[model.account] -= model.amount

    # --- the clock and the beat tasks ------------------------------------------------------

    @rule(hours=st.integers(1, 72))
    def advance(self, hours):
        self.now += timedelta(hours=hours)

    @rule()
    def expire_holds(self):
        due = [
            pk
            for pk, model in sorted(self.holds.items())
            if model.status == HoldStatus.ACTIVE and model.expires_at <= self.now
        ]
        # Earlier examples' holds share the database and may expire too.
        assert credit_holds_expire(now=self.now) >= len(due)
        for pk in due:
            self.holds[pk].status = HoldStatus.EXPIRED
            self.held[self.holds[pk].account] -= self.holds[pk].amount

    @rule()
    def expire_lots(self):
        mine = set(self.expected)
        written = [entry for entry in credit_lots_expire(now=self.now) if entry.account_id in mine]
        due = sorted(
            (
                lot
                for lot in self.lots.values()
                if lot.remaining > 0 and lot.expires_at is not None and lot.expires_at <= self.now
            ),
            key=lambda lot: (lot.expires_at, lot.id),
        )
        expected = []
        for lot in due:
            account_pk = self.lot_account[lot.id]
            amount = min(self.lots[lot.id].remaining, self.available(account_pk))
            if amount > 0:
                expected.append((account_pk, [(lot.id, amount)]))
                # Book it now: the next lot of the account sees what this one left available.
                self.lots[lot.id] = replace(
                    self.lots[lot.id], remaining=self.lots[lot.id].remaining - amount
                )
                self.expected[account_pk] -= amount
        assert [
            (entry.account_id, list(entry.allocations.values_list("lot_id", "amount")))
            for entry in written
        ] == expected
        for entry, (_, plan) in zip(written, expected, strict=True):
            assert entry.kind == EntryKind.EXPIRY
            self.allocations[entry.pk] = plan
            self.reversible.append(entry.pk)

    # --- replays ---------------------------------------------------------------------------

    @precondition(lambda self: self.calls)
    @rule(data=st.data(), tamper=st.booleans())
    def replay(self, data, tamper):
        previous = data.draw(st.sampled_from(self.calls))
        before = self.database_state()
        if tamper and previous.tampered is not None:
            with pytest.raises(IdempotencyConflict):
                previous.service(**previous.tampered)
        else:
            answer = previous.service(**previous.kwargs)
            assert answer.pk == previous.pk
            assert answer.replayed
        assert self.database_state() == before

    # --- invariants ------------------------------------------------------------------------

    @invariant()
    def balances_and_held_match_the_model_and_the_ledger(self):
        for account in getattr(self, "accounts", []):
            account.refresh_from_db()
            # invariant 1: balance = sum of entries; invariant 2: never negative
            assert account.balance == self.expected[account.pk]
            assert account.balance == ledger_sum(account=account)
            assert account.balance >= 0
            assert account.balance == account.total_earned - account.total_spent
            assert account.total_spent >= 0
            # invariant 12: 0 <= held <= balance, held = the model's active holds
            assert account.held == self.held[account.pk]
            assert 0 <= account.held <= account.balance

    @invariant()
    def lots_match_the_model_and_add_up(self):
        mine = [account.pk for account in getattr(self, "accounts", [])]
        stored = dict(CreditLot.objects.filter(account__in=mine).values_list("pk", "remaining"))
        assert stored == {pk: lot.remaining for pk, lot in self.lots.items()}
        # invariant 11: balance = sum of lots' remaining; remaining = amount - allocations
        # (of this example's accounts: earlier examples' share the database and were checked)
        assert not accounts_off_their_lots().filter(pk__in=mine).exists()
        assert not lots_off_their_allocations().filter(account__in=mine).exists()
        assert not accounts_off_their_holds().filter(pk__in=mine).exists()

    @invariant()
    def holds_match_the_model(self):
        mine = [account.pk for account in getattr(self, "accounts", [])]
        stored = dict(CreditHold.objects.filter(account__in=mine).values_list("pk", "status"))
        assert stored == {pk: model.status for pk, model in self.holds.items()}

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
            CreditTransaction.objects.filter(account__in=getattr(self, "accounts", []))
            .values("idempotency_key")
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
