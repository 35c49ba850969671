"""The holds API under concurrent retries, on PostgreSQL with real threads and connections: a
client that sends one request several times at once gets one hold and one capture, never two,
on both write paths."""

from decimal import Decimal

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from credits.models import CreditAccount, CreditHold, CreditTransaction, EntryKind
from tests.factories import ProvisionedUserFactory
from tests.helpers import assert_ledger_consistent, fund, run_in_threads

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("write_path"),
]


def client_for(user):
    client = APIClient()
    client.force_authenticate(user=user)
    return client


def test_one_hold_and_one_capture_however_often_they_are_sent_at_once():
    # given: 120.00
    user = ProvisionedUserFactory()
    fund(user.credit_account, "100.00")
    body = {"amount": "30.00", "idempotency_key": "render-1"}

    # when: 8 threads send the same hold, then the same capture of it
    made, errors = run_in_threads(
        lambda index: client_for(user).post(reverse("credits-holds"), body, format="json")
    )
    assert errors == []
    hold_id = made[0].json()["hold"]["id"]
    url = reverse("credits-hold-capture", args=[hold_id])
    captured, errors = run_in_threads(
        lambda index: client_for(user).post(url, {"idempotency_key": "done"}, format="json")
    )

    # then
    assert errors == []
    assert sorted(response.status_code for response in made) == [200] * 7 + [201]
    assert {response.json()["hold"]["id"] for response in made} == {hold_id}
    assert sorted(response.status_code for response in captured) == [200] * 7 + [201]
    assert len({response.json()["transaction"]["id"] for response in captured}) == 1
    assert CreditHold.objects.count() == 1
    spends = CreditTransaction.objects.filter(kind=EntryKind.SPEND)
    assert list(spends.values_list("amount", flat=True)) == [Decimal("-30.00")]
    account = CreditAccount.objects.get(user=user)
    assert (account.balance, account.held) == (Decimal("90.00"), Decimal("0.00"))
    assert_ledger_consistent()
