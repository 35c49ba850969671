"""Expiry: `credit_expiry_run`, the beat task that runs it and `manage.py expire_credits`.

One `expiry` entry per lot whose expiry has come with credit left, never what holds reserve,
holds past their time released first; a second run, or two at once, writes nothing twice.
"""

import io
import os
import subprocess
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from importlib import import_module
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django_celery_beat.models import PeriodicTask

from credits.models import (
    CreditAccount,
    CreditHold,
    CreditLot,
    CreditTransaction,
    EntryKind,
    HoldStatus,
    LotCategory,
)
from credits.services import (
    credit_account_open,
    credit_expiry_run,
    credit_grant,
    credit_hold_create,
    credit_lots_expire,
    credit_spend,
)
from credits.tasks import expire_credits
from tests.factories import UserFactory
from tests.helpers import assert_ledger_consistent, ledger_snapshot, run_in_threads, table_contents
from tests.subprocesses import python

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("write_path")]

ROOT = Path(__file__).resolve().parents[2]
SOON = datetime.now(UTC) + timedelta(days=1)
LATER = SOON + timedelta(days=1)
WATCHED = (CreditAccount, CreditTransaction, CreditLot, CreditHold)


def account_with(*lots, user=None) -> CreditAccount:
    """An account holding one lot per (amount, expires_at, category) given."""
    account = credit_account_open(user=user or UserFactory())
    for index, (amount, expires_at, category) in enumerate(lots):
        credit_grant(
            account=account,
            amount=Decimal(amount),
            idempotency_key=f"lot:{account.pk}:{index}",
            expires_at=expires_at,
            category=category,
        )
    return account


def expiries(account) -> list[Decimal]:
    return list(
        CreditTransaction.objects.filter(account=account, kind=EntryKind.EXPIRY)
        .order_by("pk")
        .values_list("amount", flat=True)
    )


def test_a_lot_past_its_expiry_loses_what_is_left_once():
    # given: 100 promotional credits expiring SOON, 30 spent; 50 that never expire
    account = account_with(("100", SOON, "promotional"), ("50", None, "paid"))
    credit_spend(account=account, amount=Decimal("30"), idempotency_key="spend")
    # when
    first = credit_expiry_run(now=SOON)
    second = credit_expiry_run(now=LATER)
    # then: one entry of the 70 left; the second run wrote nothing
    assert (first.lots_expired, first.credits_expired) == (1, Decimal("70.00"))
    assert (second.holds_expired, second.lots_expired) == (0, 0)
    account.refresh_from_db()
    assert account.balance == Decimal("50.00")
    assert account.total_earned == Decimal("80.00")
    assert expiries(account) == [Decimal("-70.00")]
    (lot,) = CreditLot.objects.filter(account=account, category=LotCategory.PROMOTIONAL)
    assert lot.remaining == Decimal("0.00")
    assert_ledger_consistent()


def test_a_lot_not_yet_due_is_left_alone():
    # given
    account = account_with(("100", LATER, "promotional"))
    before = table_contents(*WATCHED)
    # when
    run = credit_expiry_run(now=SOON)
    # then
    assert (run.holds_expired, run.lots_expired, run.credits_expired) == (0, 0, Decimal("0.00"))
    assert table_contents(*WATCHED) == before
    assert account.lots.get().remaining == Decimal("100.00")


def test_a_hold_past_its_time_is_released_first_and_its_credits_then_expire():
    # given: all 100 expiring credits held by a hold whose time is up at SOON too
    account = account_with(("100", SOON, "promotional"))
    hold = credit_hold_create(
        account=account, amount=Decimal("100"), idempotency_key="hold", ttl_seconds=3600
    )
    # when
    run = credit_expiry_run(now=SOON)
    # then
    assert (run.holds_expired, run.lots_expired, run.credits_expired) == (1, 1, Decimal("100.00"))
    hold.refresh_from_db()
    account.refresh_from_db()
    assert hold.status == HoldStatus.EXPIRED
    assert (account.balance, account.held) == (Decimal("0.00"), Decimal("0.00"))
    assert_ledger_consistent()


def test_what_an_active_hold_reserves_waits_and_expires_once_the_hold_is_gone():
    # given: 100 expiring credits, 40 of them held until after LATER
    account = account_with(("100", SOON, "promotional"))
    credit_hold_create(
        account=account, amount=Decimal("40"), idempotency_key="hold", ttl_seconds=3 * 86400
    )
    # when: the lot's expiry comes while the hold is active
    first = credit_expiry_run(now=SOON)
    # then: the 60 available expire, the 40 held stay
    assert first.credits_expired == Decimal("60.00")
    account.refresh_from_db()
    assert (account.balance, account.held) == (Decimal("40.00"), Decimal("40.00"))
    # when: the hold's time is up too
    second = credit_expiry_run(now=SOON + timedelta(days=4))
    # then: released, and the rest of the lot expired under the lot's next key
    assert (second.holds_expired, second.credits_expired) == (1, Decimal("40.00"))
    assert expiries(account) == [Decimal("-60.00"), Decimal("-40.00")]
    account.refresh_from_db()
    assert (account.balance, account.held) == (Decimal("0.00"), Decimal("0.00"))
    assert_ledger_consistent()


