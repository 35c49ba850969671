"""Several batches of one run in flight at once (`--workers`), each on its own connection.

PostgreSQL only: threads with real connections and real commits, so the test database is
transactional. Every user must be migrated exactly once, the totals exact, and a run over the
same users at the same time from another process-like caller must add nothing.
"""

import io
import threading
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections
from django.db.models import Count, Sum

from billing.models import LegacyBilling
from credits.models import CreditTransaction, EntryKind
from migrations_app.engine.parallel import run_in_order
from migrations_app.models import MigrationRun, MigrationStatus, UserMigration
from tests.factories import LegacyBillingFactory
from tests.helpers import balance_of

USERS = 120

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def balances():
    # given: users with USD balances, one rule breaker (negative) in the middle
    rows = [
        LegacyBillingFactory(balance_usd=Decimal(index) + Decimal("0.25")) for index in range(USERS)
    ]
    rows[USERS // 2].balance_usd = Decimal("-1.00")
    rows[USERS // 2].save()
    return {row.user_id: row.balance_usd for row in rows}


def assert_migrated_once(balances):
    rule_breaker = [user_id for user_id, usd in balances.items() if usd < 0]
    statuses = dict(
        UserMigration.objects.filter(source="usd_balance").values_list("user_id", "status")
    )
    assert len(statuses) == USERS
    assert [u for u, s in statuses.items() if s == MigrationStatus.FAILED] == rule_breaker
    per_user = CreditTransaction.objects.filter(kind=EntryKind.MIGRATION).values("account__user_id")
    assert all(row["n"] == 1 for row in per_user.annotate(n=Count("id")))
    expected = sum(usd for usd in balances.values() if usd > 0)
    granted = CreditTransaction.objects.filter(kind=EntryKind.MIGRATION).aggregate(
        total=Sum("amount")
    )["total"]
    assert granted == expected
    for user_id, usd in balances.items():
        if usd > 0:
            assert balance_of(user_id) == usd
    assert (
        not LegacyBilling.objects.exclude(user_id__in=rule_breaker).exclude(balance_usd=0).exists()
    )


def test_workers_migrate_every_user_once_with_exact_totals(migrate, balances):
    # when: batches of 7 users, 3 in flight at once
    _, report = migrate(
        "--execute",
        "--yes",
        "--source",
        "usd_balance",
        "--batch-size",
        "7",
        "--workers",
        "3",
        "--format",
        "json",
        expect=1,
    )
    # then
    assert report["users"] == {"migrated": USERS - 1, "failed": 1}
    assert report["parameters"]["workers"] == 3
    assert MigrationRun.objects.get().processed == USERS
    assert_migrated_once(balances)


def test_two_runs_started_together_migrate_each_user_once(balances, tmp_path):
    # given: two runs of the same source started at once, each with 2 workers
    barrier = threading.Barrier(2)
    exit_codes, errors = [], []

    def run():
        try:
            barrier.wait()
            call_command(
                "migrate_credits",
                "--execute",
                "--yes",
                "--source",
                "usd_balance",
                "--batch-size",
                "5",
                "--workers",
                "2",
                f"--backup-dir={tmp_path}",
                stdout=io.StringIO(),
                stderr=io.StringIO(),
            )
            exit_codes.append(0)
        except CommandError as error:
            exit_codes.append(error.returncode)
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(2)]
    # when
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then: one run migrated everyone (exit 1: the rule breaker failed); the other was refused
    # while it ran (exit 2), or came after it and found nothing left but the rule breaker
    assert errors == []
    assert sorted(exit_codes) in ([1, 1], [1, 2])
    assert_migrated_once(balances)


def test_results_come_back_in_order_and_an_error_stops_the_run():
    # given: work that fails on one item
    def work(item):
        if item == 13:
            raise ValueError("bad item")
        return item * 2

    # when / then: results in order up to the failure, which is raised to the caller
    results = []
    with pytest.raises(ValueError, match="bad item"):
        for result in run_in_order(work, range(40), workers=3):
            results.append(result)
    assert results == [item * 2 for item in range(13)]
