"""The credits REST API as a frontend uses it: balance, history and spending.

Every refused request is checked twice: it answers in the one error shape, and it changed no
row (the account's figures and the number of ledger entries are what they were).
"""

import secrets
import string
from decimal import Decimal

import pytest
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from core.keys import api_idempotency_key
from credits.exceptions import ErrorCode, IdempotencyConflict, InsufficientCredits
from credits.models import CreditAccount, CreditTransaction, EntryKind
from credits.services import credit_account_open, credit_grant, credit_spend
from tests.factories import ProvisionedUserFactory, UserFactory
from tests.helpers import assert_error_shape, ledger_snapshot

PASSWORD = "correct horse battery"  # the password tests.factories.UserFactory sets
BALANCE_URL = reverse("credits-balance")
TRANSACTIONS_URL = reverse("credits-transactions")
SPEND_URL = reverse("credits-spend")
ENTRY_KEYS = {
    "id",
    "kind",
    "amount",
    "balance_before",
    "balance_after",
    "source",
    "description",
    "reverses",
    "created_at",
}

pytestmark = pytest.mark.django_db


# --- helpers and fixtures -----------------------------------------------------------------


def token_client_for(user):
    client = APIClient()
    token = Token.objects.create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def csrf_token():
    # An unmasked CSRF secret is a valid token for both the cookie and the header.
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))


@pytest.fixture
def customer():
    """A signed-up user: profile, account and the 20.00 signup grant."""
    return ProvisionedUserFactory(username="alice")


@pytest.fixture
def customer_account(customer):
    return customer.credit_account


@pytest.fixture
def token_client(customer):
    """Authenticated with a DRF token, the way a frontend or a script calls the API."""
    return token_client_for(customer)


@pytest.fixture
def other_customer():
    return ProvisionedUserFactory(username="bob")


# --- authentication -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url"),
    [("get", BALANCE_URL), ("get", TRANSACTIONS_URL), ("post", SPEND_URL)],
    ids=["balance", "transactions", "spend"],
)
def test_unauthenticated_request_is_refused_in_error_shape(api_client, customer, method, url):
    # given
    before = ledger_snapshot()
    body = {"amount": "1.00", "idempotency_key": "anonymous"} if method == "post" else None

    # when
    response = getattr(api_client, method)(url, body, format="json")

    # then
    error = assert_error_shape(response, 401, "not_authenticated")
    assert error["message"] == "Authentication credentials were not provided."
    assert response["WWW-Authenticate"] == "Token"
    assert ledger_snapshot() == before


def test_unknown_token_is_refused(api_client, customer):
    # given
    api_client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    before = ledger_snapshot()

    # when
    response = api_client.post(SPEND_URL, {"amount": "1.00", "idempotency_key": "k"}, format="json")

    # then
    assert_error_shape(response, 401, "authentication_failed")
    assert ledger_snapshot() == before


def test_token_of_inactive_user_is_refused(customer, customer_account):
    # given
    client = token_client_for(customer)
    customer.is_active = False
    customer.save(update_fields=["is_active"])

    # when
    response = client.post(SPEND_URL, {"amount": "1.00", "idempotency_key": "k"}, format="json")

    # then
    assert_error_shape(response, 401, "authentication_failed")
    customer_account.refresh_from_db()
    assert customer_account.balance == Decimal("20.00")
    assert customer_account.entries.count() == 1


def test_token_authentication_reads_the_balance(token_client):
    # when
    response = token_client.get(BALANCE_URL)

    # then
    assert response.status_code == 200
    assert response.json()["balance"] == "20.00"


def test_session_login_reads_the_balance(customer):
    # given
    client = APIClient()
    assert client.login(username=customer.username, password=PASSWORD)

    # when
    response = client.get(BALANCE_URL)

    # then
    assert response.status_code == 200
    assert response.json()["balance"] == "20.00"


def test_session_spend_with_csrf_token_is_accepted(customer, customer_account):
    # given
    client = APIClient(enforce_csrf_checks=True)
    assert client.login(username=customer.username, password=PASSWORD)
    token = csrf_token()
    client.cookies["csrftoken"] = token

    # when
    response = client.post(
        SPEND_URL,
        {"amount": "2.50", "idempotency_key": "session-spend"},
        format="json",
        HTTP_X_CSRFTOKEN=token,
    )

    # then
    assert response.status_code == 201, response.content
    assert response.json()["balance"] == "17.50"
    customer_account.refresh_from_db()
    assert customer_account.balance == Decimal("17.50")
    assert customer_account.total_spent == Decimal("2.50")


