"""Every endpoint refuses what it cannot take with a 4xx in the one error shape, and writes
nothing: no credentials, a bad token, a method it does not have, a malformed path, a bad
cursor, a body that is not JSON."""

import pytest
from rest_framework.test import APIClient

from tests.credits.test_api import assert_error_shape
from tests.factories import ProvisionedUserFactory
from tests.migrations_app.helpers import table_contents

pytestmark = pytest.mark.django_db

ENDPOINTS = [
    ("get", "/api/credits/balance/"),
    ("get", "/api/credits/transactions/"),
    ("post", "/api/credits/spend/"),
    ("get", "/api/migrate/user-credits/"),
    ("post", "/api/migrate/user-credits/"),
    ("get", "/api/migrate/runs/1/"),
    ("get", "/api/admin/billing/health"),
]
WRONG_METHODS = [
    ("delete", "/api/credits/balance/"),
    ("post", "/api/credits/transactions/"),
    ("get", "/api/credits/spend/"),
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


def test_a_bad_cursor_is_404(user_client):
    response = user_client.get("/api/credits/transactions/", {"cursor": "garbage"})
    assert_error_shape(response, 404, "not_found")


@pytest.mark.parametrize("url", ["/api/credits/spend/", "/api/migrate/user-credits/"])
def test_a_body_that_is_not_json_is_400(world, staff_user, url):
    client = APIClient()
    client.force_authenticate(user=staff_user)
    before = table_contents()
    response = client.post(url, "{nope", content_type="application/json")
    assert_error_shape(response, 400, "parse_error")
    assert table_contents() == before
