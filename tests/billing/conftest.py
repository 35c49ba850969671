"""Stripe offline: its HTTP layer blocked, dj-stripe's account seeded, events posted signed.

Any call that would reach Stripe fails the test. dj-stripe's own handlers re-fetch objects from
the API before our receivers run; that sync is neutralised here (our receivers read the payload
and call no API), and the account/API key rows it would fetch once are seeded.
"""

from unittest import mock

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from tests.billing import stripe_events
from tests.factories import WebhookEndpointFactory


@pytest.fixture
def stripe_http():
    """Stripe's HTTP client, failing the test on any request unless a test gives it answers."""

    def refuse(self, method, url, *args, **kwargs):
        pytest.fail(f"Unexpected Stripe API call: {method.upper()} {url}")

    with (
        mock.patch("stripe._http_client.HTTPClient.request_with_retries", autospec=True) as request,
        mock.patch(
            "stripe._http_client.HTTPClient.request_stream_with_retries",
            autospec=True,
            side_effect=refuse,
        ),
    ):
        request.side_effect = refuse
        yield request


@pytest.fixture
def stripe_offline(db, stripe_http):
    from djstripe.models import Account, APIKey

    account = Account.objects.create(id="acct_test_platform", livemode=False)
    APIKey.objects.create(
        secret=settings.STRIPE_TEST_SECRET_KEY,
        type="secret",
        livemode=False,
        djstripe_owner_account=account,
    )
    with mock.patch("djstripe.event_handlers._handle_crud_like_event"):
        yield stripe_http


@pytest.fixture
def webhook_endpoint(stripe_offline):
    return WebhookEndpointFactory()


class Webhook:
    """Posts event payloads to the real dj-stripe view, signed with the endpoint's secret."""

    def __init__(self, endpoint):
        self.endpoint = endpoint
        self.url = reverse(
            "djstripe:djstripe_webhook_by_uuid", kwargs={"uuid": endpoint.djstripe_uuid}
        )
        self.client = Client(raise_request_exception=False)

    def post(self, payload: dict, *, secret: str | None = None, timestamp=None, headers=None):
        body = stripe_events.body_of(payload)
        signature = stripe_events.signature(
            body, secret or self.endpoint.secret, timestamp=timestamp
        )
        return self.post_raw(body, headers={"Stripe-Signature": signature, **(headers or {})})

    def post_raw(self, body: bytes, *, headers=None):
        return self.client.post(
            self.url, data=body, content_type="application/json", headers=headers or {}
        )


@pytest.fixture
def webhook(webhook_endpoint):
    return Webhook(webhook_endpoint)


# --- Stripe at HTTP: dj-stripe's real sync against a fake Stripe API ----------------------------


@pytest.fixture
def fake_stripe(monkeypatch):
    """A fake Stripe API on 127.0.0.1 that stripe-python (and so dj-stripe) calls instead."""
    import stripe

    from tests.billing import stripe_api_objects
    from tests.billing.fake_stripe import FakeStripe

    server = FakeStripe(api_version=settings.STRIPE_API_VERSION).start()
    server.account = stripe_api_objects.account()
    monkeypatch.setattr(stripe, "api_base", server.url)
    monkeypatch.setattr(stripe, "max_network_retries", 0)
    try:
        yield server
    finally:
        server.stop()
    # Every request carried the pinned version: the shapes served are the shapes asked for.
    wrong = [(r.method, r.path, r.headers.get("stripe-version")) for r in server.wrong_versions]
    assert wrong == [], f"Stripe API requests in another version than the pinned one: {wrong}"


@pytest.fixture
def stripe_synced(db, fake_stripe):
    """dj-stripe's account seeded (as after its first fetch); its sync runs against the fake."""
    from djstripe.models import Account, APIKey

    account = Account.objects.create(id="acct_test_platform", livemode=False)
    APIKey.objects.create(
        secret=settings.STRIPE_TEST_SECRET_KEY,
        type="secret",
        livemode=False,
        djstripe_owner_account=account,
    )
    return fake_stripe


@pytest.fixture
def synced_webhook(stripe_synced):
    hook = Webhook(WebhookEndpointFactory())
    hook.fake = stripe_synced
    return hook


@pytest.fixture
def newest_shape_webhook(stripe_synced):
    """An endpoint created with Stripe's newest API version, not the pinned one: Stripe sends it
    payloads in that version, while dj-stripe re-fetches from the fake in the pinned one."""
    from tests.billing import stripe_dahlia_events

    hook = Webhook(WebhookEndpointFactory(api_version=stripe_dahlia_events.API_VERSION))
    hook.fake = stripe_synced
    return hook
