"""Every endpoint refuses what it cannot take with a 4xx in the one error shape, and writes
nothing: no credentials, a bad token, a method it does not have, a malformed path, a crafted
cursor or page size, a body that is not JSON, nested too deep or too large, a lenient amount or
boolean, an amount beyond the ledger's columns, NUL characters in the address."""

import base64
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from credits.services import credit_grant, credit_spend
from tests.factories import ProvisionedUserFactory, SuperAdminFactory, UserFactory
from tests.helpers import ARABIC_INDIC_12, FULLWIDTH_12, assert_error_shape, table_contents

pytestmark = pytest.mark.django_db

ENDPOINTS = [
    ("get", "/api/credits/balance/"),
    ("get", "/api/credits/transactions/"),
    ("post", "/api/credits/spend/"),
    ("get", "/api/credits/lots/"),
    ("get", "/api/credits/holds/"),
    ("post", "/api/credits/holds/"),
    ("post", "/api/credits/holds/1/capture/"),
    ("post", "/api/credits/holds/1/release/"),
    ("get", "/api/migrate/user-credits/"),
    ("post", "/api/migrate/user-credits/"),
    ("get", "/api/migrate/runs/1/"),
    ("get", "/api/admin/billing/health"),
]
WRONG_METHODS = [
    ("delete", "/api/credits/balance/"),
    ("post", "/api/credits/transactions/"),
    ("get", "/api/credits/spend/"),
    ("post", "/api/credits/lots/"),
    ("delete", "/api/credits/holds/"),
    ("get", "/api/credits/holds/1/capture/"),
    ("get", "/api/credits/holds/1/release/"),
    ("put", "/api/migrate/user-credits/"),
    ("post", "/api/migrate/runs/1/"),
    ("post", "/api/admin/billing/health"),
]


@pytest.fixture
def world(db):
    ProvisionedUserFactory(username="someone")
    return table_contents()


@pytest.mark.parametrize(("method", "url"), ENDPOINTS)
def test_without_credentials_401_and_nothing_written(world, method, url):
    response = getattr(APIClient(), method)(url, {}, format="json")
    assert_error_shape(response, 401, "not_authenticated")
    assert table_contents() == world


@pytest.mark.parametrize(("method", "url"), ENDPOINTS)
def test_with_a_bad_token_401_and_nothing_written(world, method, url):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    response = getattr(client, method)(url, {}, format="json")
    assert_error_shape(response, 401, "authentication_failed")
    assert table_contents() == world


@pytest.mark.parametrize(("method", "url"), WRONG_METHODS)
def test_a_method_an_endpoint_does_not_have_is_405(world, staff_user, method, url):
    client = APIClient()
    client.force_authenticate(user=staff_user)
    before = table_contents()
    response = getattr(client, method)(url, {}, format="json")
    assert_error_shape(response, 405, "method_not_allowed")
    assert table_contents() == before


@pytest.mark.parametrize(
    "url",
    ["/api/migrate/runs/abc/", "/api/migrate/runs/-1/", "/api/migrate/runs/99999999999999999999/"],
)
def test_a_malformed_or_impossible_run_id_is_404(world, staff_user, url):
    client = APIClient()
    client.force_authenticate(user=staff_user)
    assert_error_shape(client.get(url), 404, "not_found")


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "cursor",
    ["garbage!", "\x00", "A" * 300, "abc def", "\u00c7", "==", b64("p=1") + "==="],
    ids=["punctuation", "nul", "long", "space", "non-ascii", "padding-only", "over-padded"],
)
def test_a_malformed_cursor_is_400_in_the_error_shape(user_client, account, cursor):
    # when
    response = user_client.get("/api/credits/transactions/", {"cursor": cursor})
    # then
    assert_error_shape(response, 400, "invalid")


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        b64("p=abc"),
        b64("p=\x00"),
        b64("p=99999999999999999999"),
        b64("p=-1"),
        b64("o=-1"),
        b64("r=x"),
        b64("\xff\xfe"),
    ],
    ids=["garbage", "p-abc", "p-nul", "p-bigint", "p-negative", "offset", "reverse", "bytes"],
)
def test_a_well_formed_cursor_the_api_did_not_give_out_is_404(user_client, account, cursor):
    # when
    response = user_client.get("/api/credits/transactions/", {"cursor": cursor})
    # then: no page there, and no query with the crafted position (it was a 500)
    assert_error_shape(response, 404, "not_found")


def test_a_cursor_the_api_gave_out_still_pages(user_client, account):
    # given: three entries, two a page
    for number in range(3):
        credit_grant(account=account, amount=Decimal("1.00"), idempotency_key=f"g{number}")
    first = user_client.get("/api/credits/transactions/", {"page_size": "2"}).json()
    # when
    second = user_client.get(first["next"])
    # then
    assert second.status_code == 200
    assert len(first["results"]) + len(second.json()["results"]) == 3


@pytest.mark.parametrize("page_size", ["null", "0", "-1", "abc", "1.5", "", " 5", "\u0665"])
def test_a_page_size_that_is_not_a_positive_integer_is_400(user_client, account, page_size):
    response = user_client.get("/api/credits/transactions/", {"page_size": page_size})
    error = assert_error_shape(response, 400, "invalid")
    assert "page_size" in error["details"]


def test_a_page_size_above_the_maximum_sends_the_maximum(user_client, account):
    response = user_client.get("/api/credits/transactions/", {"page_size": "9" * 40})
    assert response.status_code == 200


