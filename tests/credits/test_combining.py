"""Writes of concurrent threads combined into one call (`credits.services._combining`).

First the combiner itself, with plain functions in place of the database: who writes alone,
who shares a call, and that every caller gets its own outcome or error. Then, on PostgreSQL,
the shared call through `credits_post_entries`, made deterministic by holding the first writer
until the others have queued behind it.
"""

import itertools
import json
import threading
import time
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection
from django.utils import timezone

from credits.exceptions import IdempotencyConflict, InsufficientCredits
from credits.models import CreditAccount, CreditTransaction
from credits.selectors import accounts_out_of_balance, ledger_sum
from credits.services import _posting, credit_account_open, credit_grant, credit_spend
from credits.services._combining import WRITE_ALONE, Combiner
from tests.factories import UserFactory

WAIT = 10  # seconds; a test that waits this long has failed


class Recorder:
    """write_one / write_many that record their calls; write_one can be held."""

    def __init__(self, outcome=lambda entry: f"wrote {entry}"):
        self.outcome = outcome
        self.ones, self.manys = [], []
        self.hold = threading.Event()
        self.hold.set()
        self.holding = threading.Event()

    def write_one(self, entry):
        self.ones.append(entry)
        self.holding.set()
        assert self.hold.wait(WAIT)
        result = self.outcome(entry)
        if isinstance(result, BaseException):
            raise result
        return result

    def write_many(self, entries):
        self.manys.append(list(entries))
        return [self.outcome(entry) for entry in entries]


def patient(*args, **options):
    """A combiner whose queued writers wait for their call however long the test holds it."""
    return Combiner(*args, **{"queue_wait": WAIT, **options})


def start(combiner, entry, results):
    def target():
        try:
            results[entry] = combiner.write(entry)
        except Exception as error:
            results[entry] = error

    thread = threading.Thread(target=target)
    thread.start()
    return thread


def queue_behind_a_held_writer(combiner, recorder, entries, results, queued):
    """Start `first` writing (held), then the others, and wait until all have queued."""
    recorder.hold.clear()
    first, *others = entries
    threads = [start(combiner, first, results)]
    assert recorder.holding.wait(WAIT)
    threads += [start(combiner, entry, results) for entry in others]
    deadline = time.monotonic() + WAIT
    while queued() < len(others):
        assert time.monotonic() < deadline, "the writers never queued"
        time.sleep(0.001)
    recorder.hold.set()
    for thread in threads:
        thread.join(WAIT)
        assert not thread.is_alive()


def test_a_lone_writer_writes_alone_at_once():
    recorder = Recorder()
    combiner = patient(recorder.write_one, recorder.write_many)
    assert combiner.write("a") == "wrote a"
    assert combiner.write("b") == "wrote b"
    assert recorder.ones == ["a", "b"] and recorder.manys == []


def test_writers_that_arrive_meanwhile_share_the_next_call_and_get_their_own_outcomes():
    recorder = Recorder()
    combiner = patient(recorder.write_one, recorder.write_many)
    results = {}
    queue_behind_a_held_writer(
        combiner, recorder, ["a", "b", "c", "d"], results, lambda: len(combiner._queue)
    )
    assert recorder.ones == ["a"]
    assert [sorted(call) for call in recorder.manys] == [["b", "c", "d"]]
    assert results == {entry: f"wrote {entry}" for entry in "abcd"}
    assert combiner._calls == 0 and not combiner._queue


def test_a_call_takes_at_most_max_batch_writers():
    recorder = Recorder()
    combiner = patient(recorder.write_one, recorder.write_many, max_batch=2)
    results = {}
    queue_behind_a_held_writer(
        combiner, recorder, list("abcdef"), results, lambda: len(combiner._queue)
    )
    assert recorder.manys and all(len(call) <= 2 for call in recorder.manys)
    written = recorder.ones + [entry for call in recorder.manys for entry in call]
    assert sorted(written) == list("abcdef")
    assert results == {entry: f"wrote {entry}" for entry in "abcdef"}


def wait_until(condition, what):
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.001)


