"""The database refuses what breaks the ledger's invariants, even when the ORM is bypassed.

Each test writes with `.update()` or raw SQL, expects an IntegrityError, and checks nothing
changed. A valid raw insert goes through first, so a refusal is the constraint's doing and
not a broken statement.
"""

from decimal import Decimal

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from credits.exceptions import LedgerEntryImmutable
from credits.models import (
    CreditAccount,
    CreditAllocation,
    CreditHold,
    CreditLot,
    CreditTransaction,
)
from credits.services import (
    credit_grant,
    credit_hold_capture,
    credit_hold_create,
    credit_spend,
)
from tests.helpers import assert_ledger_consistent, fund, ledger_state, table_contents

pytestmark = pytest.mark.django_db

COLUMNS = (
    "account_id, kind, amount, balance_before, balance_after, source, description,"
    " idempotency_key, stripe_event_id, legacy_transaction_id, migrated_from, metadata,"
    " actor_id, reason, reverses_id, created_at"
)


def raw_insert(account, **overrides):
    row = {
        "account_id": account.pk,
        "kind": "history",
        "amount": Decimal("0"),
        "balance_before": Decimal("0"),
        "balance_after": Decimal("0"),
        "source": "",
        "description": "",
        "idempotency_key": "raw",
        "stripe_event_id": None,
        "legacy_transaction_id": None,
        "migrated_from": "",
        "metadata": "{}",
        "actor_id": None,
        "reason": "",
        "reverses_id": None,
        "created_at": timezone.now(),
    }
    row.update(overrides)
    placeholders = ", ".join(["%s"] * len(row))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO credits_credittransaction ({COLUMNS}) VALUES ({placeholders})",
            [row[name.strip()] for name in COLUMNS.split(",")],
        )


def refused(write):
    with pytest.raises(IntegrityError), transaction.atomic():
        write()


@pytest.fixture
def funded(account):
    return fund(account, "10")


def test_the_raw_insert_helper_writes_a_valid_row(account):
    raw_insert(account, idempotency_key="valid-history")
    assert CreditTransaction.objects.filter(idempotency_key="valid-history").exists()


def test_balance_cannot_go_negative(funded):
    before = ledger_state(funded)
    refused(
        lambda: CreditAccount.objects.filter(pk=funded.pk).update(
            balance=F("balance") - 11, total_earned=F("total_earned") - 11
        )
    )
    assert ledger_state(funded) == before


def test_balance_must_equal_earned_minus_spent(funded):
    before = ledger_state(funded)
    refused(lambda: CreditAccount.objects.filter(pk=funded.pk).update(balance=F("balance") + 5))
    refused(lambda: CreditAccount.objects.filter(pk=funded.pk).update(total_spent=-1, balance=11))
    assert ledger_state(funded) == before


@pytest.mark.parametrize(
    "overrides",
    [
        # balance_after must be balance_before + amount
        {"kind": "grant", "amount": Decimal("5"), "balance_after": Decimal("6")},
        # balances never negative
        {"kind": "spend", "amount": Decimal("-5"), "balance_after": Decimal("-5")},
        # amount zero only for history, and history only zero
        {"kind": "grant"},
        {"kind": "history", "amount": Decimal("5"), "balance_after": Decimal("5")},
        # signs per kind
        {"kind": "grant", "amount": Decimal("-1"), "balance_before": Decimal("1")},
        {"kind": "spend", "amount": Decimal("1"), "balance_after": Decimal("1")},
        {"kind": "refund", "amount": Decimal("1"), "balance_after": Decimal("1")},
        # a reversal names its entry; nothing else does
        {"kind": "reversal", "amount": Decimal("1"), "balance_after": Decimal("1")},
        # every write carries a key
        {"idempotency_key": ""},
    ],
    ids=[
        "after-not-before-plus-amount",
        "negative-balance",
        "zero-grant",
        "moving-history",
        "negative-grant",
        "positive-spend",
        "positive-refund",
        "reversal-without-entry",
        "empty-key",
    ],
)
def test_check_constraints_refuse_raw_inserts(account, overrides):
    before = ledger_state(account)
    refused(lambda: raw_insert(account, **overrides))
    assert ledger_state(account) == before


