"""GET /api/credits/balance/: the figures a frontend shows (balance, what holds reserve, what
is available, the next expiry, plan, migration state), for each kind of user, and what a
request costs the database."""

from datetime import UTC, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import close_old_connections, connection, connections
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from billing.services import user_provision
from credits.models import CreditAccount
from credits.services import (
    credit_grant,
    credit_hold_capture,
    credit_hold_create,
    credit_hold_release,
    credit_lots_expire,
    credit_spend,
)
from tests.factories import ProvisionedUserFactory, UserFactory
from tests.helpers import assert_error_shape, assert_ledger_consistent

BALANCE_URL = reverse("credits-balance")
BALANCE_KEYS = {
    "balance",
    "available",
    "held",
    "expiring",
    "total_earned",
    "total_spent",
    "plan",
    "migrated",
    "updated_at",
}

pytestmark = pytest.mark.django_db


def token_client_for(user):
    client = APIClient()
    token = Token.objects.create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def as_api_time(moment) -> str:
    """A time as the API writes it: ISO 8601 in UTC with a Z."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def grant(account, amount: str, key: str, **terms):
    return credit_grant(account=account, amount=Decimal(amount), idempotency_key=key, **terms)


@pytest.fixture
def customer():
    """A signed-up user: profile, account and the 20.00 signup grant (a lot that never
    expires)."""
    return ProvisionedUserFactory(username="alice")


@pytest.fixture
def customer_account(customer):
    return customer.credit_account


@pytest.fixture
def token_client(customer):
    return token_client_for(customer)


@pytest.fixture
def soon():
    return timezone.now().replace(microsecond=0) + timedelta(days=10)


# --- the figures --------------------------------------------------------------------------


def test_balance_of_signed_up_user(token_client, customer_account):
    # when
    response = token_client.get(BALANCE_URL)

    # then
    assert response.status_code == 200
    body = response.json()
    assert set(body) == BALANCE_KEYS
    customer_account.refresh_from_db()
    assert body == {
        "balance": "20.00",
        "available": "20.00",
        "held": "0.00",
        "expiring": None,  # the signup grant never expires
        "total_earned": "20.00",
        "total_spent": "0.00",
        "plan": "free",
        "migrated": False,  # a signup: no source migrated it
        "updated_at": as_api_time(customer_account.updated_at),
    }
    assert parse_datetime(body["updated_at"]) == customer_account.updated_at


def test_balance_follows_spending(token_client, customer_account):
    # given
    credit_spend(account=customer_account, amount=Decimal("7.25"), idempotency_key="usage-1")

    # when
    body = token_client.get(BALANCE_URL).json()

    # then
    assert (body["balance"], body["available"]) == ("12.75", "12.75")
    assert body["total_earned"] == "20.00"
    assert body["total_spent"] == "7.25"


def test_holds_and_expiring_lots(token_client, customer_account, soon):
    # given lots of 30.00 and 12.00 expiring at one instant, 260.00 later, 100.00 never, and
    # two holds: 15.00 active, 5.00 released
    grant(customer_account, "30.00", "promo-a", expires_at=soon)
    grant(customer_account, "12.00", "promo-b", expires_at=soon)
    grant(customer_account, "260.00", "monthly", category="monthly", expires_at=soon + timedelta(1))
    grant(customer_account, "100.00", "paid", category="paid")
    credit_hold_create(account=customer_account, amount=Decimal("15.00"), idempotency_key="h-1")
    released = credit_hold_create(
        account=customer_account, amount=Decimal("5.00"), idempotency_key="h-2"
    )
    credit_hold_release(hold=released)

    # when
    body = token_client.get(BALANCE_URL).json()

    # then
    customer_account.refresh_from_db()
    assert customer_account.balance == Decimal("422.00")
    assert customer_account.held == Decimal("15.00")
    assert body["balance"] == "422.00"
    assert body["held"] == "15.00"
    assert body["available"] == "407.00"
    assert body["expiring"] == {"amount": "42.00", "expires_at": as_api_time(soon)}
    assert body["total_earned"] == "422.00"
    assert_ledger_consistent()


def test_the_expiring_amount_is_what_is_left_of_the_soonest_lots(
    token_client, customer_account, soon
):
    # given two lots expiring at one instant, partly spent (the draw-down takes the soonest
    # expiry first), and a later one
    grant(customer_account, "30.00", "promo-a", expires_at=soon)
    grant(customer_account, "12.00", "promo-b", expires_at=soon)
    grant(customer_account, "50.00", "promo-c", expires_at=soon + timedelta(minutes=1))
    credit_spend(account=customer_account, amount=Decimal("10.50"), idempotency_key="use-1")

    # when
    body = token_client.get(BALANCE_URL).json()

    # then the same-instant lots add up; a minute later is another expiry
    assert body["balance"] == "101.50"
    assert body["expiring"] == {"amount": "31.50", "expires_at": as_api_time(soon)}


def test_spent_lots_give_way_to_the_next_expiry(token_client, customer_account, soon):
    # given the soonest lot spent to nothing by a captured hold
    grant(customer_account, "30.00", "promo-a", expires_at=soon)
    grant(customer_account, "50.00", "promo-b", expires_at=soon + timedelta(days=5))
    hold = credit_hold_create(
        account=customer_account, amount=Decimal("30.00"), idempotency_key="job-1"
    )
    credit_hold_capture(hold=hold, idempotency_key="job-1-capture")

    # when
    body = token_client.get(BALANCE_URL).json()

    # then
    assert (body["balance"], body["held"], body["available"]) == ("70.00", "0.00", "70.00")
    assert body["expiring"] == {
        "amount": "50.00",
        "expires_at": as_api_time(soon + timedelta(days=5)),
    }


def test_an_expired_lot_shows_until_the_expiry_task_takes_it(token_client, customer_account):
    # given a lot whose expiry has passed, the task not yet run
    past = timezone.now().replace(microsecond=0) - timedelta(hours=1)
    grant(customer_account, "9.00", "old-promo", expires_at=past)
    before = token_client.get(BALANCE_URL).json()

    # when the expiry task runs
    credit_lots_expire()
    after = token_client.get(BALANCE_URL).json()

    # then the credits were in the balance and announced, and then gone
    assert before["balance"] == "29.00"
    assert before["expiring"] == {"amount": "9.00", "expires_at": as_api_time(past)}
    assert after["balance"] == "20.00"
    assert after["expiring"] is None
    assert_ledger_consistent()


def test_balance_of_user_without_account_is_zero():
    # given: a user who was never provisioned (no profile, no account)
    user = UserFactory()
    client = token_client_for(user)

    # when
    response = client.get(BALANCE_URL)

    # then
    assert response.status_code == 200
    assert response.json() == {
        "balance": "0.00",
        "available": "0.00",
        "held": "0.00",
        "expiring": None,
        "total_earned": "0.00",
        "total_spent": "0.00",
        "plan": "free",
        "migrated": False,
        "updated_at": None,
    }
    assert not CreditAccount.objects.filter(user=user).exists()


def test_balance_of_user_awaiting_migration():
    # given: provisioned as a migrating user: no signup grant, not migrated yet
    user = UserFactory()
    user_provision(user=user, signup_grant=False)
    user.profile.plan = "pro"
    user.profile.save(update_fields=["plan"])

    # when
    body = token_client_for(user).get(BALANCE_URL).json()

    # then
    assert (body["balance"], body["available"], body["expiring"]) == ("0.00", "0.00", None)
    assert body["plan"] == "pro"
    assert body["migrated"] is False


def test_balance_shows_only_own_account(token_client, customer_account, soon):
    # given another customer with credits, a hold and an expiring lot
    other = ProvisionedUserFactory(username="bob").credit_account
    grant(other, "500.00", "bob-1", expires_at=soon)
    credit_hold_create(account=other, amount=Decimal("50.00"), idempotency_key="bob-hold")

    # when
    body = token_client.get(BALANCE_URL).json()

    # then
    assert (body["balance"], body["held"], body["expiring"]) == ("20.00", "0.00", None)


def test_session_and_token_give_the_same_body(customer, customer_account, soon):
    # given
    grant(customer_account, "12.00", "promo", expires_at=soon)
    credit_hold_create(account=customer_account, amount=Decimal("2.00"), idempotency_key="h")
    session = Client()
    session.force_login(customer)

    # when
    by_session = session.get(BALANCE_URL)
    by_token = token_client_for(customer).get(BALANCE_URL)

    # then
    assert by_session.status_code == by_token.status_code == 200
    assert by_session.json() == by_token.json()
    assert by_token.json()["available"] == "30.00"


# --- authentication -----------------------------------------------------------------------


def test_token_of_inactive_user_is_refused(customer):
    # given
    client = token_client_for(customer)
    get_user_model().objects.filter(pk=customer.pk).update(is_active=False)

    # when
    response = client.get(BALANCE_URL)

    # then
    error = assert_error_shape(response, 401, "authentication_failed")
    assert error["message"] == "User inactive or deleted."


def test_unknown_token_is_refused(customer):
    # given
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)

    # when
    response = client.get(BALANCE_URL)

    # then
    error = assert_error_shape(response, 401, "authentication_failed")
    assert error["message"] == "Invalid token."


# --- cost -----------------------------------------------------------------------------------


def test_a_token_request_is_one_query(
    token_client, customer_account, soon, django_assert_num_queries
):
    # given
    grant(customer_account, "12.00", "promo", expires_at=soon)
    token_client.get(BALANCE_URL)  # the statement is compiled on the first call

    # when: the token, its user, the account, profile, migration state and next expiry
    with django_assert_num_queries(1):
        response = token_client.get(BALANCE_URL)

    # then
    assert response.json()["expiring"]["amount"] == "12.00"


def test_a_session_request_adds_the_balance_to_the_sessions_queries(
    customer, django_assert_num_queries
):
    # given
    client = Client()
    client.force_login(customer)
    client.get(BALANCE_URL)

    # when: the session read, its user, the balance, and the session saved
    # (SESSION_SAVE_EVERY_REQUEST), whose atomic block is a savepoint pair inside the test's
    # transaction
    with django_assert_num_queries(6):
        response = client.get(BALANCE_URL)

    # then
    assert response.json()["balance"] == "20.00"


@pytest.mark.postgres
def test_a_connection_the_server_dropped_while_idle_fails_no_request(transactional_db):
    # given a customer's token request served, then its connection dropped by the server
    # between two requests (a restart, an idle timeout)
    client = token_client_for(ProvisionedUserFactory(username="carol"))
    # A connection of this test's own: the worker's may be older than CONN_MAX_AGE, and then
    # close_old_connections below would close it instead of keeping it for the next request.
    connection.close()
    assert client.get(BALANCE_URL).status_code == 200
    close_old_connections()  # what Django does as the next request starts
    dropped = connection.connection.info.backend_pid
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [dropped])
    finally:
        other.close()

    # when
    response = client.get(BALANCE_URL)

    # then the statement ran again on a new connection (it stands in for the health check)
    assert response.status_code == 200
    assert response.json()["balance"] == "20.00"
    assert connection.connection.info.backend_pid != dropped