def test_a_second_call_starts_only_to_share_it():
    recorder = Recorder()
    combiner = patient(recorder.write_one, recorder.write_many, max_calls=lambda: 2)
    results = {}
    recorder.hold.clear()
    first = start(combiner, "a", results)
    assert recorder.holding.wait(WAIT)
    # With a call under way, a writer alone does not take the free slot: it queues...
    second = start(combiner, "b", results)
    wait_until(lambda: len(combiner._queue) == 1, "the second writer never queued")
    assert recorder.ones == ["a"] and combiner._calls == 1
    # ...and the next one leads it, in a call of their own beside the held one.
    third = start(combiner, "c", results)
    for thread in (second, third):
        thread.join(WAIT)
    assert recorder.manys == [["c", "b"]]
    assert results == {"b": "wrote b", "c": "wrote c"}  # "a" is still held
    recorder.hold.set()
    first.join(WAIT)
    assert results["a"] == "wrote a" and combiner._calls == 0


def test_after_a_shared_call_the_next_waits_for_its_writers_to_come_back():
    recorder = Recorder()
    combiner = patient(
        recorder.write_one, recorder.write_many, gather_wait=WAIT, gather_window=WAIT
    )
    results = {}
    queue_behind_a_held_writer(
        combiner, recorder, ["a", "b", "c"], results, lambda: len(combiner._queue)
    )
    assert combiner._last_size == 2  # the shared call of b and c
    # Its writers come back one after the other: the first waits for the second.
    back = start(combiner, "b2", results)
    wait_until(lambda: combiner._gate is not None, "no gate for the writers coming back")
    assert recorder.ones == ["a"] and len(recorder.manys) == 1
    other = start(combiner, "c2", results)
    for thread in (back, other):
        thread.join(WAIT)
    assert recorder.ones == ["a"]
    assert recorder.manys[1] == ["b2", "c2"]
    assert results["b2"] == "wrote b2" and results["c2"] == "wrote c2"


def test_a_call_waits_for_the_writers_of_the_last_only_briefly():
    recorder = Recorder()
    combiner = patient(
        recorder.write_one, recorder.write_many, gather_wait=0.01, gather_window=WAIT
    )
    results = {}
    queue_behind_a_held_writer(
        combiner, recorder, ["a", "b", "c"], results, lambda: len(combiner._queue)
    )
    # Nobody comes back: after gather_wait the writer goes alone.
    assert combiner.write("d") == "wrote d"
    assert recorder.ones == ["a", "d"] and combiner._gate is None


def test_an_entrys_error_is_raised_to_its_caller_only():
    refused = ValueError("refused c")
    recorder = Recorder(outcome=lambda entry: refused if entry == "c" else f"wrote {entry}")
    combiner = patient(recorder.write_one, recorder.write_many)
    results = {}
    queue_behind_a_held_writer(
        combiner, recorder, ["a", "b", "c", "d"], results, lambda: len(combiner._queue)
    )
    assert results == {"a": "wrote a", "b": "wrote b", "c": refused, "d": "wrote d"}


def test_when_a_call_fails_every_writer_in_it_writes_alone_and_gets_its_own_outcome():
    recorder = Recorder(
        outcome=lambda entry: ConnectionError("gone") if entry == "c" else f"wrote {entry}"
    )

    def broken(entries):
        recorder.manys.append(list(entries))
        raise ValueError("one entry the database cannot take")

    combiner = patient(recorder.write_one, broken)
    results = {}
    queue_behind_a_held_writer(
        combiner, recorder, ["a", "b", "c", "d"], results, lambda: len(combiner._queue)
    )
    assert recorder.manys == [["b", "c", "d"]]
    assert sorted(recorder.ones) == ["a", "b", "c", "d"]
    assert {entry: results[entry] for entry in "abd"} == {
        "a": "wrote a",
        "b": "wrote b",
        "d": "wrote d",
    }
    assert isinstance(results["c"], ConnectionError)
    # and the combiner is free again
    assert combiner.write("e") == "wrote e"


