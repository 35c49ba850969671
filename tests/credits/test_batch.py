"""`credit_post_batch`, the migration's writer: many grants and history entries in a few
statements, with the same rules as one entry at a time (invariants 1-4), on both databases."""

from decimal import Decimal

import pytest
from django.db import transaction

from credits.exceptions import IdempotencyConflict, InvalidAmount
from credits.models import CreditAccount, CreditTransaction, EntryKind
from credits.selectors import accounts_out_of_balance, ledger_sum
from credits.services import BatchEntry, credit_account_open, credit_grant, credit_post_batch
from tests.factories import UserFactory
from tests.helpers import ledger_snapshot

pytestmark = pytest.mark.django_db


@pytest.fixture
def accounts():
    return [credit_account_open(user=UserFactory()) for _ in range(3)]


def grant(account, amount, key, **fields):
    return BatchEntry(
        account_id=account.pk,
        kind=EntryKind.MIGRATION,
        amount=Decimal(amount),
        idempotency_key=key,
        **fields,
    )


def history(account, key, legacy_id):
    return BatchEntry(
        account_id=account.pk,
        kind=EntryKind.HISTORY,
        amount=Decimal("0"),
        idempotency_key=key,
        legacy_transaction_id=legacy_id,
        metadata={"legacy": legacy_id},
    )


def post(entries):
    with transaction.atomic():
        return credit_post_batch(entries=entries)


def test_a_batch_writes_every_entry_and_chains_the_balances(accounts):
    first, second, third = accounts
    credit_grant(account=second, amount=Decimal("5.00"), idempotency_key="earlier")
    written = post(
        [
            grant(first, "10.50", "m:1", description="USD", metadata={"rates": {"USD": "1"}}),
            history(first, "h:1", "legacy-1"),
            grant(second, "1.25", "m:2"),
            grant(first, "0.50", "m:1b"),
        ]
    )
    assert written == 4
    for account, balance in ((first, "11.00"), (second, "6.25"), (third, "0.00")):
        account.refresh_from_db()
        assert account.balance == Decimal(balance) == ledger_sum(account=account)
        assert account.balance == account.total_earned - account.total_spent
    chain = list(
        CreditTransaction.objects.filter(account=first)
        .order_by("pk")
        .values_list("kind", "amount", "balance_before", "balance_after")
    )
    assert chain == [
        (EntryKind.MIGRATION, Decimal("10.50"), Decimal("0.00"), Decimal("10.50")),
        (EntryKind.HISTORY, Decimal("0.00"), Decimal("10.50"), Decimal("10.50")),
        (EntryKind.MIGRATION, Decimal("0.50"), Decimal("10.50"), Decimal("11.00")),
    ]
    entry = CreditTransaction.objects.get(idempotency_key="m:1")
    assert (entry.description, entry.metadata) == ("USD", {"rates": {"USD": "1"}})
    assert CreditTransaction.objects.get(idempotency_key="h:1").legacy_transaction_id == (
        "legacy-1"
    )
    assert not accounts_out_of_balance().exists()


def test_a_replayed_batch_writes_nothing(accounts):
    entries = [grant(accounts[0], "3.00", "m:1"), history(accounts[1], "h:1", "legacy-1")]
    assert post(entries) == 2
    before = ledger_snapshot()
    assert post(entries) == 0
    assert ledger_snapshot() == before


def test_a_key_repeated_in_one_batch_with_the_same_intent_is_written_once(accounts):
    assert post([grant(accounts[0], "3.00", "m:1"), grant(accounts[0], "3", "m:1")]) == 1
    accounts[0].refresh_from_db()
    assert accounts[0].balance == Decimal("3.00")


@pytest.mark.parametrize(
    "clash",
    [
        pytest.param(lambda a: [grant(a[0], "4.00", "m:1")], id="other amount, on the ledger"),
        pytest.param(lambda a: [grant(a[1], "3.00", "m:1")], id="other account, on the ledger"),
        pytest.param(
            lambda a: [grant(a[2], "1.00", "new"), grant(a[2], "2.00", "new")],
            id="other amount, in the same batch",
        ),
    ],
)
def test_a_key_reused_for_another_intent_is_a_conflict_and_writes_nothing(accounts, clash):
    post([grant(accounts[0], "3.00", "m:1")])
    before = ledger_snapshot()
    with pytest.raises(IdempotencyConflict):
        post([grant(accounts[1], "1.00", "fine"), *clash(accounts)])
    assert ledger_snapshot() == before


@pytest.mark.parametrize(
    ("entry", "error"),
    [
        pytest.param(lambda a: grant(a, "0", "k"), InvalidAmount, id="zero grant"),
        pytest.param(lambda a: grant(a, "-1.00", "k"), InvalidAmount, id="negative grant"),
        pytest.param(lambda a: grant(a, "0.001", "k"), InvalidAmount, id="three places"),
        pytest.param(lambda a: grant(a, "1.00", ""), InvalidAmount, id="empty key"),
        pytest.param(
            lambda a: BatchEntry(
                account_id=a.pk, kind=EntryKind.HISTORY, amount=Decimal("1"), idempotency_key="k"
            ),
            InvalidAmount,
            id="history with an amount",
        ),
        pytest.param(
            lambda a: BatchEntry(
                account_id=a.pk, kind=EntryKind.SPEND, amount=Decimal("1"), idempotency_key="k"
            ),
            InvalidAmount,
            id="a spend",
        ),
        pytest.param(
            lambda a: BatchEntry(
                account_id=a.pk + 10_000,
                kind=EntryKind.MIGRATION,
                amount=Decimal("1"),
                idempotency_key="k",
            ),
            CreditAccount.DoesNotExist,
            id="no such account",
        ),
    ],
)
def test_bad_entries_are_refused_and_the_batch_writes_nothing(accounts, entry, error):
    before = ledger_snapshot()
    with pytest.raises(error):
        post([grant(accounts[0], "2.00", "good"), entry(accounts[1])])
    assert ledger_snapshot() == before
