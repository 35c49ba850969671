"""Which path writes an entry (credits.services.posting), on the database each is for.

The invariants themselves are tested through both paths elsewhere (`write_path`); here, that
PostgreSQL writes through its one-statement fast path unless told otherwise, and that the
entries the fast path does not take still reach the ledger through the portable one.
"""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from credits.models import CreditTransaction
from credits.services import credit_grant, credit_refund, credit_spend

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def portable_updates(queries) -> int:
    """The portable path's balance UPDATEs among the queries Django ran (the fast path's
    statement goes through its own psycopg cursor, which Django does not log)."""
    return sum(query["sql"].startswith('UPDATE "credits_creditaccount"') for query in queries)


def test_the_hot_statement_is_prepared_once_per_connection(account):
    # given: two spends of the same shape on one connection
    credit_grant(account=account, amount=Decimal("100.00"), idempotency_key="fund")
    credit_spend(account=account, amount=Decimal("1.00"), idempotency_key="p1")
    credit_spend(account=account, amount=Decimal("1.00"), idempotency_key="p2")
    # then: PostgreSQL holds it as a prepared statement (planned once, not per spend)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s",
            ["%WITH moved AS%"],
        )
        assert cursor.fetchone()[0] == 1


def test_postgresql_writes_in_one_statement_unless_the_fast_path_is_off(account, settings):
    # given the default
    assert settings.CREDITS_POSTGRESQL_FAST_PATH is True
    # when
    with CaptureQueriesContext(connection) as fast:
        credit_grant(account=account, amount=Decimal("10.00"), idempotency_key="fast")
    settings.CREDITS_POSTGRESQL_FAST_PATH = False
    with CaptureQueriesContext(connection) as portable:
        credit_grant(account=account, amount=Decimal("10.00"), idempotency_key="portable")
    # then the first went through the fast path, the second through the portable one
    assert portable_updates(fast.captured_queries) == 0
    assert portable_updates(portable.captured_queries) == 1
    account.refresh_from_db()
    assert account.balance == Decimal("20.00")
    assert CreditTransaction.objects.filter(account=account).count() == 2


def test_a_partial_refund_takes_the_portable_path_with_the_fast_path_on(account):
    # given
    credit_grant(account=account, amount=Decimal("5.00"), idempotency_key="fund")
    # when more is refunded than the account holds
    with CaptureQueriesContext(connection) as queries:
        entry = credit_refund(
            account=account,
            amount=Decimal("8.00"),
            idempotency_key="refund",
            reason="refund",
            allow_partial=True,
        )
    # then the portable path took what was left
    assert portable_updates(queries.captured_queries) == 1
    assert entry.amount == Decimal("-5.00")
    assert entry.metadata["shortfall"] == "3.00"
    account.refresh_from_db()
    assert account.balance == Decimal("0.00")
