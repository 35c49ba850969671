"""The holds API, settling: POST /api/credits/holds/<id>/capture/ and .../release/.

A capture spends at most the hold and frees the rest; a release frees it all; both are
idempotent. Another user's hold is a 404 exactly like an id that names nothing, so no client
learns which holds exist. Every refusal changes no row of the ledger, its lots or its holds.
"""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from core.keys import api_capture_key
from credits.models import (
    CreditAccount,
    CreditAllocation,
    CreditHold,
    CreditLot,
    CreditTransaction,
    EntryKind,
    HoldStatus,
)
from credits.services import credit_hold_create, credit_holds_expire
from tests.factories import ProvisionedUserFactory, UserFactory
from tests.helpers import (
    assert_error_shape,
    assert_ledger_consistent,
    fund,
    ledger_snapshot,
    table_contents,
)

pytestmark = pytest.mark.django_db

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
BOOKS = (CreditAccount, CreditTransaction, CreditLot, CreditAllocation, CreditHold)


def books():
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


@pytest.fixture
def held(customer):
    """A 30.00 hold on the customer's 120.00."""
    return credit_hold_create(
        account=customer.credit_account,
        amount=Decimal("30.00"),
        idempotency_key="fixture-hold",
        description="Video render",
    )


def capture(client, hold_id, key="done-1", **body):
    url = reverse("credits-hold-capture", args=[hold_id])
    return client.post(url, {"idempotency_key": key, **body}, format="json")


def release(client, hold_id):
    return client.post(reverse("credits-hold-release", args=[hold_id]))


def figures(body):
    return body["balance"], body["held"], body["available"]


# --- capture ------------------------------------------------------------------------------


def test_capturing_the_whole_hold_spends_it(write_path, client, customer, held):
    # when
    response = capture(client, held.pk)

    # then
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"transaction", "hold", "balance", "held", "available"}
    assert set(body["transaction"]) == ENTRY_KEYS
    entry = body["transaction"]
    assert (entry["kind"], entry["amount"], entry["source"]) == ("spend", "-30.00", "hold")
    assert (entry["balance_before"], entry["balance_after"]) == ("120.00", "90.00")
    assert entry["description"] == "Video render"
    assert body["hold"]["status"] == "captured"
    assert body["hold"]["captured"] == "30.00"
    assert body["hold"]["resolved_at"] is not None
    assert figures(body) == ("90.00", "0.00", "90.00")
    stored = CreditTransaction.objects.get(pk=entry["id"])
    assert stored.idempotency_key == api_capture_key(user_id=customer.pk, client_key="done-1")
    held.refresh_from_db()
    assert (held.status, held.captured, held.entry_id) == (
        HoldStatus.CAPTURED,
        Decimal("30.00"),
        stored.pk,
    )
    assert_ledger_consistent()


def test_capturing_part_of_a_hold_frees_the_rest(write_path, client, customer, held):
    # when
    response = capture(client, held.pk, amount="12.50")

    # then
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["transaction"]["amount"] == "-12.50"
    assert body["hold"]["captured"] == "12.50"
    assert figures(body) == ("107.50", "0.00", "107.50")
    account = customer.credit_account
    account.refresh_from_db()
    assert (account.balance, account.held) == (Decimal("107.50"), Decimal("0.00"))
    assert_ledger_consistent()


def test_a_capture_replay_answers_the_same_entry_and_writes_nothing(write_path, client, held):
    # given
    first = capture(client, held.pk, amount="12.50")
    before = books()

    # when
    again = capture(client, held.pk, amount="12.5")
    without_amount = capture(client, held.pk)

    # then
    assert (again.status_code, without_amount.status_code) == (200, 200)
    assert again.json() == first.json()
    assert without_amount.json() == first.json()
    assert books() == before


def test_a_capture_key_with_another_amount_is_a_conflict(write_path, client, held):
    # given
    capture(client, held.pk, amount="12.50")
    before = books()

    # when
    response = capture(client, held.pk, amount="13.00")

    # then
    error = assert_error_shape(response, 409, "idempotency_conflict")
    assert error["details"] == {"idempotency_key": "done-1"}
    assert books() == before


def test_a_capture_key_used_for_another_hold_is_a_conflict(write_path, client, customer, held):
    # given: the key spent on the first hold's capture
    capture(client, held.pk, key="once")
    second = credit_hold_create(
        account=customer.credit_account, amount=Decimal("5"), idempotency_key="second"
    )
    before = books()

    # when
    response = capture(client, second.pk, key="once")

    # then
    error = assert_error_shape(response, 409, "idempotency_conflict")
    assert error["details"] == {"idempotency_key": "once"}
    assert books() == before
    second.refresh_from_db()
    assert second.status == HoldStatus.ACTIVE


def test_a_capture_key_is_not_a_spend_key(client, customer, held):
    # given: a spend under the client key "k"
    spent = client.post(
        reverse("credits-spend"), {"amount": "1.00", "idempotency_key": "k"}, format="json"
    )
    assert spent.status_code == 201

    # when
    response = capture(client, held.pk, key="k")

    # then: two writes, two entries
    assert response.status_code == 201
    assert response.json()["transaction"]["id"] != spent.json()["transaction"]["id"]
    assert figures(response.json()) == ("89.00", "0.00", "89.00")