def test_non_reversal_cannot_name_an_entry(funded):
    grant = CreditTransaction.objects.get(idempotency_key="fund")
    before = ledger_state(funded)
    refused(
        lambda: raw_insert(
            funded, reverses_id=grant.pk, balance_before=Decimal("10"), balance_after=Decimal("10")
        )
    )
    assert ledger_state(funded) == before


@pytest.mark.parametrize(
    "field, value",
    [
        ("idempotency_key", "fund"),
        ("stripe_event_id", "evt_1"),
        ("legacy_transaction_id", "legacy:1"),
    ],
)
def test_unique_references_refuse_a_second_row(funded, field, value):
    credit_grant(
        account=funded, amount=Decimal("1"), idempotency_key="evt", stripe_event_id="evt_1"
    )
    raw_insert(
        funded,
        idempotency_key="history-1",
        legacy_transaction_id="legacy:1",
        balance_before=Decimal("11"),
        balance_after=Decimal("11"),
    )
    before = ledger_state(funded)
    overrides = {"idempotency_key": "another", field: value}
    overrides.update(balance_before=Decimal("11"), balance_after=Decimal("11"))
    refused(lambda: raw_insert(funded, **overrides))
    assert ledger_state(funded) == before


def test_an_entry_is_reversed_at_most_once(funded):
    grant = CreditTransaction.objects.get(idempotency_key="fund")
    reversal = {
        "kind": "reversal",
        "amount": Decimal("-10"),
        "balance_before": Decimal("10"),
        "balance_after": Decimal("0"),
        "reverses_id": grant.pk,
    }
    raw_insert(funded, idempotency_key="rev-1", **reversal)
    refused(lambda: raw_insert(funded, idempotency_key="rev-2", **reversal))
    assert CreditTransaction.objects.filter(reverses=grant).count() == 1


def test_python_refuses_to_change_or_delete_an_entry(funded):
    entry = CreditTransaction.objects.get(idempotency_key="fund")
    entry.amount = Decimal("1000")
    with pytest.raises(LedgerEntryImmutable):
        entry.save()
    with pytest.raises(LedgerEntryImmutable):
        entry.delete()
    with pytest.raises(LedgerEntryImmutable):
        CreditTransaction.objects.filter(pk=entry.pk).update(amount=Decimal("1000"))
    with pytest.raises(LedgerEntryImmutable):
        CreditTransaction.objects.filter(pk=entry.pk).delete()
    entry.refresh_from_db()
    assert entry.amount == Decimal("10.00")


@pytest.mark.postgres
def test_postgresql_trigger_refuses_update_and_delete(funded):
    entry = credit_spend(account=funded, amount=Decimal("4"), idempotency_key="spend")
    before = ledger_state(funded)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        CreditTransaction._base_manager.filter(pk=entry.pk).update(amount=Decimal("-1"))
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        CreditTransaction._base_manager.filter(pk=entry.pk)._raw_delete(connection.alias)
    for statement in (
        "UPDATE credits_credittransaction SET description = 'edited' WHERE id = %s",
        "DELETE FROM credits_credittransaction WHERE id = %s",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement, [entry.pk])
    assert ledger_state(funded) == before
    entry.refresh_from_db()
    assert (entry.amount, entry.description) == (Decimal("-4.00"), "")


# --- lots, allocations and holds (invariants 11 and 12) ---------------------------------------

LOT_TABLES = (CreditAccount, CreditTransaction, CreditLot, CreditAllocation, CreditHold)


@pytest.fixture
def with_lots_and_holds(account):
    """An account granted 20 whose spend of 4 took from its lot, with an active hold of 3 and
    a captured hold (2 of 5), so every table below has a valid row to break."""
    fund(account, "20")
    credit_spend(account=account, amount=Decimal("4"), idempotency_key="spend-4")
    credit_hold_create(account=account, amount=Decimal("3"), idempotency_key="hold-active")
    captured = credit_hold_create(
        account=account, amount=Decimal("5"), idempotency_key="hold-captured"
    )
    credit_hold_capture(hold=captured, idempotency_key="capture", amount=Decimal("2"))
    account.refresh_from_db()
    assert (account.balance, account.held) == (Decimal("14.00"), Decimal("3.00"))
    return account