def test_session_spend_without_csrf_token_is_refused(customer, customer_account):
    # given: a logged-in browser session, but a request forged from another site
    client = APIClient(enforce_csrf_checks=True)
    assert client.login(username=customer.username, password=PASSWORD)
    before = ledger_snapshot()

    # when
    response = client.post(
        SPEND_URL, {"amount": "2.50", "idempotency_key": "forged"}, format="json"
    )

    # then
    error = assert_error_shape(response, 403, "permission_denied")
    assert "CSRF" in error["message"]
    assert ledger_snapshot() == before


# --- GET /api/credits/transactions/ -------------------------------------------------------


def test_transactions_are_own_entries_newest_first(token_client, customer_account, other_customer):
    # given
    credit_spend(account=customer_account, amount=Decimal("1.50"), idempotency_key="a-1")
    credit_spend(account=customer_account, amount=Decimal("2.25"), idempotency_key="a-2")
    credit_spend(
        account=other_customer.credit_account, amount=Decimal("3.00"), idempotency_key="b-1"
    )
    own_ids = list(customer_account.entries.order_by("-id").values_list("id", flat=True))

    # when
    response = token_client.get(TRANSACTIONS_URL)

    # then
    assert response.status_code == 200
    results = response.json()["results"]
    assert [entry["id"] for entry in results] == own_ids
    assert all(set(entry) == ENTRY_KEYS for entry in results)
    newest, middle, oldest = results
    assert (newest["kind"], newest["amount"]) == (EntryKind.SPEND, "-2.25")
    assert (newest["balance_before"], newest["balance_after"]) == ("18.50", "16.25")
    assert (middle["amount"], middle["balance_after"]) == ("-1.50", "18.50")
    assert (oldest["kind"], oldest["amount"], oldest["balance_after"]) == (
        EntryKind.GRANT,
        "20.00",
        "20.00",
    )


def test_transactions_are_paginated_by_cursor(token_client, customer_account):
    # given: the signup grant and six spends, seven entries in all
    for number in range(6):
        credit_spend(
            account=customer_account, amount=Decimal("1.00"), idempotency_key=f"p-{number}"
        )
    expected_ids = list(customer_account.entries.order_by("-id").values_list("id", flat=True))

    # when
    pages = []
    url = f"{TRANSACTIONS_URL}?page_size=3"
    while url:
        page = token_client.get(url).json()
        pages.append(page)
        url = page["next"]

    # then
    assert [len(page["results"]) for page in pages] == [3, 3, 1]
    assert pages[0]["previous"] is None
    assert pages[1]["previous"] is not None
    seen_ids = [entry["id"] for page in pages for entry in page["results"]]
    assert seen_ids == expected_ids


def test_transactions_with_a_malformed_cursor_answer_invalid(token_client):
    # when
    response = token_client.get(TRANSACTIONS_URL, {"cursor": "not-a-cursor"})

    # then: not base64 at all ("-"): 400; see tests/test_api_errors.py for the rest
    assert_error_shape(response, 400, "invalid")


def test_transactions_of_user_without_account_are_empty(db):
    # given
    client = token_client_for(UserFactory())

    # when
    response = client.get(TRANSACTIONS_URL)

    # then
    assert response.status_code == 200
    assert response.json()["results"] == []


def test_other_user_cannot_see_my_transactions(customer_account, other_customer):
    # given
    mine = credit_spend(account=customer_account, amount=Decimal("4.00"), idempotency_key="m-1")
    client = token_client_for(other_customer)

    # when
    results = client.get(TRANSACTIONS_URL).json()["results"]

    # then
    ids = {entry["id"] for entry in results}
    assert mine.pk not in ids
    assert ids == set(other_customer.credit_account.entries.values_list("id", flat=True))
    assert ids.isdisjoint(customer_account.entries.values_list("id", flat=True))


# --- POST /api/credits/spend/ -------------------------------------------------------------


