"""What the tests share: snapshots of the ledger, the ledger check, the API's one error shape,
funded accounts, and the migration tests' small helpers. Factories live in tests/factories.py.
"""

import io
import threading
from decimal import Decimal
from typing import NamedTuple

from django.apps import apps
from django.contrib.admin.models import LogEntry
from django.db import connection

from credits.models import CreditAccount, CreditApprovalRequest, CreditTransaction
from credits.selectors import (
    accounts_off_their_holds,
    accounts_off_their_lots,
    accounts_out_of_balance,
    ledger_sum,
    lots_off_their_allocations,
)

# --- the ledger -------------------------------------------------------------------------------


class LedgerState(NamedTuple):
    """Some accounts' figures and the ledger's counts: what a refused write must not change."""

    accounts: tuple[tuple[Decimal, Decimal, Decimal], ...]  # balance, earned, spent; as given
    entries: int
    approvals: int
    admin_log: int | None = None  # Django admin log entries, when asked for

    @property
    def balances(self) -> list[Decimal]:
        return [balance for balance, _, _ in self.accounts]

    @property
    def balance(self) -> Decimal:
        (balance,) = self.balances
        return balance


def ledger_state(*accounts: CreditAccount, admin_log: bool = False) -> LedgerState:
    """The accounts (refreshed from the database, as a test reads them next) and the counts of
    entries and approval requests (and of admin log entries with admin_log=True)."""
    for account in accounts:
        account.refresh_from_db()
    return LedgerState(
        accounts=tuple(
            (account.balance, account.total_earned, account.total_spent) for account in accounts
        ),
        entries=CreditTransaction.objects.count(),
        approvals=CreditApprovalRequest.objects.count(),
        admin_log=LogEntry.objects.count() if admin_log else None,
    )


def ledger_snapshot():
    """Every account's figures by pk and every entry's idempotency key in order: the whole
    ledger, for writes that must leave all of it as it was."""
    accounts = {
        pk: (balance, earned, spent)
        for pk, balance, earned, spent in CreditAccount.objects.order_by("pk").values_list(
            "pk", "balance", "total_earned", "total_spent"
        )
    }
    entries = list(CreditTransaction.objects.order_by("pk").values_list("idempotency_key"))
    return accounts, entries


def assert_ledger_consistent():
    """Every balance equals its entries, and every account's chain of entries is unbroken."""
    assert not accounts_out_of_balance().exists()
    for account in CreditAccount.objects.order_by("pk"):
        assert account.balance == ledger_sum(account=account)
        running = Decimal("0.00")
        for before, amount, after in account.entries.order_by("pk").values_list(
            "balance_before", "amount", "balance_after"
        ):
            assert before == running
            assert after == before + amount
            running = after
        assert running == account.balance
    # Invariants 11 and 12: lots add up to balances, holds to held, within the balance.
    assert not accounts_off_their_lots().exists()
    assert not lots_off_their_allocations().exists()
    assert not accounts_off_their_holds().exists()


def fund(account: CreditAccount, amount: str = "100.00", *, key: str = "fund") -> CreditAccount:
    """Grant the account credits and return it refreshed."""
    from credits.services import credit_grant

    credit_grant(account=account, amount=Decimal(amount), idempotency_key=key)
    account.refresh_from_db()
    return account


def balance_of(user_id: int) -> Decimal:
    """The user's balance, checked against the sum of their ledger entries."""
    account = CreditAccount.objects.get(user_id=user_id)
    assert account.balance == ledger_sum(account=account)
    return account.balance


def entries_of(user, **filters):
    return CreditTransaction.objects.filter(account__user=user, **filters).order_by("pk")


# --- concurrency ------------------------------------------------------------------------------

THREADS = 8


def run_in_threads(work, count=THREADS):
    """Run work(index) in `count` threads started together; return results and errors."""
    barrier = threading.Barrier(count)
    results, errors = [None] * count, []

    def target(index):
        try:
            barrier.wait()
            results[index] = work(index)
        except Exception as error:  # reported by the test, never swallowed
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=target, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors


# --- the API ----------------------------------------------------------------------------------


def assert_error_shape(response, status_code, code=None):
    """The response is JSON in the one error shape, with this status (and code, if given)."""
    assert response.status_code == status_code, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert isinstance(body["error"]["code"], str) and body["error"]["code"]
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)
    if code is not None:
        assert body["error"]["code"] == code
    return body["error"]


# Digits that are not ASCII, which every amount parser must refuse: "12" in Arabic-Indic and in
# fullwidth digits.
ARABIC_INDIC_12 = "\u0661\u0662"
FULLWIDTH_12 = "\uff11\uff12"


# --- the migration ----------------------------------------------------------------------------

ALL_SOURCES = ("user_fields", "usd_balance", "rate_limit", "usage_tiers")


class Terminal(io.StringIO):
    """A stdin (or stderr) that says it is a terminal, for the command's questions."""

    def isatty(self):
        return True


def sources_args(*names):
    """`--source NAME` for each name (all four sources when none are named)."""
    return [arg for name in names or ALL_SOURCES for arg in ("--source", name)]


def table_contents(*models):
    """Every row of these models (of every installed model when none are named), by label."""
    models = models or apps.get_models(include_auto_created=True)
    return {
        model._meta.label: list(model._base_manager.order_by("pk").values()) for model in models
    }