def execute(sql, params=()):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_raw_updates_within_the_constraints_go_through(with_lots_and_holds):
    # given statements of the same shapes as the refused ones below, with values the
    # constraints allow: so a refusal is the constraint's doing, not a broken statement
    statements = [
        "UPDATE credits_creditlot SET remaining = amount",
        "UPDATE credits_creditlot SET remaining = 0",
        "UPDATE credits_creditaccount SET held = balance",
        "UPDATE credits_creditaccount SET held = 0",
        "UPDATE credits_credithold SET captured = amount WHERE status = 'captured'",
        "UPDATE credits_creditallocation SET amount = 1",
    ]
    for statement in statements:
        # when each runs in a savepoint that is then rolled back
        with transaction.atomic():
            execute(statement)
            transaction.set_rollback(True)
    # then none raised, and the rollbacks left the ledger consistent
    assert_ledger_consistent()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE credits_creditlot SET remaining = amount + 1",
        "UPDATE credits_creditlot SET remaining = -1",
        "UPDATE credits_creditlot SET amount = 0, remaining = 0",
        "UPDATE credits_creditlot SET category = 'gift'",
        "UPDATE credits_creditaccount SET held = balance + 1",
        "UPDATE credits_creditaccount SET held = -1",
        "UPDATE credits_credithold SET captured = amount + 1 WHERE status = 'captured'",
        "UPDATE credits_credithold SET captured = -1 WHERE status = 'captured'",
        "UPDATE credits_credithold SET status = 'captured', captured = amount"
        " WHERE status = 'active'",
        "UPDATE credits_credithold SET status = 'active' WHERE status = 'captured'",
        "UPDATE credits_credithold SET status = 'released' WHERE status = 'captured'",
        "UPDATE credits_credithold SET amount = 0 WHERE status = 'active'",
        "UPDATE credits_creditallocation SET amount = 0",
    ],
    ids=[
        "lot-remaining-above-amount",
        "lot-remaining-negative",
        "lot-amount-zero",
        "lot-category-unknown",
        "held-above-balance",
        "held-negative",
        "hold-captured-above-amount",
        "hold-captured-negative",
        "hold-captured-without-entry",
        "hold-active-with-entry",
        "hold-released-with-capture",
        "hold-amount-zero",
        "allocation-amount-zero",
    ],
)
def test_raw_sql_that_breaks_lots_or_holds_is_refused(with_lots_and_holds, statement):
    # given
    before = table_contents(*LOT_TABLES)
    # when / then
    refused(lambda: execute(statement))
    assert table_contents(*LOT_TABLES) == before
    assert_ledger_consistent()


def test_a_second_lot_for_one_entry_is_refused(with_lots_and_holds):
    # given the grant's lot
    lot = CreditLot.objects.get(entry__idempotency_key="fund")
    before = table_contents(*LOT_TABLES)
    # when a raw insert gives the same entry a second lot
    refused(
        lambda: execute(
            "INSERT INTO credits_creditlot (account_id, category, amount, remaining, priority,"
            " effective_at, expires_at, rolled_over, entry_id)"
            " VALUES (%s, 'paid', 1, 1, 0, %s, NULL, %s, %s)",
            [lot.account_id, timezone.now(), False, lot.entry_id],
        )
    )
    # then
    assert table_contents(*LOT_TABLES) == before


def test_a_second_allocation_of_one_entry_to_one_lot_is_refused(with_lots_and_holds):
    allocation = CreditAllocation.objects.get(entry__idempotency_key="spend-4")
    before = table_contents(*LOT_TABLES)
    refused(
        lambda: execute(
            "INSERT INTO credits_creditallocation (entry_id, lot_id, amount) VALUES (%s, %s, 1)",
            [allocation.entry_id, allocation.lot_id],
        )
    )
    assert table_contents(*LOT_TABLES) == before


def test_a_second_hold_with_one_key_is_refused(with_lots_and_holds):
    hold = CreditHold.objects.get(idempotency_key="hold-active")
    before = table_contents(*LOT_TABLES)
    refused(
        lambda: execute(
            "INSERT INTO credits_credithold (account_id, amount, captured, status, expires_at,"
            " idempotency_key, description, reason, created_at)"
            " VALUES (%s, 1, 0, 'active', %s, %s, '', '', %s)",
            [hold.account_id, hold.expires_at, hold.idempotency_key, timezone.now()],
        )
    )
    assert table_contents(*LOT_TABLES) == before