def test_spend_takes_credits_and_answers_entry_and_balance(
    token_client, customer, customer_account
):
    # given
    count_before = CreditTransaction.objects.count()

    # when
    response = token_client.post(
        SPEND_URL,
        {"amount": "3.50", "idempotency_key": "order-1", "description": "Image render"},
        format="json",
    )

    # then
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"transaction", "balance"}
    assert body["balance"] == "16.50"
    entry = body["transaction"]
    assert set(entry) == ENTRY_KEYS
    assert entry["kind"] == EntryKind.SPEND
    assert entry["amount"] == "-3.50"
    assert entry["balance_before"] == "20.00"
    assert entry["balance_after"] == "16.50"
    assert entry["source"] == "api"
    assert entry["description"] == "Image render"
    assert entry["reverses"] is None
    customer_account.refresh_from_db()
    assert customer_account.balance == Decimal("16.50")
    assert customer_account.total_earned == Decimal("20.00")
    assert customer_account.total_spent == Decimal("3.50")
    assert CreditTransaction.objects.count() == count_before + 1
    stored = CreditTransaction.objects.get(pk=entry["id"])
    assert stored.account_id == customer_account.pk
    assert stored.amount == Decimal("-3.50")
    assert stored.idempotency_key == api_idempotency_key(user_id=customer.pk, client_key="order-1")


def test_spend_of_whole_balance_leaves_zero(token_client, customer_account):
    # when
    response = token_client.post(
        SPEND_URL, {"amount": "20.00", "idempotency_key": "all"}, format="json"
    )

    # then
    assert response.status_code == 201
    assert response.json()["balance"] == "0.00"
    customer_account.refresh_from_db()
    assert customer_account.balance == Decimal("0.00")
    assert customer_account.total_spent == Decimal("20.00")


def test_spend_replay_answers_the_same_entry_and_changes_nothing(token_client, customer_account):
    # given
    body = {"amount": "3.50", "idempotency_key": "order-1"}
    first = token_client.post(SPEND_URL, body, format="json")
    assert first.status_code == 201
    count_after_first = CreditTransaction.objects.count()

    # when
    replay = token_client.post(SPEND_URL, body, format="json")

    # then
    assert replay.status_code == 200
    assert replay.json()["transaction"] == first.json()["transaction"]
    assert replay.json()["balance"] == "16.50"
    assert CreditTransaction.objects.count() == count_after_first
    customer_account.refresh_from_db()
    assert customer_account.balance == Decimal("16.50")
    assert customer_account.total_spent == Decimal("3.50")


def test_spend_replay_with_same_amount_in_another_notation_is_a_replay(
    token_client, customer_account
):
    # given
    first = token_client.post(SPEND_URL, {"amount": "3.5", "idempotency_key": "k"}, format="json")

    # when
    replay = token_client.post(SPEND_URL, {"amount": "3.50", "idempotency_key": "k"}, format="json")

    # then
    assert (first.status_code, replay.status_code) == (201, 200)
    assert replay.json()["transaction"]["id"] == first.json()["transaction"]["id"]
    customer_account.refresh_from_db()
    assert customer_account.balance == Decimal("16.50")


def test_spend_with_too_little_credit_is_refused(token_client, customer_account):
    # given
    before = ledger_snapshot()

    # when
    response = token_client.post(
        SPEND_URL, {"amount": "20.01", "idempotency_key": "too-much"}, format="json"
    )

    # then
    error = assert_error_shape(response, 402, ErrorCode.INSUFFICIENT_CREDITS)
    assert error["message"] == InsufficientCredits.message
    assert error["details"] == {
        "balance": "20.00",
        "held": "0.00",
        "available": "20.00",
        "requested": "20.01",
    }
    assert ledger_snapshot() == before
    customer_account.refresh_from_db()
    assert customer_account.balance == Decimal("20.00")


def test_refused_spend_does_not_burn_its_key(token_client, customer_account):
    # given: a spend refused for lack of credit, then a top-up
    refused = token_client.post(
        SPEND_URL, {"amount": "25.00", "idempotency_key": "k"}, format="json"
    )
    assert refused.status_code == 402
    credit_grant(account=customer_account, amount=Decimal("10.00"), idempotency_key="top-up")

    # when: the client retries with the same key
    response = token_client.post(
        SPEND_URL, {"amount": "25.00", "idempotency_key": "k"}, format="json"
    )

    # then
    assert response.status_code == 201
    customer_account.refresh_from_db()
    assert customer_account.balance == Decimal("5.00")
    assert customer_account.entries.filter(kind=EntryKind.SPEND).count() == 1