def test_a_writer_queued_behind_a_stuck_call_leaves_the_queue_and_writes_alone():
    release = threading.Event()
    written = []

    def write_one(entry):
        if entry == "stuck":
            assert release.wait(WAIT)
        written.append(entry)
        return f"wrote {entry}"

    combiner = patient(write_one, lambda entries: pytest.fail("no shared call"), queue_wait=0.01)
    results = {}
    stuck = start(combiner, "stuck", results)
    deadline = time.monotonic() + WAIT
    while combiner._calls < 1:
        assert time.monotonic() < deadline
        time.sleep(0.001)
    # while the first call is stuck (say, on a locked account), the next writer is not
    assert combiner.write("next") == "wrote next"
    assert written == ["next"] and not combiner._queue
    release.set()
    stuck.join(WAIT)
    assert results == {"stuck": "wrote stuck"}


def test_an_entry_the_call_hands_back_is_written_alone_by_its_caller():
    recorder = Recorder(outcome=lambda entry: f"wrote {entry}")
    busy = {"c"}

    def write_many(entries):
        recorder.manys.append(list(entries))
        return [WRITE_ALONE if entry in busy else f"wrote {entry}" for entry in entries]

    combiner = patient(recorder.write_one, write_many)
    results = {}
    queue_behind_a_held_writer(
        combiner, recorder, ["a", "b", "c"], results, lambda: len(combiner._queue)
    )
    assert results == {"a": "wrote a", "b": "wrote b", "c": "wrote c"}
    assert sorted(recorder.ones) == ["a", "c"]


# --- on PostgreSQL ------------------------------------------------------------------------


@pytest.fixture
def held_first_writer(monkeypatch, settings):
    """The real combiner, its lone-writer path held (once run_together arms it) until the
    test lets it go."""
    hold, holding = threading.Event(), threading.Event()
    hold.set()
    # One call at a time, so that everyone after the held writer queues.
    settings.CREDITS_COMBINE_WRITES_CALLS = 1
    real_one = _posting._COMBINER._write_one
    calls = []
    real_many = _posting._COMBINER._write_many

    def write_one(entry):
        holding.set()
        assert hold.wait(WAIT)
        return real_one(entry)

    def write_many(entries):
        calls.append(len(entries))
        return real_many(entries)

    monkeypatch.setattr(_posting._COMBINER, "_queue_wait", WAIT)
    monkeypatch.setattr(_posting._COMBINER, "_write_one", write_one)
    monkeypatch.setattr(_posting._COMBINER, "_write_many", write_many)
    return hold, holding, calls


def run_together(held_first_writer, first, others):
    """Run first() until it is held, then others (callables) until they queue; release."""
    hold, holding, calls = held_first_writer
    hold.clear()
    holding.clear()
    outcomes = {}

    def target(name, work):
        try:
            outcomes[name] = work()
        except Exception as error:
            outcomes[name] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=target, args=("first", first))]
    threads[0].start()
    assert holding.wait(WAIT)
    for name, work in others.items():
        thread = threading.Thread(target=target, args=(name, work))
        thread.start()
        threads.append(thread)
    deadline = time.monotonic() + WAIT
    while len(_posting._COMBINER._queue) < len(others):
        assert time.monotonic() < deadline, "the writers never queued"
        time.sleep(0.001)
    hold.set()
    for thread in threads:
        thread.join(WAIT)
        assert not thread.is_alive()
    return outcomes, calls


