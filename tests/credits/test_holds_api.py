"""The holds API, reserving and listing: POST and GET /api/credits/holds/.

A refused request answers in the one error shape and changes no row of the ledger, its lots
or its holds; every accepted one leaves the books consistent (balance = entries = lots,
held = active holds <= balance). Capture and release: test_hold_capture_api.py; the lots
list: test_lots_api.py.
"""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework.test import APIClient

from core.keys import api_hold_key
from credits.models import (
    CreditAccount,
    CreditAllocation,
    CreditHold,
    CreditLot,
    CreditTransaction,
    HoldStatus,
    SpendRefusal,
)
from credits.services import credit_hold_create
from tests.factories import ProvisionedUserFactory, UserFactory
from tests.helpers import (
    assert_error_shape,
    assert_ledger_consistent,
    fund,
    ledger_snapshot,
    table_contents,
)

pytestmark = pytest.mark.django_db

HOLDS_URL = reverse("credits-holds")
LOTS_URL = reverse("credits-lots")
SPEND_URL = reverse("credits-spend")
HOLD_KEYS = {
    "id",
    "amount",
    "captured",
    "status",
    "expires_at",
    "description",
    "created_at",
    "resolved_at",
}
BOOKS = (CreditAccount, CreditTransaction, CreditLot, CreditAllocation, CreditHold)


def books():
    """Every row a hold request could move: accounts, entries, lots, allocations, holds."""
    return ledger_snapshot(), table_contents(*BOOKS)


def client_for(user):
    client = APIClient()
    client.force_authenticate(user=user)
    return client


@pytest.fixture
def customer():
    """A signed-up user (the 20.00 signup grant) topped up to 120.00."""
    user = ProvisionedUserFactory(username="alice")
    fund(user.credit_account, "100.00")
    return user


@pytest.fixture
def client(customer):
    return client_for(customer)


def hold(client, amount="30.00", key="render-1", **extra):
    return client.post(
        HOLDS_URL, {"amount": amount, "idempotency_key": key, **extra}, format="json"
    )


# --- reserving ----------------------------------------------------------------------------


def test_a_hold_reserves_credits_and_answers_the_hold_and_the_figures(write_path, client, customer):
    # when
    started = timezone.now()
    response = hold(client, "30.00", ttl_seconds=600, description="Video render")
    finished = timezone.now()

    # then
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"hold", "balance", "held", "available"}
    assert set(body["hold"]) == HOLD_KEYS
    assert body["hold"]["amount"] == "30.00"
    assert body["hold"]["captured"] == "0.00"
    assert body["hold"]["status"] == "active"
    assert body["hold"]["description"] == "Video render"
    assert body["hold"]["resolved_at"] is None
    assert started <= parse_datetime(body["hold"]["created_at"]) <= finished
    expires_at = parse_datetime(body["hold"]["expires_at"])
    assert started + timedelta(seconds=600) <= expires_at <= finished + timedelta(seconds=600)
    assert (body["balance"], body["held"], body["available"]) == ("120.00", "30.00", "90.00")
    stored = CreditHold.objects.get(pk=body["hold"]["id"])
    assert stored.idempotency_key == api_hold_key(user_id=customer.pk, client_key="render-1")
    account = customer.credit_account
    account.refresh_from_db()
    assert (account.balance, account.held) == (Decimal("120.00"), Decimal("30.00"))
    assert_ledger_consistent()


def test_a_hold_without_ttl_lives_the_default_time(client, settings):
    # given
    settings.CREDITS_HOLD_DEFAULT_TTL = 900

    # when
    started = timezone.now()
    response = hold(client)
    finished = timezone.now()

    # then
    assert response.status_code == 201
    stored = CreditHold.objects.get(pk=response.json()["hold"]["id"])
    ttl = timedelta(seconds=900)
    assert started + ttl <= stored.expires_at <= finished + ttl


@pytest.mark.parametrize("ttl", [1, 7 * 24 * 3600], ids=["shortest", "longest"])
def test_the_bounds_of_ttl_are_accepted(client, ttl):
    # when
    started = timezone.now()
    response = hold(client, ttl_seconds=ttl)
    finished = timezone.now()

    # then
    assert response.status_code == 201, response.content
    expires_at = parse_datetime(response.json()["hold"]["expires_at"])
    assert started + timedelta(seconds=ttl) <= expires_at <= finished + timedelta(seconds=ttl)


def test_a_key_of_the_longest_length_is_accepted(client, customer):
    # when
    response = hold(client, key="k" * 100)

    # then
    assert response.status_code == 201
    stored = CreditHold.objects.get(pk=response.json()["hold"]["id"])
    assert stored.idempotency_key == api_hold_key(user_id=customer.pk, client_key="k" * 100)