def test_spend_without_account_is_refused(db):
    # given
    user = UserFactory()
    client = token_client_for(user)
    before = ledger_snapshot()

    # when
    response = client.post(SPEND_URL, {"amount": "1.00", "idempotency_key": "k"}, format="json")

    # then
    assert_error_shape(response, 404, ErrorCode.ACCOUNT_NOT_FOUND)
    assert ledger_snapshot() == before
    assert not CreditAccount.objects.filter(user=user).exists()


def test_key_reused_with_another_amount_is_a_conflict(token_client, customer_account):
    # given
    first = token_client.post(SPEND_URL, {"amount": "3.00", "idempotency_key": "k"}, format="json")
    assert first.status_code == 201
    before = ledger_snapshot()

    # when
    response = token_client.post(
        SPEND_URL, {"amount": "4.00", "idempotency_key": "k"}, format="json"
    )

    # then
    error = assert_error_shape(response, 409, ErrorCode.IDEMPOTENCY_CONFLICT)
    assert error["message"] == IdempotencyConflict.message
    # The client's own key, never the scoped one the ledger stores ("api:<user id>:k").
    assert error["details"] == {"idempotency_key": "k"}
    assert "api:" not in response.content.decode()
    assert ledger_snapshot() == before
    customer_account.refresh_from_db()
    assert customer_account.balance == Decimal("17.00")


def test_key_used_by_another_user_does_not_touch_their_account(
    customer, customer_account, other_customer
):
    # given: alice spent with key "order-1"
    alice_client = token_client_for(customer)
    alices = alice_client.post(
        SPEND_URL, {"amount": "3.00", "idempotency_key": "order-1"}, format="json"
    ).json()["transaction"]
    bob_client = token_client_for(other_customer)

    # when: bob sends the same key with another amount
    response = bob_client.post(
        SPEND_URL, {"amount": "5.00", "idempotency_key": "order-1"}, format="json"
    )

    # then: it is bob's own new spend, not a replay of or a conflict with alice's
    assert response.status_code == 201
    bobs = response.json()["transaction"]
    assert bobs["id"] != alices["id"]
    assert bobs["amount"] == "-5.00"
    customer_account.refresh_from_db()
    assert customer_account.balance == Decimal("17.00")
    assert customer_account.entries.count() == 2
    bob_account = other_customer.credit_account
    bob_account.refresh_from_db()
    assert bob_account.balance == Decimal("15.00")
    assert CreditTransaction.objects.get(pk=bobs["id"]).account_id == bob_account.pk


def test_key_used_by_another_user_without_credit_neither_replays_nor_touches_it(
    customer, customer_account
):
    # given: alice spent with key "order-1"; carol has an account with nothing in it
    token_client_for(customer).post(
        SPEND_URL, {"amount": "3.00", "idempotency_key": "order-1"}, format="json"
    )
    carol = UserFactory(username="carol")
    credit_account_open(user=carol)
    before = ledger_snapshot()

    # when
    response = token_client_for(carol).post(
        SPEND_URL, {"amount": "3.00", "idempotency_key": "order-1"}, format="json"
    )

    # then: refused for carol's own lack of credit; alice's entry was not handed to carol
    assert_error_shape(response, 402, ErrorCode.INSUFFICIENT_CREDITS)
    assert ledger_snapshot() == before
    customer_account.refresh_from_db()
    assert customer_account.balance == Decimal("17.00")