def test_capturing_more_than_the_hold_is_refused(write_path, client, held):
    # given
    before = books()

    # when
    response = capture(client, held.pk, amount="30.01")

    # then
    error = assert_error_shape(response, 400, "invalid_amount")
    assert error["details"] == {"amount": "30.01", "hold_amount": "30.00"}
    assert books() == before


def test_another_users_hold_is_not_found_and_untouched(write_path, held):
    # given
    intruder = client_for(ProvisionedUserFactory(username="mallory"))
    before = books()

    # when
    captured = capture(intruder, held.pk)
    released = release(intruder, held.pk)

    # then: the same answer as for an id that names nothing
    for response in (captured, released):
        assert_error_shape(response, 404, "hold_not_found")
    assert books() == before


@pytest.mark.parametrize("hold_id", [999_999, 2**63 - 1, 2**63, 10**30], ids=str)
def test_an_unknown_hold_is_not_found(client, held, hold_id):
    # given
    before = books()

    # when
    captured = capture(client, hold_id)
    released = release(client, hold_id)

    # then
    for response in (captured, released):
        assert_error_shape(response, 404, "hold_not_found")
    assert books() == before


def test_a_user_without_an_account_finds_no_hold(held):
    # when
    response = capture(client_for(UserFactory()), held.pk)

    # then
    assert_error_shape(response, 404, "hold_not_found")


@pytest.mark.parametrize("settled", ["captured", "released", "expired"])
def test_a_hold_no_longer_active_cannot_be_captured(client, held, settled):
    # given
    if settled == "captured":
        capture(client, held.pk, key="first")
    elif settled == "released":
        release(client, held.pk)
    else:
        credit_holds_expire(now=timezone.now() + timedelta(days=8))
    before = books()

    # when
    response = capture(client, held.pk, key="late")

    # then
    error = assert_error_shape(response, 409, "hold_not_active")
    assert error["details"] == {"hold_id": held.pk, "status": settled}
    assert books() == before


def test_a_hold_past_its_time_cannot_be_captured_before_the_task_expires_it(client, customer):
    # given: a hold past its time, not yet expired by the beat task (its expiry moved back:
    # the tests have no clock to move forward)
    hold = credit_hold_create(
        account=customer.credit_account,
        amount=Decimal("5"),
        idempotency_key="short",
        ttl_seconds=1,
    )
    CreditHold.objects.filter(pk=hold.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    before = books()

    # when
    response = capture(client, hold.pk)

    # then
    error = assert_error_shape(response, 409, "hold_not_active")
    assert error["details"]["status"] == "expired"
    assert books() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"amount": "0"}, "amount", id="zero"),
        pytest.param({"amount": "-1.00"}, "amount", id="negative"),
        pytest.param({"amount": "1.005"}, "amount", id="three-places"),
        pytest.param({"amount": "1000000000000.00"}, "amount", id="beyond-the-column"),
        pytest.param({"amount": 10**20}, "amount", id="huge-number"),
        pytest.param({"amount": 5}, "amount", id="a-json-number"),
        pytest.param({"amount": "abc"}, "amount", id="not-a-number"),
        pytest.param({"amount": None}, "amount", id="null"),
        pytest.param({"idempotency_key": ...}, "idempotency_key", id="missing-key"),
        pytest.param({"idempotency_key": ""}, "idempotency_key", id="blank-key"),
        pytest.param({"idempotency_key": "k" * 101}, "idempotency_key", id="key-too-long"),
        pytest.param({"idempotency_key": 7}, "idempotency_key", id="key-a-number"),
    ],
)
def test_a_capture_with_bad_input_is_refused_and_changes_nothing(client, held, body, field):
    # given
    request = {"idempotency_key": "k", **body}
    request = {name: value for name, value in request.items() if value is not ...}
    before = books()

    # when
    response = client.post(reverse("credits-hold-capture", args=[held.pk]), request, format="json")

    # then
    error = assert_error_shape(response, 400, "invalid")
    assert field in error["details"]
    assert books() == before


# --- release ------------------------------------------------------------------------------


def test_releasing_frees_the_hold(client, customer, held):
    # when
    response = release(client, held.pk)

    # then
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"hold", "balance", "held", "available"}
    assert body["hold"]["status"] == "released"
    assert body["hold"]["captured"] == "0.00"
    assert body["hold"]["resolved_at"] is not None
    assert figures(body) == ("120.00", "0.00", "120.00")
    held.refresh_from_db()
    assert (held.status, held.released_by_id) == (HoldStatus.RELEASED, None)
    assert not CreditTransaction.objects.filter(kind=EntryKind.SPEND).exists()
    assert_ledger_consistent()


def test_releasing_a_released_hold_answers_it_again_and_changes_nothing(client, held):
    # given
    first = release(client, held.pk)
    before = books()

    # when
    again = client.post(reverse("credits-hold-release", args=[held.pk]), {}, format="json")

    # then
    assert again.status_code == 200
    assert again.json() == first.json()
    assert books() == before


@pytest.mark.parametrize("settled", ["captured", "expired"])
def test_a_captured_or_expired_hold_cannot_be_released(client, held, settled):
    # given
    if settled == "captured":
        capture(client, held.pk)
    else:
        credit_holds_expire(now=timezone.now() + timedelta(days=8))
    before = books()

    # when
    response = release(client, held.pk)

    # then
    error = assert_error_shape(response, 409, "hold_not_active")
    assert error["details"] == {"hold_id": held.pk, "status": settled}
    assert books() == before