def test_lots_a_hold_keeps_do_not_stand_in_front_of_the_rest():
    # given: the soonest lot is wholly held; another account's lot is due a day later
    held = account_with(("10", SOON, "promotional"))
    credit_hold_create(
        account=held, amount=Decimal("10"), idempotency_key="hold", ttl_seconds=7 * 86400
    )
    free = account_with(("25", SOON + timedelta(hours=1), "promotional"))
    # when: one lot at a time
    written = credit_lots_expire(now=LATER, limit=1)
    # then: the held lot is passed over, the next one expires
    assert [(entry.account_id, entry.amount) for entry in written] == [(free.pk, Decimal("-25.00"))]
    assert expiries(held) == []
    assert_ledger_consistent()


def test_a_run_in_small_batches_goes_on_until_every_due_lot_is_expired():
    # given: 7 due lots on 3 accounts
    accounts = [account_with(*[("5", SOON, "promotional")] * count) for count in (1, 2, 4)]
    # when
    run = credit_expiry_run(now=SOON, batch_size=2)
    # then
    assert (run.lots_expired, run.credits_expired, run.bounded) == (7, Decimal("35.00"), False)
    assert [CreditAccount.objects.get(pk=a.pk).balance for a in accounts] == [Decimal("0.00")] * 3
    assert_ledger_consistent()


def test_a_run_stops_at_its_bound_and_the_next_one_goes_on():
    # given: 5 due lots
    account = account_with(*[("5", SOON, "promotional")] * 5)
    # when: at most 2 batches of 2
    first = credit_expiry_run(now=SOON, batch_size=2, max_batches=2)
    second = credit_expiry_run(now=SOON, batch_size=2, max_batches=2)
    # then
    assert (first.lots_expired, first.bounded) == (4, True)
    assert (second.lots_expired, second.bounded) == (1, False)
    account.refresh_from_db()
    assert account.balance == Decimal("0.00")
    assert_ledger_consistent()


def test_a_monthly_lot_held_at_its_expiry_rolls_over_only_with_the_rest_expired(settings):
    # given: a cap of 30; 100 monthly credits, 90 of them held past the lot's expiry
    settings.CREDITS_MONTHLY_ROLLOVER_CAP = Decimal("30")
    account = account_with(("100", SOON, "monthly"))
    credit_hold_create(
        account=account, amount=Decimal("90"), idempotency_key="hold", ttl_seconds=2 * 86400
    )
    # when: the expiry comes with 10 available
    credit_expiry_run(now=SOON)
    # then: 10 expire; the lot has not rolled over (70 of the rest still to expire)
    lot = account.lots.get()
    assert (lot.remaining, lot.rolled_over, lot.expires_at) == (Decimal("90.00"), False, SOON)
    # when: the hold is gone
    credit_expiry_run(now=SOON + timedelta(days=3))
    # then: 60 more expire, 30 are kept into the next month, once
    lot.refresh_from_db()
    assert expiries(account) == [Decimal("-10.00"), Decimal("-60.00")]
    assert (lot.remaining, lot.rolled_over) == (Decimal("30.00"), True)
    assert lot.expires_at.month == (SOON.month % 12) + 1
    assert_ledger_consistent()


# --- the command ----------------------------------------------------------------------------


def expire(*args):
    out = io.StringIO()
    call_command("expire_credits", *args, stdout=out)
    return out.getvalue()


def test_the_command_expires_and_prints_the_counts():
    # given
    account_with(("100", SOON, "promotional"), ("20", SOON, "monthly"))
    # when
    output = expire(f"--now={LATER.isoformat()}")
    # then
    assert output.strip().splitlines()[-1] == (
        "expire_credits: 0 holds released as expired, 2 lots expired (120.00 credits)"
    )
    assert CreditTransaction.objects.filter(kind=EntryKind.EXPIRY).count() == 2
    # when: again
    again = expire(f"--now={LATER.isoformat()}")
    # then: nothing more
    assert "0 holds released as expired, 0 lots expired (0.00 credits)" in again
    assert CreditTransaction.objects.filter(kind=EntryKind.EXPIRY).count() == 2


