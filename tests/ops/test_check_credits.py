"""Monitoring: `check_credits` and GET /api/admin/billing/health say what needs attention.

Each problem is made for real (a balance changed behind the ledger's back, a refused spend
through the API, a failed webhook row, a FAILED migration, a run whose heartbeat stopped) and
the check must name it; with none, exit 0.
"""

import io
import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.models import F
from django.urls import reverse
from django.utils import timezone
from djstripe.models import WebhookEventTrigger
from rest_framework.test import APIClient

from billing.models import StripeEventIssue
from credits.models import CreditAccount, CreditLot, CreditTransaction, SpendRefusal
from credits.services import credit_grant
from migrations_app.models import MigrationStatus
from tests.factories import (
    MigrationRunFactory,
    ProvisionedUserFactory,
    StaffUserFactory,
    UserFactory,
    UserMigrationFactory,
)
from tests.helpers import assert_error_shape

HEALTH_URL = reverse("billing-health")
CHECKS = {
    "ledger_mismatches",
    "lot_mismatches",
    "hold_mismatches",
    "negative_balances",
    "failed_spends_last_hour",
    "failed_webhooks_last_hour",
    "failed_migrations",
    "stuck_migration_runs",
}

pytestmark = pytest.mark.django_db


def check(*args):
    """Run check_credits; return (exit code, output)."""
    out = io.StringIO()
    try:
        call_command("check_credits", *args, stdout=out)
    except CommandError as error:
        return error.returncode, out.getvalue()
    return 0, out.getvalue()


def attention(output_json):
    return {name for name, item in output_json["checks"].items() if item["needs_attention"]}


def test_all_clear_exits_0():
    # given: a healthy ledger
    user = ProvisionedUserFactory()
    credit_grant(
        account=CreditAccount.objects.get(user=user),
        amount=Decimal("5.00"),
        idempotency_key="grant:1",
        actor=UserFactory(is_staff=True),
        reason="welcome",
    )
    # when
    code, text = check()
    json_code, printed = check("--format", "json")
    # then
    assert (code, json_code) == (0, 0)
    assert "check_credits: all clear" in text
    body = json.loads(printed)
    assert set(body["checks"]) == CHECKS
    assert body["needs_attention"] is False
    assert attention(body) == set()


def test_a_balance_changed_behind_the_ledger_is_reported():
    # given: an account whose figures were changed without an entry or a lot (bypassing the
    # services)
    user = ProvisionedUserFactory()
    CreditAccount.objects.filter(user=user).update(
        balance=F("balance") + 7, total_earned=F("total_earned") + 7
    )
    # when
    code, printed = check("--format", "json")
    # then
    body = json.loads(printed)
    assert code == 1
    assert attention(body) == {"ledger_mismatches", "lot_mismatches"}
    assert body["checks"]["ledger_mismatches"]["examples"][0]["user_id"] == user.pk
    assert body["checks"]["lot_mismatches"]["examples"][0]["user_id"] == user.pk
    assert body["checks"]["negative_balances"]["count"] == 0


def granted(settings, amount: str = "5.00") -> CreditAccount:
    """A new user's account holding one granted lot of `amount` (no signup grant)."""
    settings.CREDITS_SIGNUP_GRANT = 0
    account = CreditAccount.objects.get(user=ProvisionedUserFactory())
    credit_grant(account=account, amount=Decimal(amount), idempotency_key=f"grant:{account.pk}")
    return account


def test_a_lot_changed_behind_the_ledger_is_reported_with_its_account(settings):
    # given: a lot whose remaining was changed by raw SQL (lots are not append-only), so its
    # account's balance is no longer its lots' remaining, nor the lot its amount less what
    # its allocations took; another account stays clean
    account = granted(settings, "5.00")
    granted(settings, "3.00")
    lot = CreditLot.objects.get(account=account)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {CreditLot._meta.db_table} SET remaining = %s WHERE id = %s",
            [Decimal("4.00"), lot.pk],
        )
    # when
    code, text = check()
    _, printed = check("--format", "json")
    # then
    body = json.loads(printed)
    assert code == 1
    assert attention(body) == {"lot_mismatches"}
    lots = body["checks"]["lot_mismatches"]
    assert lots["count"] == 2
    assert lots["examples"] == [
        {
            "account_id": account.pk,
            "user_id": account.user_id,
            "balance": "5.00",
            "lots_remaining": "4.00",
        },
        {
            "account_id": account.pk,
            "user_id": account.user_id,
            "lot_id": lot.pk,
            "remaining": "4.00",
            "amount_less_allocations": "5.00",
        },
    ]
    assert "ATTENTION lot_mismatches" in text
    assert f"account_id {account.pk}, user_id {account.user_id}, balance 5.00" in text


def test_held_credits_without_an_active_hold_are_reported_with_their_account(settings):
    # given: held set by raw SQL with no hold behind it (within the balance, so the database's
    # CHECK lets it through; only the check can see it)
    account = granted(settings, "5.00")
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {CreditAccount._meta.db_table} SET held = %s WHERE id = %s",
            [Decimal("2.00"), account.pk],
        )
    # when
    code, printed = check("--format", "json")
    # then
    body = json.loads(printed)
    assert code == 1
    assert attention(body) == {"hold_mismatches"}
    assert body["checks"]["hold_mismatches"]["examples"] == [
        {
            "account_id": account.pk,
            "user_id": account.user_id,
            "held": "2.00",
            "active_holds": "0.00",
            "balance": "5.00",
        }
    ]