def test_a_replay_answers_the_same_hold_and_reserves_nothing(write_path, client, customer):
    # given
    first = hold(client, "30.00", ttl_seconds=600)
    before = books()

    # when
    again = hold(client, "30", ttl_seconds=600)

    # then: "30" is the same amount as "30.00"
    assert again.status_code == 200
    assert again.json() == first.json()
    assert books() == before
    customer.credit_account.refresh_from_db()
    assert customer.credit_account.held == Decimal("30.00")


def test_a_replay_after_release_answers_the_hold_as_it_is_now(client, customer):
    # given
    first = hold(client, "30.00").json()["hold"]
    client.post(reverse("credits-hold-release", args=[first["id"]]))

    # when
    again = hold(client, "30.00")

    # then
    assert again.status_code == 200
    body = again.json()
    assert body["hold"]["id"] == first["id"]
    assert body["hold"]["status"] == "released"
    assert (body["balance"], body["held"], body["available"]) == ("120.00", "0.00", "120.00")
    assert CreditHold.objects.count() == 1


def test_a_key_reused_for_another_amount_is_a_conflict_naming_the_clients_key(client):
    # given
    hold(client, "30.00", key="render-1")
    before = books()

    # when
    response = hold(client, "31.00", key="render-1")

    # then: the client's own key, never the scoped key the books hold
    error = assert_error_shape(response, 409, "idempotency_conflict")
    assert error["details"] == {"idempotency_key": "render-1"}
    assert books() == before


def test_too_little_available_is_402_with_the_figures_and_nothing_reserved(client, customer):
    # given: 120.00, of which 100.00 held
    hold(client, "100.00", key="big")
    before = books()

    # when
    response = hold(client, "20.01", key="more")

    # then
    error = assert_error_shape(response, 402, "insufficient_credits")
    assert error["details"] == {
        "balance": "120.00",
        "held": "100.00",
        "available": "20.00",
        "requested": "20.01",
    }
    assert books() == before
    refusal = SpendRefusal.objects.get()
    assert (refusal.account_id, refusal.amount, refusal.balance, refusal.code, refusal.source) == (
        customer.credit_account.pk,
        Decimal("20.01"),
        Decimal("120.00"),
        "insufficient_credits",
        "api-hold",
    )
    assert_ledger_consistent()


def test_a_refused_hold_does_not_burn_its_key(client, customer):
    # given: refused, then topped up
    assert hold(client, "150.00", key="later").status_code == 402
    fund(customer.credit_account, "50.00", key="top-up")

    # when
    response = hold(client, "150.00", key="later")

    # then
    assert response.status_code == 201
    assert response.json()["available"] == "20.00"


def test_held_credits_cannot_be_spent(client, customer):
    # given: 120.00 with 100.00 held
    hold(client, "100.00")
    before = books()

    # when
    response = client.post(SPEND_URL, {"amount": "20.01", "idempotency_key": "s"}, format="json")

    # then
    error = assert_error_shape(response, 402, "insufficient_credits")
    assert error["details"]["available"] == "20.00"
    assert books() == before


def test_two_users_with_one_client_key_make_two_holds(client, customer):
    # given
    other = ProvisionedUserFactory(username="bob")

    # when
    mine = hold(client, "30.00", key="same")
    theirs = hold(client_for(other), "5.00", key="same")

    # then
    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert CreditHold.objects.get(pk=theirs.json()["hold"]["id"]).account.user == other
    other.credit_account.refresh_from_db()
    assert other.credit_account.held == Decimal("5.00")
    assert_ledger_consistent()


