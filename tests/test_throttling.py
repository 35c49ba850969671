"""Throttles: the spend endpoint, the hold writes and the staff endpoints have scoped rates
(settings and the environment; high in the test settings). With a low rate, the next request is
refused with 429 in the error shape and changes nothing."""

from decimal import Decimal

import pytest
from django.core.cache import cache
from django.urls import reverse
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle

from credits.models import CreditAccount, CreditHold, CreditTransaction
from tests.factories import BILLING_SUPER_ADMINS, ProvisionedUserFactory, StaffUserFactory
from tests.helpers import assert_error_shape

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_user(db):
    """Staff who may read the migration's status (migrations_app.view_migrationrun)."""
    return StaffUserFactory(username="staff", groups=[BILLING_SUPER_ADMINS])


@pytest.fixture
def low_rates(monkeypatch):
    # DRF reads the rates once, into the throttle class: set them there.
    monkeypatch.setattr(
        ScopedRateThrottle,
        "THROTTLE_RATES",
        {"spend": "2/hour", "holds": "2/hour", "staff": "1/hour"},
    )
    cache.clear()
    yield
    cache.clear()


def test_the_third_spend_in_the_window_is_throttled(low_rates):
    # given: a user with 20 credits who spent twice
    user = ProvisionedUserFactory()
    client = APIClient()
    client.force_authenticate(user=user)
    url = reverse("credits-spend")
    for n in range(2):
        response = client.post(url, {"amount": "1.00", "idempotency_key": f"k{n}"}, format="json")
        assert response.status_code == 201
    entries = CreditTransaction.objects.count()
    # when
    response = client.post(url, {"amount": "1.00", "idempotency_key": "k2"}, format="json")
    # then
    error = assert_error_shape(response, 429, "throttled")
    assert error["details"]["wait_seconds"] > 0
    assert CreditTransaction.objects.count() == entries
    assert CreditAccount.objects.get(user=user).balance == Decimal("18.00")


def test_staff_endpoints_share_the_staff_rate(low_rates, staff_user):
    # given
    client = APIClient()
    client.force_authenticate(user=staff_user)
    assert client.get(reverse("migrate-status")).status_code == 200
    # when
    response = client.get(reverse("billing-health"))
    # then
    assert_error_shape(response, 429, "throttled")


def test_the_test_settings_rates_are_high(settings):
    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    assert rates == {"spend": "100000/minute", "holds": "100000/minute", "staff": "100000/minute"}


def test_hold_writes_share_the_holds_rate_and_reading_holds_is_not_limited(low_rates):
    # given: a hold and its release, the two writes the rate allows
    user = ProvisionedUserFactory()
    client = APIClient()
    client.force_authenticate(user=user)
    made = client.post(
        reverse("credits-holds"), {"amount": "5.00", "idempotency_key": "h1"}, format="json"
    )
    assert made.status_code == 201
    hold_id = made.json()["hold"]["id"]
    assert client.post(reverse("credits-hold-release", args=[hold_id])).status_code == 200
    before = (CreditHold.objects.count(), CreditTransaction.objects.count())
    # when
    capture = client.post(
        reverse("credits-hold-capture", args=[hold_id]), {"idempotency_key": "c"}, format="json"
    )
    another = client.post(
        reverse("credits-holds"), {"amount": "5.00", "idempotency_key": "h2"}, format="json"
    )
    listed = client.get(reverse("credits-holds"))
    # then: both writes refused before they ran; the list still answers; spends have their own
    assert_error_shape(capture, 429, "throttled")
    assert_error_shape(another, 429, "throttled")
    assert listed.status_code == 200
    assert (CreditHold.objects.count(), CreditTransaction.objects.count()) == before
    spend = client.post(
        reverse("credits-spend"), {"amount": "1.00", "idempotency_key": "s"}, format="json"
    )
    assert spend.status_code == 201


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/admin/billing/credits/adjust"),
        ("post", "/api/admin/billing/refund"),
        ("get", "/api/admin/billing/user/{user}/summary"),
    ],
)
def test_the_staff_billing_endpoints_share_the_staff_rate(low_rates, staff_user, method, path):
    # given: the staff rate (1/hour) used up on another staff endpoint
    client = APIClient()
    client.force_authenticate(user=staff_user)
    assert client.get(reverse("migrate-status")).status_code == 200
    entries = CreditTransaction.objects.count()
    # when
    url = path.format(user=staff_user.pk)
    body = {"user_id": staff_user.pk, "amount": "1.00", "reason": "r", "idempotency_key": "k"}
    response = getattr(client, method)(url, body if method == "post" else None, format="json")
    # then
    assert_error_shape(response, 429, "throttled")
    assert CreditTransaction.objects.count() == entries