def test_refused_spends_are_recorded_and_counted_above_the_threshold(settings):
    # given: a user with 20 credits trying to spend 50, three times, and a threshold of 2
    settings.CREDITS_CHECK_FAILED_SPENDS_PER_HOUR = 2
    user = ProvisionedUserFactory()
    account = CreditAccount.objects.get(user=user)
    client = APIClient()
    client.force_authenticate(user=user)
    entries = CreditTransaction.objects.count()
    # when
    for n in range(3):
        response = client.post(
            reverse("credits-spend"), {"amount": "50.00", "idempotency_key": f"k{n}"}, format="json"
        )
        assert_error_shape(response, 402, "insufficient_credits")
    # then: nothing moved on the ledger; the refusals are on record
    account.refresh_from_db()
    assert account.balance == Decimal("20.00")
    assert CreditTransaction.objects.count() == entries
    refusal = SpendRefusal.objects.first()
    assert (refusal.account, refusal.amount, refusal.balance, refusal.code) == (
        account,
        Decimal("50.00"),
        Decimal("20.00"),
        "insufficient_credits",
    )
    code, printed = check("--format", "json")
    body = json.loads(printed)
    assert code == 1
    assert attention(body) == {"failed_spends_last_hour"}
    assert body["checks"]["failed_spends_last_hour"]["count"] == 3


def test_refused_spends_older_than_an_hour_are_not_counted(settings):
    settings.CREDITS_CHECK_FAILED_SPENDS_PER_HOUR = 0
    account = CreditAccount.objects.get(user=ProvisionedUserFactory())
    refusal = SpendRefusal.objects.create(
        account=account, amount=Decimal("1"), balance=Decimal("0"), code="insufficient_credits"
    )
    SpendRefusal.objects.filter(pk=refusal.pk).update(
        created_at=timezone.now() - timedelta(hours=2)
    )
    assert check()[0] == 0


def test_failed_webhooks_and_stripe_event_issues_of_the_last_hour_are_reported():
    # given: a delivery that raised, one never processed, an issue; and an old failure
    WebhookEventTrigger.objects.create(
        remote_ip="127.0.0.1", headers={}, body="{}", valid=True, exception="ValueError"
    )
    WebhookEventTrigger.objects.create(remote_ip="127.0.0.1", headers={}, body="{}")
    old = WebhookEventTrigger.objects.create(remote_ip="127.0.0.1", headers={}, body="{}")
    WebhookEventTrigger.objects.filter(pk=old.pk).update(
        created=timezone.now() - timedelta(hours=3)
    )
    WebhookEventTrigger.objects.create(
        remote_ip="127.0.0.1", headers={}, body="{}", valid=True, processed=True
    )
    StripeEventIssue.objects.create(
        stripe_event_id="evt_1", event_type="invoice.paid", kind="unknown_price", detail="?"
    )
    # when
    code, printed = check("--format", "json")
    # then
    body = json.loads(printed)
    assert code == 1
    assert attention(body) == {"failed_webhooks_last_hour"}
    assert body["checks"]["failed_webhooks_last_hour"]["count"] == 3


def test_failed_migrations_and_stuck_runs_are_reported(settings):
    # given: a FAILED user migration, a run silent for longer than the threshold, a live one
    settings.CREDITS_MIGRATION_STALE_AFTER = 60
    UserMigrationFactory(status=MigrationStatus.FAILED, error_message="x")
    stuck = MigrationRunFactory(heartbeat_at=timezone.now() - timedelta(minutes=5))
    MigrationRunFactory(source="user_fields")
    # when
    code, text = check()
    _, printed = check("--format", "json")
    # then
    body = json.loads(printed)
    assert code == 1
    assert attention(body) == {"failed_migrations", "stuck_migration_runs"}
    assert [item["run_id"] for item in body["checks"]["stuck_migration_runs"]["examples"]] == [
        stuck.pk
    ]
    assert "ATTENTION stuck_migration_runs" in text
    assert "check_credits: needs attention" in text


def test_staff_endpoint_gives_the_same_facts():
    # given: one FAILED migration, and a staff member who may view accounts
    UserMigrationFactory(status=MigrationStatus.FAILED)
    client = APIClient()
    client.force_authenticate(user=StaffUserFactory(permissions=["credits.view_creditaccount"]))
    # when
    response = client.get(HEALTH_URL)
    # then
    assert response.status_code == 200
    body = response.json()
    _, printed = check("--format", "json")
    expected = json.loads(printed)
    assert body["checks"] == expected["checks"]
    assert body["needs_attention"] is True


def test_the_endpoint_needs_view_creditaccount(staff_user):
    # given: staff without credits.view_creditaccount (is_staff alone opens nothing)
    client = APIClient()
    client.force_authenticate(user=staff_user)
    # when
    response = client.get(HEALTH_URL)
    # then
    assert_error_shape(response, 403, "permission_denied")
    assert response.json()["error"]["details"] == {"permission": "credits.view_creditaccount"}


def test_the_endpoint_is_for_staff_only(user_client, api_client):
    assert_error_shape(user_client.get(HEALTH_URL), 403, "permission_denied")
    assert_error_shape(api_client.get(HEALTH_URL), 401, "not_authenticated")