def test_a_user_without_an_account_cannot_hold(db):
    # given
    before = books()

    # when
    response = hold(client_for(UserFactory()))

    # then
    assert_error_shape(response, 404, "account_not_found")
    assert books() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"amount": "0"}, "amount", id="zero"),
        pytest.param({"amount": "0.00"}, "amount", id="zero-places"),
        pytest.param({"amount": "-5.00"}, "amount", id="negative"),
        pytest.param({"amount": "1.005"}, "amount", id="three-places"),
        pytest.param({"amount": "1000000000000.00"}, "amount", id="beyond-the-column"),
        pytest.param({"amount": 10**20}, "amount", id="huge-number"),
        pytest.param({"amount": 5}, "amount", id="a-json-number"),
        pytest.param({"amount": "abc"}, "amount", id="not-a-number"),
        pytest.param({"amount": None}, "amount", id="null"),
        pytest.param({"amount": "NaN"}, "amount", id="nan"),
        pytest.param({"amount": ...}, "amount", id="missing-amount"),
        pytest.param({"ttl_seconds": 0}, "ttl_seconds", id="ttl-zero"),
        pytest.param({"ttl_seconds": -1}, "ttl_seconds", id="ttl-negative"),
        pytest.param({"ttl_seconds": 7 * 24 * 3600 + 1}, "ttl_seconds", id="ttl-above-max"),
        pytest.param({"ttl_seconds": 10**30}, "ttl_seconds", id="ttl-huge"),
        pytest.param({"ttl_seconds": "60"}, "ttl_seconds", id="ttl-string"),
        pytest.param({"ttl_seconds": 60.5}, "ttl_seconds", id="ttl-fraction"),
        pytest.param({"ttl_seconds": 60.0}, "ttl_seconds", id="ttl-float"),
        pytest.param({"ttl_seconds": True}, "ttl_seconds", id="ttl-boolean"),
        pytest.param({"ttl_seconds": None}, "ttl_seconds", id="ttl-null"),
        pytest.param({"idempotency_key": ...}, "idempotency_key", id="missing-key"),
        pytest.param({"idempotency_key": ""}, "idempotency_key", id="blank-key"),
        pytest.param({"idempotency_key": " k"}, "idempotency_key", id="key-leading-space"),
        pytest.param({"idempotency_key": "k" * 101}, "idempotency_key", id="key-too-long"),
        pytest.param({"idempotency_key": "a\nb"}, "idempotency_key", id="key-unprintable"),
        pytest.param({"idempotency_key": 12}, "idempotency_key", id="key-a-number"),
        pytest.param({"description": "d" * 256}, "description", id="description-too-long"),
    ],
)
def test_a_hold_with_bad_input_is_refused_and_changes_nothing(client, body, field):
    # given
    request = {"amount": "10.00", "idempotency_key": "k", **body}
    request = {name: value for name, value in request.items() if value is not ...}
    before = books()

    # when
    response = client.post(HOLDS_URL, request, format="json")

    # then
    error = assert_error_shape(response, 400, "invalid")
    assert field in error["details"]
    assert books() == before
    assert not SpendRefusal.objects.exists()


@pytest.mark.parametrize(
    ("method", "name", "args"),
    [
        ("get", "credits-lots", []),
        ("get", "credits-holds", []),
        ("post", "credits-holds", []),
        ("post", "credits-hold-capture", [1]),
        ("post", "credits-hold-release", [1]),
    ],
)
def test_without_credentials_every_endpoint_is_401_and_changes_nothing(
    customer, method, name, args
):
    # given
    credit_hold_create(account=customer.credit_account, amount=Decimal("5"), idempotency_key="mine")
    before = books()
    body = {"amount": "1.00", "idempotency_key": "anonymous"}

    # when
    response = getattr(APIClient(), method)(reverse(name, args=args), body, format="json")

    # then
    assert_error_shape(response, 401, "not_authenticated")
    assert books() == before


# --- listing holds ------------------------------------------------------------------------


def test_the_hold_list_is_my_holds_newest_first_filtered_by_status(client, customer):
    # given: two of mine (one released) and one of another user
    first = hold(client, "10.00", key="a").json()["hold"]
    second = hold(client, "20.00", key="b").json()["hold"]
    client.post(reverse("credits-hold-release", args=[first["id"]]))
    other = ProvisionedUserFactory(username="bob")
    hold(client_for(other), "5.00", key="a")

    # when
    everything = client.get(HOLDS_URL)
    active = client.get(HOLDS_URL, {"status": "active"})
    released = client.get(HOLDS_URL, {"status": HoldStatus.RELEASED})

    # then
    assert everything.status_code == 200
    results = everything.json()["results"]
    assert [row["id"] for row in results] == [second["id"], first["id"]]
    assert set(results[0]) == HOLD_KEYS
    assert [row["id"] for row in active.json()["results"]] == [second["id"]]
    assert [row["id"] for row in released.json()["results"]] == [first["id"]]


def test_the_hold_list_is_paginated_by_cursor(client):
    # given
    ids = [hold(client, "1.00", key=f"k{n}").json()["hold"]["id"] for n in range(3)]

    # when
    page = client.get(HOLDS_URL, {"page_size": 2}).json()
    rest = client.get(page["next"]).json()

    # then
    assert [row["id"] for row in page["results"]] == ids[:0:-1]
    assert [row["id"] for row in rest["results"]] == [ids[0]]
    assert rest["next"] is None


@pytest.mark.parametrize(
    ("url", "query", "field"),
    [
        (HOLDS_URL, {"status": "bogus"}, "status"),
        (HOLDS_URL, {"status": "ACTIVE"}, "status"),
        (HOLDS_URL, {"page_size": "0"}, "page_size"),
        (LOTS_URL, {"open": "yes"}, "open"),
        (LOTS_URL, {"open": "1"}, "open"),
        (LOTS_URL, {"cursor": "not a cursor"}, "cursor"),
    ],
)
def test_a_list_with_a_bad_query_is_400(client, url, query, field):
    # when
    response = client.get(url, query)

    # then
    error = assert_error_shape(response, 400, "invalid")
    assert field in error["details"]


def test_a_user_without_an_account_has_no_holds_nor_lots(db):
    # given
    client = client_for(UserFactory())

    # when / then
    assert client.get(HOLDS_URL).json()["results"] == []
    assert client.get(LOTS_URL).json()["results"] == []
