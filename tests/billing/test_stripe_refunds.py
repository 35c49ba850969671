"""`stripe_refund_credits`: money back through Stripe's API, credits off the ledger, once.

Stripe is faked at its HTTP boundary (the SDK's HTTP client), answering like Stripe does: one
refund per idempotency key, the same refund again for a repeated key.
"""

import json
import uuid
from decimal import Decimal
from unittest import mock
from urllib.parse import parse_qsl

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db import OperationalError
from django.test import Client
from django.urls import reverse

from billing.exceptions import PaymentNotFound, RefundExceedsPurchase, StripeRefundFailed
from billing.models import UserProfile
from billing.stripe.refunds import (
    billing_staff_refund,
    stripe_refund_credits,
)
from billing.stripe.services import stripe_checkout_paid
from core.keys import stripe_idempotency_key
from credits.exceptions import (
    ApprovalRequired,
    IdempotencyConflict,
    InsufficientCredits,
    OverDailyLimit,
    OwnAccount,
    ReasonRequired,
    StaffPermissionDenied,
)
from credits.models import CreditAccount, CreditTransaction, EntryKind
from credits.selectors import ledger_sum
from credits.services import credit_spend
from tests.billing import stripe_events
from tests.factories import (
    CreditAdminFactory,
    CreditPackFactory,
    ProvisionedUserFactory,
    StaffUserFactory,
    SuperAdminFactory,
)
from tests.helpers import assert_ledger_consistent

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def ledger_checked_after_each_test(db):
    yield
    assert_ledger_consistent()


class FakeStripeRefunds:
    """Answers POST /v1/refunds as Stripe would, keyed on the Idempotency-Key header."""

    def __init__(self, error: tuple[int, dict] | None = None):
        self.error = error
        self.requests: list[tuple[dict, dict]] = []
        self.refunds: dict[str, dict] = {}

    def __call__(self, client, method, url, headers, post_data=None, *args, **kwargs):
        assert (method.lower(), url.split("?")[0]) == ("post", "https://api.stripe.com/v1/refunds")
        params = dict(parse_qsl(post_data))
        self.requests.append((dict(headers), params))
        if self.error:
            status, body = self.error
            return json.dumps(body), status, {"Request-Id": "req_error"}
        key = headers["Idempotency-Key"]
        if key not in self.refunds:
            self.refunds[key] = {
                "id": f"re_test_{len(self.refunds) + 1}",
                "object": "refund",
                "amount": int(params["amount"]),
                "currency": "usd",
                "payment_intent": params["payment_intent"],
                "status": "succeeded",
            }
        return json.dumps(self.refunds[key]), 200, {"Request-Id": f"req_{len(self.requests)}"}


@pytest.fixture
def buyer(stripe_offline):
    user = ProvisionedUserFactory(
        username="buyer", email="buyer@example.com", provision__signup_grant=False
    )
    UserProfile.objects.filter(user=user).update(stripe_customer_id="cus_buyer")
    return user


@pytest.fixture
def account(buyer):
    return CreditAccount.objects.get(user=buyer)


@pytest.fixture
def purchase(buyer) -> CreditTransaction:
    """100 credits bought for 10.00 USD with payment intent pi_bought."""
    pack = CreditPackFactory(stripe_price_id="price_pack_100", credits=Decimal("100.00"))
    return stripe_checkout_paid(
        event_id="evt_bought",
        event_type="checkout.session.completed",
        payload=stripe_events.checkout_session(
            price_id=pack.stripe_price_id, amount_total=1000, payment_intent="pi_bought"
        ),
    )


@pytest.fixture
def stripe_api(stripe_offline):
    fake = FakeStripeRefunds()
    stripe_offline.side_effect = fake
    return fake


def refund(account, staff_user, amount="100.00", key="refund:1", payment_intent="pi_bought"):
    return stripe_refund_credits(
        account=account,
        amount=Decimal(amount),
        payment_intent_id=payment_intent,
        actor=staff_user,
        reason="Customer asked",
        idempotency_key=key,
    )


def refund_entries(account):
    return CreditTransaction.objects.filter(account=account, kind=EntryKind.REFUND)