def test_a_body_nested_100000_deep_is_400_and_changes_nothing(world, user_client):
    # given
    before = table_contents()
    # when
    response = user_client.post(
        "/api/credits/spend/", "[" * 100_000, content_type="application/json"
    )
    # then
    assert_error_shape(response, 400, "parse_error")
    assert table_contents() == before


def test_a_body_nested_a_little_too_deep_is_400(world, user_client):
    body = '{"amount": ' + "[" * 20 + "]" * 20 + ', "idempotency_key": "k"}'
    response = user_client.post("/api/credits/spend/", body, content_type="application/json")
    assert_error_shape(response, 400, "parse_error")


@pytest.mark.parametrize("url", ["/api/credits/spend/", "/api/migrate/user-credits/"])
def test_a_body_over_the_upload_limit_is_413_in_the_error_shape(world, staff_user, url, settings):
    # given
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    client = APIClient()
    client.force_authenticate(user=staff_user)
    before = table_contents()
    body = '{"amount": "1.00", "idempotency_key": "k", "description": "' + "x" * 2000 + '"}'
    # when
    response = client.post(url, body, content_type="application/json")
    # then
    assert_error_shape(response, 413, "request_too_large")
    assert table_contents() == before


@pytest.mark.parametrize(
    "body", [{"notify": 0}, {"notify": "true"}, {"dry_run": 1}, {"keep_legacy": "no"}]
)
def test_a_boolean_field_takes_only_true_or_false(world, staff_user, body):
    client = APIClient()
    client.force_authenticate(user=staff_user)
    before = table_contents()
    response = client.post("/api/migrate/user-credits/", body, format="json")
    error = assert_error_shape(response, 400, "invalid")
    assert set(error["details"]) == set(body)
    assert table_contents() == before


@pytest.mark.parametrize(
    "amount",
    [ARABIC_INDIC_12, FULLWIDTH_12, "1_0", "", " 12", "NaN", "1e3", "12.", ".5", 12, "012"],
)
def test_a_lenient_amount_is_refused_and_changes_nothing(world, user_client, account, amount):
    # given
    credit_grant(account=account, amount=Decimal("50.00"), idempotency_key="top-up")
    before = table_contents()
    # when
    response = user_client.post(
        "/api/credits/spend/", {"amount": amount, "idempotency_key": "k"}, format="json"
    )
    # then
    error = assert_error_shape(response, 400, "invalid")
    assert "amount" in error["details"]
    assert table_contents() == before


# --- an adjustment beyond the columns ------------------------------------------------------


def test_a_staff_adjust_beyond_the_balance_column_is_invalid_amount(settings):
    # given: a balance near the column's maximum, 999,999,999,999.99
    settings.CREDITS_APPROVAL_THRESHOLD = Decimal("10") ** 13
    customer = ProvisionedUserFactory()
    account = customer.credit_account
    credit_grant(account=account, amount=Decimal("999999999900.00"), idempotency_key="big")
    staff = SuperAdminFactory()
    client = APIClient()
    client.force_authenticate(user=staff)
    before = table_contents()
    # when
    response = client.post(
        "/api/admin/billing/credits/adjust",
        {"user_id": customer.pk, "amount": "500.00", "reason": "Overflow", "idempotency_key": "o"},
        format="json",
    )
    # then
    error = assert_error_shape(response, 400, "invalid_amount")
    assert error["details"]["balance"] == "999999999920.00"
    assert table_contents() == before
    # and the largest amount that fits is still taken
    fits = client.post(
        "/api/admin/billing/credits/adjust",
        {"user_id": customer.pk, "amount": "79.99", "reason": "Fits", "idempotency_key": "f"},
        format="json",
    )
    assert fits.status_code == 201, fits.json()
    account.refresh_from_db()
    assert account.balance == Decimal("999999999999.99")


def test_an_adjust_beyond_total_earned_is_invalid_amount_though_the_balance_is_low(settings):
    # given: everything earned was spent; total_earned sits at the column's maximum
    settings.CREDITS_APPROVAL_THRESHOLD = Decimal("10") ** 13
    customer = ProvisionedUserFactory()
    account = customer.credit_account
    credit_grant(account=account, amount=Decimal("999999999979.99"), idempotency_key="big")
    credit_spend(account=account, amount=Decimal("999999999999.99"), idempotency_key="all")
    client = APIClient()
    client.force_authenticate(user=SuperAdminFactory())
    before = table_contents()
    # when
    response = client.post(
        "/api/admin/billing/credits/adjust",
        {"user_id": customer.pk, "amount": "1.00", "reason": "More", "idempotency_key": "m"},
        format="json",
    )
    # then
    assert_error_shape(response, 400, "invalid_amount")
    assert table_contents() == before


# --- NUL characters in the admin -----------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    ["kind=%00", "q=%00", "source=a%00b", "q=x&%00=1", "created_at__gte=%00"],
)
def test_nul_in_an_admin_list_filter_or_search_is_a_400_page(client, query):
    # given
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    # when
    response = client.get(f"/admin/credits/credittransaction/?{query}")
    # then
    assert response.status_code == 400
    assert b"NUL" in response.content


def test_nul_in_an_api_query_is_400_in_the_error_shape(user_client):
    response = user_client.get("/api/credits/transactions/?cursor=%00")
    assert_error_shape(response, 400, "invalid")


@pytest.mark.parametrize("url", ["/api/credits/spend/", "/api/migrate/user-credits/"])
def test_a_body_that_is_not_json_is_400(world, staff_user, url):
    client = APIClient()
    client.force_authenticate(user=staff_user)
    before = table_contents()
    response = client.post(url, "{nope", content_type="application/json")
    assert_error_shape(response, 400, "parse_error")
    assert table_contents() == before
