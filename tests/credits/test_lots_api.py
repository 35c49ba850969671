"""The lots API: GET /api/credits/lots/, the caller's own lots newest first, with what is left
of each (the balance is the sum of the remaining)."""

from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils.dateparse import parse_datetime
from rest_framework.test import APIClient

from credits.models import CreditLot
from credits.services import credit_account_open, credit_grant, credit_spend
from tests.factories import ProvisionedUserFactory, UserFactory
from tests.helpers import fund

pytestmark = pytest.mark.django_db

LOTS_URL = reverse("credits-lots")
LOT_KEYS = {"id", "category", "amount", "remaining", "priority", "effective_at", "expires_at"}


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


def test_the_lot_list_is_my_lots_newest_first_with_what_is_left(client, customer):
    # given: the 20.00 promotional signup grant, 100.00 granted, then 25.00 spent (the
    # promotional lot and the granted one are of one rank: the older, the signup's, first)
    account = customer.credit_account
    credit_spend(account=account, amount=Decimal("25.00"), idempotency_key="s")
    ProvisionedUserFactory(username="bob")  # another user's lots are not mine

    # when
    response = client.get(LOTS_URL)

    # then
    assert response.status_code == 200
    rows = response.json()["results"]
    mine = list(CreditLot.objects.filter(account=account).order_by("-id"))
    assert [row["id"] for row in rows] == [lot.pk for lot in mine]
    assert set(rows[0]) == LOT_KEYS
    assert [(row["amount"], row["remaining"]) for row in rows] == [
        ("100.00", "95.00"),
        ("20.00", "0.00"),
    ]
    assert sum(Decimal(row["remaining"]) for row in rows) == Decimal("95.00")


def test_open_lots_are_those_with_credit_left(client, customer):
    # given: the signup lot spent to nothing, a purchase-like lot with an expiry
    account = customer.credit_account
    credit_spend(account=account, amount=Decimal("20.00"), idempotency_key="s")
    expires = parse_datetime("2030-01-01T00:00:00Z")
    entry = credit_grant(
        account=account,
        amount=Decimal("7.50"),
        idempotency_key="g",
        category="paid",
        expires_at=expires,
    )

    # when
    open_lots = client.get(LOTS_URL, {"open": "true"}).json()["results"]
    every_lot = client.get(LOTS_URL, {"open": "false"}).json()["results"]

    # then
    assert [row["remaining"] for row in open_lots] == ["7.50", "100.00"]
    assert open_lots[0]["id"] == entry.lot.pk
    assert open_lots[0]["category"] == "paid"
    assert parse_datetime(open_lots[0]["expires_at"]) == expires
    assert len(every_lot) == 3


def test_a_new_account_has_no_lots(db):
    # given
    user = UserFactory()
    credit_account_open(user=user)

    # when
    response = client_for(user).get(LOTS_URL)

    # then
    assert response.status_code == 200
    assert response.json()["results"] == []