def fresh(account):
    return CreditAccount.objects.get(pk=account.pk)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_one_shared_call_gives_each_writer_its_own_outcome_and_keeps_the_ledger_exact(
    held_first_writer,
):
    rich, poor, other = (credit_account_open(user=UserFactory()) for _ in range(3))
    credit_grant(account=rich, amount=Decimal("100"), idempotency_key="fund-rich")
    credit_grant(account=poor, amount=Decimal("1"), idempotency_key="fund-poor")
    credit_spend(account=rich, amount=Decimal("1"), idempotency_key="spent-before")
    entries_before = CreditTransaction.objects.count()

    outcomes, calls = run_together(
        held_first_writer,
        lambda: credit_spend(account=fresh(rich), amount=Decimal("10"), idempotency_key="s1"),
        {
            "spend": lambda: credit_spend(
                account=fresh(rich), amount=Decimal("5"), idempotency_key="s2", description="x"
            ),
            "too much": lambda: credit_spend(
                account=fresh(poor), amount=Decimal("2"), idempotency_key="s3"
            ),
            "replay": lambda: credit_spend(
                account=fresh(rich), amount=Decimal("1"), idempotency_key="spent-before"
            ),
            "conflict": lambda: credit_spend(
                account=fresh(rich), amount=Decimal("2"), idempotency_key="fund-poor"
            ),
            "grant": lambda: credit_grant(
                account=fresh(other),
                amount=Decimal("3"),
                idempotency_key="g1",
                metadata={"note": "combined"},
            ),
        },
    )

    assert calls == [5]  # the five that queued went in one call
    assert outcomes["first"].amount == Decimal("-10.00")
    spend = outcomes["spend"]
    assert (spend.amount, spend.description) == (Decimal("-5.00"), "x")
    assert isinstance(outcomes["too much"], InsufficientCredits)
    assert outcomes["replay"].replayed
    assert isinstance(outcomes["conflict"], IdempotencyConflict)
    grant = CreditTransaction.objects.get(idempotency_key="g1")
    assert (grant.amount, grant.metadata) == (Decimal("3.00"), {"note": "combined"})
    assert outcomes["grant"].pk == grant.pk
    # what each caller was told is what the ledger holds
    assert CreditTransaction.objects.count() == entries_before + 3
    assert CreditTransaction.objects.get(pk=spend.pk).balance_after == spend.balance_after
    for account, balance in ((rich, "84.00"), (poor, "1.00"), (other, "3.00")):
        account.refresh_from_db()
        assert account.balance == Decimal(balance) == ledger_sum(account=account)
    assert not accounts_out_of_balance().exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_one_key_twice_in_one_call_writes_once(held_first_writer):
    account = credit_account_open(user=UserFactory())
    credit_grant(account=account, amount=Decimal("100"), idempotency_key="fund")
    outcomes, calls = run_together(
        held_first_writer,
        lambda: credit_spend(account=fresh(account), amount=Decimal("1"), idempotency_key="a"),
        {
            f"twin {index}": lambda: credit_spend(
                account=fresh(account), amount=Decimal("7"), idempotency_key="twin"
            )
            for index in range(2)
        },
    )
    assert calls == [2]
    twins = [outcomes["twin 0"], outcomes["twin 1"]]
    assert all(not isinstance(twin, Exception) for twin in twins)
    assert twins[0].pk == twins[1].pk
    assert sorted(bool(getattr(twin, "replayed", False)) for twin in twins) == [False, True]
    account.refresh_from_db()
    assert account.balance == Decimal("92.00") == ledger_sum(account=account)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_error_in_one_entry_is_that_callers_database_error(held_first_writer):
    account = credit_account_open(user=UserFactory())
    credit_grant(account=account, amount=Decimal("100"), idempotency_key="fund")
    with connection.cursor() as cursor:
        # A constraint that refuses one spend inside the call (kept out of the other's way).
        cursor.execute(
            "ALTER TABLE credits_credittransaction ADD CONSTRAINT test_no_bad_description"
            " CHECK (description <> 'refuse me')"
        )
    try:
        outcomes, calls = run_together(
            held_first_writer,
            lambda: credit_spend(account=fresh(account), amount=Decimal("1"), idempotency_key="a"),
            {
                "refused": lambda: credit_spend(
                    account=fresh(account),
                    amount=Decimal("1"),
                    idempotency_key="b",
                    description="refuse me",
                ),
                "fine": lambda: credit_spend(
                    account=fresh(account), amount=Decimal("1"), idempotency_key="c"
                ),
            },
        )
    finally:
        with connection.cursor() as cursor:
            cursor.execute(
                "ALTER TABLE credits_credittransaction DROP CONSTRAINT test_no_bad_description"
            )
    assert calls == [2]
    assert isinstance(outcomes["refused"], IntegrityError)
    assert "test_no_bad_description" in str(outcomes["refused"])
    assert not CreditTransaction.objects.filter(idempotency_key="b").exists()
    assert outcomes["fine"].amount == Decimal("-1.00")
    account.refresh_from_db()
    assert account.balance == Decimal("98.00") == ledger_sum(account=account)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_writes_inside_a_transaction_or_with_combining_off_are_never_combined(
    settings, monkeypatch
):
    from django.db import transaction

    account = credit_account_open(user=UserFactory())
    credit_grant(account=account, amount=Decimal("100"), idempotency_key="fund")
    used = []
    monkeypatch.setattr(_posting._COMBINER, "write", lambda entry: used.append(entry))
    with transaction.atomic():
        credit_spend(account=account, amount=Decimal("1"), idempotency_key="in-atomic")
    settings.CREDITS_COMBINE_WRITES = False
    credit_spend(account=account, amount=Decimal("1"), idempotency_key="off")
    assert used == []
    assert CreditTransaction.objects.filter(idempotency_key__in=["in-atomic", "off"]).count() == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_locked_account_holds_up_only_its_own_entry_in_a_shared_call(held_first_writer):
    locked, free, first = (credit_account_open(user=UserFactory()) for _ in range(3))
    for account in (locked, free, first):
        credit_grant(account=account, amount=Decimal("10"), idempotency_key=f"fund-{account.pk}")
    holding_lock, release_lock = threading.Event(), threading.Event()
    finished = []

    def hold_the_account():
        from django.db import transaction

        try:
            with transaction.atomic():
                CreditAccount.objects.select_for_update().get(pk=locked.pk)
                holding_lock.set()
                assert release_lock.wait(WAIT)
                finished.append("lock released")
        finally:
            connection.close()

    def spend(account, key):
        def work():
            entry = credit_spend(account=fresh(account), amount=Decimal("1"), idempotency_key=key)
            finished.append(key)
            if key == "free":
                release_lock.set()  # only now may the locked account's entry go ahead
            return entry

        return work

    locker = threading.Thread(target=hold_the_account)
    locker.start()
    assert holding_lock.wait(WAIT)
    try:
        outcomes, calls = run_together(
            held_first_writer,
            spend(first, "first"),
            {"locked": spend(locked, "locked"), "free": spend(free, "free")},
        )
    finally:
        release_lock.set()
        locker.join(WAIT)
    assert calls == [2]
    assert finished.index("free") < finished.index("lock released") < finished.index("locked")
    assert all(not isinstance(outcome, Exception) for outcome in outcomes.values())
    for account in (locked, free, first):
        account.refresh_from_db()
        assert account.balance == Decimal("9.00") == ledger_sum(account=account)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_entries_of_one_account_in_one_call_see_each_others_balance(held_first_writer):
    account, first = (credit_account_open(user=UserFactory()) for _ in range(2))
    credit_grant(account=account, amount=Decimal("10"), idempotency_key="fund")
    credit_grant(account=first, amount=Decimal("10"), idempotency_key="fund-first")
    outcomes, calls = run_together(
        held_first_writer,
        lambda: credit_spend(account=fresh(first), amount=Decimal("1"), idempotency_key="f"),
        {
            key: lambda key=key: credit_spend(
                account=fresh(account), amount=Decimal("6"), idempotency_key=key
            )
            for key in ("a", "b")
        },
    )
    assert calls == [2]
    refused = [key for key in "ab" if isinstance(outcomes[key], InsufficientCredits)]
    assert len(refused) == 1  # 6 + 6 from 10: exactly one fits
    account.refresh_from_db()
    assert account.balance == Decimal("4.00") == ledger_sum(account=account)
    entries = list(CreditTransaction.objects.filter(account=account).order_by("pk"))
    for before, after in itertools.pairwise(entries):
        assert after.balance_before == before.balance_after