def test_a_refund_goes_to_stripe_and_the_entry_has_its_refund_id(
    account, purchase, stripe_api, staff_user
):
    # when
    entry = refund(account, staff_user)
    # then
    assert len(stripe_api.requests) == 1
    headers, params = stripe_api.requests[0]
    assert params["payment_intent"] == "pi_bought"
    assert params["amount"] == "1000"
    assert headers["Idempotency-Key"] == stripe_idempotency_key(ledger_key="refund:1")
    account.refresh_from_db()
    assert account.balance == Decimal("0.00")
    assert entry.kind == EntryKind.REFUND
    assert entry.amount == Decimal("-100.00")
    assert entry.idempotency_key == "refund:1"
    assert entry.actor == staff_user
    assert entry.reason == "Customer asked"
    assert entry.metadata["stripe_refund_id"] == "re_test_1"
    assert entry.metadata["payment_intent"] == "pi_bought"
    assert entry.metadata["refund_amount_cents"] == 1000
    assert entry.metadata["purchase_entry_id"] == purchase.pk
    assert ledger_sum(account=account) == Decimal("0.00")


def test_a_partial_refund_gives_back_its_share_of_the_price(
    account, purchase, stripe_api, staff_user
):
    # when
    entry = refund(account, staff_user, amount="33.33")
    # then
    assert stripe_api.requests[0][1]["amount"] == "333"
    account.refresh_from_db()
    assert account.balance == Decimal("66.67")
    assert entry.amount == Decimal("-33.33")


def test_a_stripe_error_leaves_nothing_written(account, purchase, stripe_offline, staff_user):
    # given
    stripe_offline.side_effect = FakeStripeRefunds(
        error=(
            400,
            {
                "error": {
                    "type": "invalid_request_error",
                    "code": "charge_already_refunded",
                    "message": "Charge ch_1 has already been refunded.",
                }
            },
        )
    )
    entries_before = CreditTransaction.objects.count()
    # when
    with pytest.raises(StripeRefundFailed) as refused:
        refund(account, staff_user)
    # then
    assert refused.value.details["stripe_code"] == "charge_already_refunded"
    account.refresh_from_db()
    assert account.balance == Decimal("100.00")
    assert CreditTransaction.objects.count() == entries_before
    assert not refund_entries(account).exists()


def test_a_retry_after_success_replays_without_refunding_again(
    account, purchase, stripe_api, staff_user
):
    # given
    first = refund(account, staff_user, amount="40.00")
    # when
    again = refund(account, staff_user, amount="40.00")
    # then
    assert len(stripe_api.requests) == 1
    assert again.pk == first.pk
    assert again.replayed
    account.refresh_from_db()
    assert account.balance == Decimal("60.00")
    assert refund_entries(account).count() == 1


def test_the_same_key_for_another_amount_is_a_conflict_and_stripe_is_not_asked_again(
    account, purchase, stripe_api, staff_user
):
    # given
    refund(account, staff_user, amount="40.00")
    # when
    with pytest.raises(IdempotencyConflict):
        refund(account, staff_user, amount="50.00")
    # then no second refund left Stripe, and the ledger holds the first one only
    assert len(stripe_api.requests) == 1
    account.refresh_from_db()
    assert account.balance == Decimal("60.00")
    assert refund_entries(account).count() == 1


def test_a_retry_after_a_crash_gets_the_same_stripe_refund_and_writes_once(
    account, purchase, stripe_api, staff_user
):
    # given: Stripe refunded, then the ledger write failed (the process died, say)
    with (
        mock.patch(
            "billing.stripe.refunds.credit_refund", side_effect=OperationalError("server gone")
        ),
        pytest.raises(OperationalError),
    ):
        refund(account, staff_user)
    assert not refund_entries(account).exists()
    # when: the same call again
    entry = refund(account, staff_user)
    # then: Stripe saw the same key twice and made one refund
    keys = [headers["Idempotency-Key"] for headers, _ in stripe_api.requests]
    assert keys == [stripe_idempotency_key(ledger_key="refund:1")] * 2
    assert len(stripe_api.refunds) == 1
    assert entry.metadata["stripe_refund_id"] == "re_test_1"
    account.refresh_from_db()
    assert account.balance == Decimal("0.00")
    assert refund_entries(account).count() == 1


def test_refunds_of_one_purchase_never_exceed_it(account, purchase, stripe_api, staff_user):
    # given
    refund(account, staff_user, amount="60.00", key="refund:a")
    # when
    with pytest.raises(RefundExceedsPurchase):
        refund(account, staff_user, amount="40.01", key="refund:b")
    # then
    assert len(stripe_api.requests) == 1
    account.refresh_from_db()
    assert account.balance == Decimal("40.00")


def test_an_unknown_payment_is_refused_before_stripe(account, purchase, stripe_http, staff_user):
    # when / then (stripe_http fails the test on any request)
    with pytest.raises(PaymentNotFound):
        refund(account, staff_user, payment_intent="pi_someone_elses")
    account.refresh_from_db()
    assert account.balance == Decimal("100.00")


