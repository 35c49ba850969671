"""Monthly plan credits on Celery beat: each subscribed, migrated account once per period.

The beat grant and a paid invoice share the key (account, period), so whichever comes first
grants the month; a re-run, a second worker or a real Celery worker grants nothing twice.
"""

import os
import subprocess
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from billing.models import UserProfile
from billing.services import grant_period, monthly_credits_grant
from billing.stripe.services import stripe_invoice_paid
from billing.tasks import grant_monthly_credits
from core.keys import monthly_grant_key
from credits.models import CreditAccount, CreditTransaction, EntryKind
from credits.selectors import ledger_sum
from tests.billing import stripe_events
from tests.factories import PlanPriceFactory, ProvisionedUserFactory
from tests.subprocesses import python

ROOT = Path(__file__).resolve().parents[2]
PERIOD = "2025-12"


def subscriber(
    plan="pro", status="active", *, migrated=True, customer=None, username=None
) -> CreditAccount:
    user = ProvisionedUserFactory(
        provision__signup_grant=False, **({"username": username} if username else {})
    )
    UserProfile.objects.filter(user=user).update(
        plan=plan,
        subscription_status=status,
        stripe_customer_id=customer,
        migration_completed_at=timezone.now() if migrated else None,
    )
    return CreditAccount.objects.get(user=user)


def balances(*accounts) -> list[Decimal]:
    for account in accounts:
        account.refresh_from_db()
    return [account.balance for account in accounts]


def monthly_entries(account) -> int:
    return CreditTransaction.objects.filter(account=account, kind=EntryKind.MONTHLY_GRANT).count()


@pytest.mark.django_db
def test_the_schedule_is_in_the_database_for_staff_to_see():
    # when: migrations have run (they do for every test database)
    task = PeriodicTask.objects.select_related("crontab").get(
        task="billing.tasks.grant_monthly_credits"
    )
    # then: 00:00 UTC on the 1st of every month
    crontab = task.crontab
    assert task.enabled
    assert (
        crontab.minute,
        crontab.hour,
        crontab.day_of_month,
        crontab.month_of_year,
        crontab.day_of_week,
    ) == ("0", "0", "1", "*", "*")
    assert str(crontab.timezone) == "UTC"


@pytest.mark.django_db
def test_each_active_plan_grants_its_monthly_credits():
    # given
    pro = subscriber("pro", "active")
    business_trial = subscriber("business", "trialing")
    past_due = subscriber("pro", "past_due")
    canceled = subscriber("pro", "canceled")
    free_without_subscription = subscriber("free", "")
    # when
    granted = grant_monthly_credits.delay(period=PERIOD).get()
    # then
    assert granted == 2
    assert balances(pro, business_trial, past_due, canceled, free_without_subscription) == [
        Decimal("260.00"),
        Decimal("1000.00"),
        Decimal("0.00"),
        Decimal("0.00"),
        Decimal("0.00"),
    ]
    entry = pro.entries.get()
    assert entry.kind == EntryKind.MONTHLY_GRANT
    assert entry.idempotency_key == monthly_grant_key(account_id=pro.pk, period=PERIOD)
    assert entry.balance_before == Decimal("0.00")
    assert entry.balance_after == Decimal("260.00")
    assert entry.metadata == {"plan": "pro", "period": PERIOD}
    assert ledger_sum(account=pro) == Decimal("260.00")


@pytest.mark.django_db
def test_a_user_whose_migration_is_not_complete_is_skipped():
    # given
    waiting = subscriber("pro", "active", migrated=False)
    # when
    granted = monthly_credits_grant(period=PERIOD)
    # then
    assert granted == 0
    assert balances(waiting) == [Decimal("0.00")]


@pytest.mark.django_db
def test_a_yearly_subscription_gets_the_monthly_allocation():
    # given: a yearly business price, and a user subscribed on it
    PlanPriceFactory(stripe_price_id="price_business_yearly", plan="business", interval="year")
    yearly = subscriber("business", "active")
    UserProfile.objects.filter(user_id=yearly.user_id).update(
        stripe_price_id="price_business_yearly"
    )
    # when
    monthly_credits_grant(period="2025-12")
    monthly_credits_grant(period="2026-01")
    # then
    assert balances(yearly) == [Decimal("2000.00")]


@pytest.mark.django_db
def test_run_twice_for_one_period_grants_once_per_account():
    # given
    accounts = [subscriber("pro") for _ in range(3)]
    # when
    first = grant_monthly_credits.delay(period=PERIOD).get()
    second = grant_monthly_credits.delay(period=PERIOD).get()
    # then
    assert (first, second) == (3, 0)
    assert balances(*accounts) == [Decimal("260.00")] * 3
    assert [monthly_entries(account) for account in accounts] == [1, 1, 1]


@pytest.mark.django_db
def test_users_are_streamed_in_batches_each_granted_once():
    # given
    accounts = [subscriber("pro") for _ in range(5)]
    # when
    granted = monthly_credits_grant(period=PERIOD, batch_size=2)
    # then
    assert granted == 5
    assert balances(*accounts) == [Decimal("260.00")] * 5