@pytest.fixture
def set_writes(monkeypatch):
    """What each shared call's set statement did: 'written', or 'fell back' (it failed and
    the entries went one at a time)."""
    real = _posting._write_as_set
    done = []

    def spy(cursor, params):
        rows = real(cursor, params)
        done.append("fell back" if rows is None else "written")
        return rows

    monkeypatch.setattr(_posting, "_write_as_set", spy)
    return done


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_call_of_distinct_accounts_is_written_as_one_set(held_first_writer, set_writes):
    first, rich, poor, granted = (credit_account_open(user=UserFactory()) for _ in range(4))
    for account, amount in ((first, "10"), (rich, "100"), (poor, "1")):
        credit_grant(account=account, amount=Decimal(amount), idempotency_key=f"f{account.pk}")
    outcomes, calls = run_together(
        held_first_writer,
        lambda: credit_spend(account=fresh(first), amount=Decimal("1"), idempotency_key="a"),
        {
            "spend": lambda: credit_spend(
                account=fresh(rich),
                amount=Decimal("12.34"),
                idempotency_key="s",
                description="lunch",
                metadata={"n": 1},
            ),
            "too much": lambda: credit_spend(
                account=fresh(poor), amount=Decimal("2"), idempotency_key="t"
            ),
            "grant": lambda: credit_grant(
                account=fresh(granted), amount=Decimal("3"), idempotency_key="g"
            ),
        },
    )
    assert calls == [3] and set_writes == ["written"]
    spend = outcomes["spend"]
    stored = CreditTransaction.objects.get(idempotency_key="s")
    assert (spend.pk, spend.amount, spend.balance_before, spend.balance_after) == (
        stored.pk,
        Decimal("-12.34"),
        Decimal("100.00"),
        Decimal("87.66"),
    )
    assert (stored.description, stored.metadata, stored.kind) == ("lunch", {"n": 1}, "spend")
    assert isinstance(outcomes["too much"], InsufficientCredits)
    assert not CreditTransaction.objects.filter(idempotency_key="t").exists()
    assert outcomes["grant"].balance_after == Decimal("3.00")
    for account, balance in ((rich, "87.66"), (poor, "1.00"), (granted, "3.00")):
        account.refresh_from_db()
        assert account.balance == Decimal(balance) == ledger_sum(account=account)
    assert not accounts_out_of_balance().exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_set_that_fails_is_undone_and_written_one_entry_at_a_time(held_first_writer, set_writes):
    first, spent_before, other = (credit_account_open(user=UserFactory()) for _ in range(3))
    for account in (first, spent_before, other):
        credit_grant(account=account, amount=Decimal("10"), idempotency_key=f"f{account.pk}")
    credit_spend(account=spent_before, amount=Decimal("4"), idempotency_key="done")
    outcomes, calls = run_together(
        held_first_writer,
        lambda: credit_spend(account=fresh(first), amount=Decimal("1"), idempotency_key="a"),
        {
            # the key is taken: the set's INSERT fails, and with it the other entry's UPDATE
            "replay": lambda: credit_spend(
                account=fresh(spent_before), amount=Decimal("4"), idempotency_key="done"
            ),
            "fine": lambda: credit_spend(
                account=fresh(other), amount=Decimal("2"), idempotency_key="b"
            ),
        },
    )
    assert calls == [2] and set_writes == ["fell back"]
    assert outcomes["replay"].replayed
    assert outcomes["fine"].balance_after == Decimal("8.00")
    for account, balance in ((spent_before, "6.00"), (other, "8.00")):
        account.refresh_from_db()
        assert account.balance == Decimal(balance) == ledger_sum(account=account)
    assert CreditTransaction.objects.filter(idempotency_key="done").count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_set_statement_writes_nothing_if_two_entries_name_one_account():
    account = credit_account_open(user=UserFactory())
    credit_grant(account=account, amount=Decimal("10"), idempotency_key="fund")
    entries = [
        _posting._Entry(
            account=account,
            kind="spend",
            amount=Decimal("-1.00"),
            requested=Decimal("-1.00"),
            idempotency_key=key,
            earned_delta=Decimal(0),
            spent_delta=Decimal("1.00"),
            fields={},
        )
        for key in ("x", "y")
    ]
    params = {
        "entries": json.dumps([_posting._shared_values(entry) for entry in entries]),
        "created_at": timezone.now(),
        "lock_wait": "1s",
    }
    connection.ensure_connection()
    with connection.connection.cursor() as cursor:
        rows = _posting._write_as_set(cursor, params)
    # Nothing locked, so nothing moved: as if both had too little credit (the caller never
    # sends such a call as a set; this is the statement's own guard).
    assert [row[0] for row in rows] == [None, None]
    account.refresh_from_db()
    assert account.balance == Decimal("10.00") == ledger_sum(account=account)
    assert not CreditTransaction.objects.filter(idempotency_key__in=["x", "y"]).exists()