def test_the_dry_run_lists_the_lots_and_holds_due_and_writes_nothing():
    # given: one due lot, one not due, and a hold whose time is up
    account = account_with(("100", SOON, "promotional"), ("50", LATER + timedelta(days=9), None))
    hold = credit_hold_create(
        account=account, amount=Decimal("5"), idempotency_key="hold", ttl_seconds=60
    )
    due = account.lots.get(expires_at=SOON)
    before = table_contents(*WATCHED)
    snapshot = ledger_snapshot()
    # when
    output = expire("--dry-run", f"--now={LATER.isoformat()}")
    # then
    lines = output.strip().splitlines()
    assert lines[0].startswith(f"hold {hold.pk}  account {account.pk}  5.00 credits  expired ")
    assert lines[1] == (
        f"lot {due.pk}  account {account.pk}  promotional  100.00 of 100.00 left  "
        f"expires {SOON.isoformat()}"
    )
    assert lines[2] == (
        f"expire_credits --dry-run as of {LATER.isoformat()}: 1 hold and 1 lot due "
        "(100.00 credits left in them); nothing was written"
    )
    assert len(lines) == 3
    assert table_contents(*WATCHED) == before
    assert ledger_snapshot() == snapshot


@pytest.mark.parametrize("value", ["tomorrow", "2026-13-01", "", "2026-12-01T25:00"])
def test_a_bad_now_is_a_usage_error_and_writes_nothing(value):
    # given
    account_with(("100", SOON, "promotional"))
    before = table_contents(*WATCHED)
    # when
    with pytest.raises(CommandError) as error:
        expire(f"--now={value}")
    # then
    assert error.value.returncode == 2
    assert str(error.value) == (
        f"--now must be an ISO 8601 date and time like 2026-12-01T00:00:00Z, not {value!r}"
    )
    assert table_contents(*WATCHED) == before


def test_a_now_without_an_offset_is_in_the_projects_time_zone():
    # given: a lot expiring at 00:00 UTC
    midnight = datetime(2030, 1, 1, tzinfo=UTC)
    account_with(("10", midnight, "promotional"))
    # when: a minute before, then at midnight, both without an offset (TIME_ZONE is UTC)
    before = expire("--dry-run", "--now=2029-12-31T23:59")
    at = expire("--dry-run", "--now=2030-01-01")
    # then
    assert "0 holds and 0 lots due" in before
    assert "0 holds and 1 lot due" in at


def test_a_bad_now_from_the_command_line_is_one_line_and_exit_2():
    # when
    result = subprocess.run(
        [*python(), "manage.py", "expire_credits", "--now", "soon"],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "project.settings_test"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    # then
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "CommandError: --now must be an ISO 8601 date and time like 2026-12-01T00:00:00Z, "
        "not 'soon'"
    ]


# --- the beat task and its schedule ---------------------------------------------------------


def test_the_task_expires_what_is_due_and_reports_the_counts():
    # given: a lot already past its expiry
    past = datetime.now(UTC) - timedelta(minutes=1)
    account = account_with(("12.50", past, "promotional"))
    # when: beat's call (eager without a broker)
    result = expire_credits.delay().get()
    # then
    assert result == {
        "holds_expired": 0,
        "lots_expired": 1,
        "credits_expired": "12.50",
        "bounded": False,
    }
    account.refresh_from_db()
    assert account.balance == Decimal("0.00")
    assert expire_credits.delay().get()["lots_expired"] == 0


def test_beat_runs_the_task_every_5_minutes():
    # when: migrations have run (they do for every test database)
    task = PeriodicTask.objects.select_related("interval").get(task="credits.tasks.expire_credits")
    # then
    assert task.enabled
    assert (task.interval.every, task.interval.period) == (5, "minutes")


def test_the_schedule_migration_reverses_and_applies_again():
    # given
    migration = import_module("credits.migrations.0012_expiry_schedule")
    editor = SimpleNamespace(connection=connection)
    # when
    migration.unschedule(apps, editor)
    # then
    assert not PeriodicTask.objects.filter(task="credits.tasks.expire_credits").exists()
    # when
    migration.schedule(apps, editor)
    migration.schedule(apps, editor)
    # then: once
    assert PeriodicTask.objects.filter(task="credits.tasks.expire_credits").count() == 1


# --- two runs at once -----------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_write_each_expiry_once():
    # given: 40 due lots on 8 accounts, and a hold on one of them whose time is up
    accounts = [account_with(*[("5", SOON, "promotional")] * 5) for _ in range(8)]
    credit_hold_create(
        account=accounts[0], amount=Decimal("5"), idempotency_key="hold", ttl_seconds=60
    )

    # when: 4 threads run the expiry at the same moment, in small batches
    def run(index):
        return credit_expiry_run(now=LATER, batch_size=3)

    results, errors = run_in_threads(run, count=4)
    # then: 40 expiries and 1 hold in all, whoever wrote them
    assert errors == []
    assert sum(result.lots_expired for result in results) == 40
    assert sum(result.holds_expired for result in results) == 1
    assert sum(result.credits_expired for result in results) == Decimal("200.00")
    assert CreditTransaction.objects.filter(kind=EntryKind.EXPIRY).count() == 40
    assert set(CreditAccount.objects.values_list("balance", "held")) == {
        (Decimal("0.00"), Decimal("0.00"))
    }
    assert_ledger_consistent()