def test_spent_credits_are_refused_before_stripe(account, purchase, stripe_http, staff_user):
    # given
    credit_spend(account=account, amount=Decimal("80.00"), idempotency_key="use:1")
    # when
    with pytest.raises(InsufficientCredits):
        refund(account, staff_user, amount="50.00")
    # then
    account.refresh_from_db()
    assert account.balance == Decimal("20.00")
    assert not refund_entries(account).exists()


def test_a_refund_needs_a_reason(account, purchase, stripe_http, staff_user):
    with pytest.raises(ReasonRequired):
        stripe_refund_credits(
            account=account,
            amount=Decimal("1.00"),
            payment_intent_id="pi_bought",
            actor=staff_user,
            reason=" ",
            idempotency_key="refund:no-reason",
        )
    assert not refund_entries(account).exists()


def test_stripes_refund_event_afterwards_takes_nothing_more(
    webhook, account, purchase, stripe_api, staff_user
):
    # given: staff refunded 100 credits (10.00 USD) through Stripe
    refund(account, staff_user)
    # when: Stripe reports the charge refunded
    response = webhook.post(
        stripe_events.event(
            "charge.refunded",
            stripe_events.charge(payment_intent="pi_bought", amount=1000, amount_refunded=1000),
        )
    )
    # then
    assert response.status_code == 200
    account.refresh_from_db()
    assert account.balance == Decimal("0.00")
    assert refund_entries(account).count() == 1


# --- staff refunds: the roles first, then Stripe (billing_staff_refund, and the admin) -----


def staff_refund(account, actor, amount="40.00", key="staff:1", **kwargs):
    return billing_staff_refund(
        account=account,
        amount=Decimal(amount),
        idempotency_key=key,
        actor=actor,
        reason="Customer asked",
        **kwargs,
    )


def test_a_super_admin_refunds_through_stripe(account, purchase, stripe_api):
    # given
    admin_user = SuperAdminFactory()
    # when
    entry = staff_refund(account, admin_user, stripe_refund=True, payment_intent_id="pi_bought")
    # then
    assert len(stripe_api.requests) == 1
    assert entry.metadata["stripe_refund_id"] == "re_test_1"
    assert entry.actor == admin_user
    account.refresh_from_db()
    assert account.balance == Decimal("60.00")


@pytest.mark.parametrize(
    ("make_actor", "error"),
    [
        (lambda: CreditAdminFactory(), StaffPermissionDenied),  # no refund permission
        (lambda: StaffUserFactory(), StaffPermissionDenied),
    ],
    ids=["credit-admin", "staff-without-permissions"],
)
def test_a_stripe_refund_without_the_role_is_refused_before_stripe(
    account, purchase, stripe_api, make_actor, error
):
    # given
    entries = CreditTransaction.objects.count()
    # when / then
    with pytest.raises(error):
        staff_refund(account, make_actor(), stripe_refund=True, payment_intent_id="pi_bought")
    assert stripe_api.requests == []
    assert CreditTransaction.objects.count() == entries


def test_a_stripe_refund_above_the_approval_threshold_is_refused(
    account, purchase, stripe_api, settings
):
    # given: money through Stripe cannot wait for a second person's approval
    settings.CREDITS_APPROVAL_THRESHOLD = Decimal("30.00")
    entries = CreditTransaction.objects.count()
    # when / then
    with pytest.raises(ApprovalRequired):
        staff_refund(
            account, SuperAdminFactory(), stripe_refund=True, payment_intent_id="pi_bought"
        )
    assert stripe_api.requests == []
    assert CreditTransaction.objects.count() == entries


def test_a_staff_refund_without_stripe_only_touches_the_ledger(account, purchase, stripe_api):
    # when
    entry = staff_refund(account, SuperAdminFactory())
    # then
    assert stripe_api.requests == []
    assert "stripe_refund_id" not in entry.metadata
    assert entry.amount == Decimal("-40.00")


def test_the_admin_refund_action_refunds_through_stripe(account, purchase, stripe_api):
    # given
    client = Client()
    client.force_login(SuperAdminFactory())
    url = reverse("admin:credits_creditaccount_changelist")
    form = {"action": "refund_credits", ACTION_CHECKBOX_NAME: [account.pk], "index": 0}
    key = str(uuid.uuid4())
    # when
    response = client.post(
        url,
        {
            **form,
            "apply": "1",
            "amount": "25.00",
            "reason": "Duplicate purchase",
            "submission_key": key,
            "stripe_refund": "on",
            "payment_intent_id": "pi_bought",
        },
    )
    # then
    assert response.status_code == 302
    entry = CreditTransaction.objects.get(account=account, kind=EntryKind.REFUND)
    assert entry.metadata["stripe_refund_id"] == "re_test_1"
    assert entry.reason == "Duplicate purchase"
    assert stripe_api.requests[0][1]["amount"] == "250"