# --- bad input: 4xx, the error shape, and no row changed ----------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"amount": "0", "idempotency_key": "k"}, "amount", id="zero"),
        pytest.param({"amount": "0.00", "idempotency_key": "k"}, "amount", id="zero-in-cents"),
        pytest.param({"amount": "-5.00", "idempotency_key": "k"}, "amount", id="negative"),
        pytest.param({"amount": -5, "idempotency_key": "k"}, "amount", id="negative-number"),
        pytest.param({"amount": "abc", "idempotency_key": "k"}, "amount", id="not-a-number"),
        pytest.param({"amount": "", "idempotency_key": "k"}, "amount", id="blank-amount"),
        pytest.param({"amount": None, "idempotency_key": "k"}, "amount", id="null-amount"),
        pytest.param({"amount": True, "idempotency_key": "k"}, "amount", id="boolean-amount"),
        pytest.param({"amount": "NaN", "idempotency_key": "k"}, "amount", id="nan"),
        pytest.param({"amount": "Infinity", "idempotency_key": "k"}, "amount", id="infinity"),
        pytest.param({"amount": "1.005", "idempotency_key": "k"}, "amount", id="three-places"),
        pytest.param({"amount": 1.005, "idempotency_key": "k"}, "amount", id="three-places-num"),
        pytest.param({"amount": 10**20, "idempotency_key": "k"}, "amount", id="too-large"),
        pytest.param(
            {"amount": "1000000000000.00", "idempotency_key": "k"}, "amount", id="above-maximum"
        ),
        pytest.param({"amount": ["1.00"], "idempotency_key": "k"}, "amount", id="list-amount"),
        pytest.param({"idempotency_key": "k"}, "amount", id="missing-amount"),
        pytest.param({"amount": "1.00"}, "idempotency_key", id="missing-key"),
        pytest.param({"amount": "1.00", "idempotency_key": ""}, "idempotency_key", id="blank-key"),
        pytest.param(
            {"amount": "1.00", "idempotency_key": "   "}, "idempotency_key", id="whitespace-key"
        ),
        pytest.param({"amount": "1.00", "idempotency_key": None}, "idempotency_key", id="null-key"),
        pytest.param(
            {"amount": "1.00", "idempotency_key": "k" * 101}, "idempotency_key", id="long-key"
        ),
        pytest.param(
            {"amount": "1.00", "idempotency_key": "a\nb"}, "idempotency_key", id="unprintable-key"
        ),
        pytest.param(
            {"amount": "1.00", "idempotency_key": "k", "description": "d" * 256},
            "description",
            id="long-description",
        ),
    ],
)
def test_spend_with_bad_input_is_refused_and_changes_nothing(
    token_client, customer_account, body, field
):
    # given
    before = ledger_snapshot()

    # when
    response = token_client.post(SPEND_URL, body, format="json")

    # then
    error = assert_error_shape(response, 400, "invalid")
    assert field in error["details"]
    assert ledger_snapshot() == before
    customer_account.refresh_from_db()
    assert customer_account.balance == Decimal("20.00")
    assert customer_account.entries.count() == 1


@pytest.mark.parametrize(
    ("raw", "content_type", "status_code", "code"),
    [
        pytest.param(
            "amount=1.00&idempotency_key=k",
            "application/json",
            400,
            "parse_error",
            id="form-body-labelled-json",
        ),
        pytest.param(
            '{"amount": "1.00", "idempotency_key": ',
            "application/json",
            400,
            "parse_error",
            id="truncated-json",
        ),
        pytest.param(
            '{"amount": NaN, "idempotency_key": "k"}',
            "application/json",
            400,
            "parse_error",
            id="json-nan-constant",
        ),
        pytest.param(
            '{"amount": 1e400, "idempotency_key": "k"}',
            "application/json",
            400,
            "invalid",
            id="json-overflowing-number",
        ),
        pytest.param('["1.00", "k"]', "application/json", 400, "invalid", id="json-list"),
        pytest.param(
            "amount=1.00&idempotency_key=k",
            "application/x-www-form-urlencoded",
            415,
            "unsupported_media_type",
            id="form-body",
        ),
        pytest.param(
            "spend 1.00 please", "text/plain", 415, "unsupported_media_type", id="plain-text"
        ),
    ],
)
def test_spend_with_non_json_body_is_refused_and_changes_nothing(
    token_client, customer_account, raw, content_type, status_code, code
):
    # given
    before = ledger_snapshot()

    # when
    response = token_client.generic("POST", SPEND_URL, raw, content_type=content_type)

    # then
    assert_error_shape(response, status_code, code)
    assert ledger_snapshot() == before
    customer_account.refresh_from_db()
    assert customer_account.balance == Decimal("20.00")


@pytest.mark.parametrize(
    ("method", "url"),
    [("get", SPEND_URL), ("post", BALANCE_URL), ("delete", TRANSACTIONS_URL)],
    ids=["get-spend", "post-balance", "delete-transactions"],
)
def test_wrong_method_is_refused_in_error_shape(token_client, method, url):
    # given
    before = ledger_snapshot()

    # when
    response = getattr(token_client, method)(url)

    # then
    assert_error_shape(response, 405, "method_not_allowed")
    assert ledger_snapshot() == before


# --- unknown API paths --------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/api/", "/api/nothing-here/", "/api/credits/nothing-here/", "/api/credits/spend/x"]
)
def test_unknown_api_path_answers_json_not_found(token_client, path):
    # when
    response = token_client.get(path)

    # then
    assert_error_shape(response, 404, "not_found")


def test_unknown_path_outside_api_answers_html(token_client):
    # when
    response = token_client.get("/nothing-here/")

    # then
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