@pytest.mark.django_db
def test_the_default_period_is_the_current_utc_month():
    # given
    account = subscriber("pro")
    # when
    grant_monthly_credits.delay().get()
    # then
    entry = account.entries.get()
    assert entry.metadata["period"] == grant_period(entry.created_at)


@pytest.mark.django_db
def test_a_malformed_period_is_refused():
    with pytest.raises(ValueError):
        monthly_credits_grant(period="2025-13")


@pytest.mark.django_db
def test_an_invoice_granted_month_is_not_granted_again_by_beat():
    # given: December paid by invoice
    PlanPriceFactory(stripe_price_id="price_pro_monthly", plan="pro")
    account = subscriber("pro", customer="cus_paid")
    stripe_invoice_paid(
        event_id="evt_invoice_december",
        event_type="invoice.paid",
        payload=stripe_events.invoice(price_id="price_pro_monthly", customer="cus_paid"),
    )
    # when
    granted = monthly_credits_grant(period=PERIOD)
    # then
    assert granted == 0
    assert balances(account) == [Decimal("260.00")]
    assert monthly_entries(account) == 1


@pytest.mark.django_db
def test_a_beat_granted_month_is_not_granted_again_by_the_invoice():
    # given: December granted by beat
    PlanPriceFactory(stripe_price_id="price_pro_monthly", plan="pro")
    account = subscriber("pro", customer="cus_paid")
    monthly_credits_grant(period=PERIOD)
    # when
    stripe_invoice_paid(
        event_id="evt_invoice_december",
        event_type="invoice.paid",
        payload=stripe_events.invoice(price_id="price_pro_monthly", customer="cus_paid"),
    )
    # then
    assert balances(account) == [Decimal("260.00")]
    assert monthly_entries(account) == 1


# --- Real concurrency and a real worker (PostgreSQL, Redis) -------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_at_once_grant_once_per_account():
    # given: 40 subscribers, granted by two workers in batches of 7 at the same moment
    accounts = [subscriber("pro") for _ in range(40)]
    barrier = threading.Barrier(2)
    results, errors = [None, None], []

    def worker(index):
        try:
            barrier.wait()
            results[index] = monthly_credits_grant(period=PERIOD, batch_size=7)
        except Exception as error:  # reported below, never swallowed
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(2)]
    # when
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then
    assert errors == []
    assert sum(results) == 40
    assert balances(*accounts) == [Decimal("260.00")] * 40
    assert CreditTransaction.objects.filter(kind=EntryKind.MONTHLY_GRANT).count() == 40
    assert all(ledger_sum(account=account) == Decimal("260.00") for account in accounts)


def _database_url() -> str:
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    if db["PASSWORD"]:
        url = url.replace("@", f":{db['PASSWORD']}@", 1)
    return url


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
# The test process runs tasks eagerly (settings_test); send_task goes to the broker regardless.
@pytest.mark.filterwarnings("ignore::celery.exceptions.AlwaysEagerIgnored")
def test_a_real_celery_worker_grants_the_month(redis_url):
    # given: subscribers in the test database, and a worker on its own queue over Redis
    from project.celery import app

    accounts = [subscriber("pro") for _ in range(3)] + [subscriber("business")]
    queue = f"credits-test-{uuid.uuid4().hex[:12]}"
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "CELERY_BROKER_URL": redis_url,
    }
    args = [*python(), "-m", "celery", "-A", "project", "worker", "--pool=solo", "-Q", queue]
    args += ["--concurrency=1", "--without-gossip", "--without-mingle", "--loglevel=WARNING"]
    worker = subprocess.Popen(
        args,
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # when: the task is queued twice, as beat and a retried delivery might
        with app.connection_for_write(redis_url) as broker:
            for _ in range(2):
                app.send_task(
                    "billing.tasks.grant_monthly_credits",
                    kwargs={"period": PERIOD},
                    queue=queue,
                    connection=broker,
                )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and worker.poll() is None:
            if CreditTransaction.objects.filter(kind=EntryKind.MONTHLY_GRANT).count() == 4:
                break
            time.sleep(0.5)
        # let the second delivery run too before reading the final state
        time.sleep(2)
    finally:
        worker.terminate()
        try:
            _, stderr = worker.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            _, stderr = worker.communicate()
    # then
    assert balances(*accounts) == [Decimal("260.00")] * 3 + [Decimal("1000.00")], stderr
    assert [monthly_entries(account) for account in accounts] == [1, 1, 1, 1]


@pytest.mark.django_db
def test_a_subscription_ended_before_the_period_gets_no_monthly_grant():
    # given: both "active" by status; one subscription ended on 2025-11-20
    from datetime import UTC, datetime

    from tests.helpers import assert_ledger_consistent

    ended = subscriber("pro", username="ended")
    running = subscriber("pro", username="running")
    UserProfile.objects.filter(user=ended.user).update(
        subscription_ends_at=datetime(2025, 11, 20, tzinfo=UTC)
    )
    UserProfile.objects.filter(user=running.user).update(
        subscription_ends_at=datetime(2026, 1, 1, tzinfo=UTC)
    )
    # when
    granted = monthly_credits_grant(period=PERIOD)
    # then
    assert granted == 1
    assert balances(ended, running) == [Decimal("0.00"), Decimal("260.00")]
    assert_ledger_consistent()