def test_the_admin_refund_form_needs_the_payment_intent_for_stripe(account, purchase, stripe_api):
    # given
    client = Client()
    client.force_login(SuperAdminFactory())
    entries = CreditTransaction.objects.count()
    # when
    response = client.post(
        reverse("admin:credits_creditaccount_changelist"),
        {
            "action": "refund_credits",
            ACTION_CHECKBOX_NAME: [account.pk],
            "index": 0,
            "apply": "1",
            "amount": "25.00",
            "reason": "Duplicate purchase",
            "submission_key": str(uuid.uuid4()),
            "stripe_refund": "on",
        },
    )
    # then
    assert response.status_code == 200
    assert "A Stripe refund needs the payment intent." in response.content.decode()
    assert stripe_api.requests == []
    assert CreditTransaction.objects.count() == entries


def test_a_key_the_ledger_would_refuse_is_refused_before_stripe(
    account, purchase, stripe_http, staff_user
):
    from credits.exceptions import InvalidAmount

    before = (CreditTransaction.objects.count(), CreditAccount.objects.get(pk=account.pk).balance)
    with pytest.raises(InvalidAmount):
        refund(account, staff_user, key="k" * 201)
    assert stripe_http.call_count == 0
    assert (
        CreditTransaction.objects.count(),
        CreditAccount.objects.get(pk=account.pk).balance,
    ) == before


def test_a_subscription_event_writes_only_the_subscription_fields(buyer, stripe_offline):
    from django.utils import timezone

    from billing.stripe.services import stripe_subscription_changed, subscriptions
    from tests.factories import PlanPriceFactory

    price = PlanPriceFactory(plan="pro")
    profile = UserProfile.objects.get(user=buyer)
    profile.stripe_customer_id = "cus_buyer"
    profile.save(update_fields=["stripe_customer_id"])
    marked = timezone.now()
    real_profile_for = subscriptions.profile_for

    def profile_then_migrated(event):
        found = real_profile_for(event)
        # the migration marks the user migrated after the webhook read the profile
        UserProfile.objects.filter(pk=found.pk).update(migration_completed_at=marked)
        return found

    with mock.patch.object(subscriptions, "profile_for", profile_then_migrated):
        stripe_subscription_changed(
            event_id="evt_sub",
            event_type="customer.subscription.updated",
            payload=stripe_events.subscription(
                customer="cus_buyer", price_id=price.stripe_price_id, status="active"
            ),
        )
    profile.refresh_from_db()
    assert profile.plan == "pro"
    assert profile.migration_completed_at == marked


def _refunder(user=None):
    """A staff member who may refund, without `credits.adjust_unlimited` (so daily-limited)."""
    from django.contrib.auth.models import Permission

    user = user or StaffUserFactory()
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    user.user_permissions.add(
        Permission.objects.get(codename="refund_credits", content_type__app_label="credits")
    )
    return type(user).objects.get(pk=user.pk)  # a fresh instance: no cached permissions


def test_a_stripe_refund_of_ones_own_account_is_refused_before_stripe(
    account, purchase, stripe_api
):
    # given: the staff member is the buyer
    actor = _refunder(account.user)
    entries = CreditTransaction.objects.count()
    # when / then
    with pytest.raises(OwnAccount):
        staff_refund(account, actor, stripe_refund=True, payment_intent_id="pi_bought")
    assert stripe_api.requests == []
    assert CreditTransaction.objects.count() == entries


def test_a_stripe_refund_past_the_daily_limit_is_refused_before_stripe(
    account, purchase, stripe_api, settings
):
    # given: 30 credits a day, 40 asked
    settings.CREDITS_ADMIN_DAILY_LIMIT = Decimal("30.00")
    actor = _refunder()
    entries = CreditTransaction.objects.count()
    # when / then
    with pytest.raises(OverDailyLimit):
        staff_refund(account, actor, stripe_refund=True, payment_intent_id="pi_bought")
    assert stripe_api.requests == []
    assert CreditTransaction.objects.count() == entries
    account.refresh_from_db()
    assert account.balance == Decimal("100.00")
