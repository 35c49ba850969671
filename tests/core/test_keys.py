"""The idempotency keys, byte for byte as ledgers already hold them, and the room they have."""

import uuid
from decimal import Decimal

import pytest

from billing.staff_api import StaffWriteInputSerializer
from billing.stripe.checkout import CheckoutInputSerializer
from core import keys
from credits.api.serializers import SpendInputSerializer
from credits.exceptions import InvalidAmount
from credits.models import CreditApprovalRequest, CreditTransaction
from credits.services import credit_account_open, credit_grant
from tests.factories import UserFactory

SUBMISSION = uuid.UUID("12345678-1234-5678-1234-567812345678")
LARGEST_ID = 2**63 - 1


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (keys.api_idempotency_key(user_id=7, client_key="order-1"), "api:7:order-1"),
        (
            keys.admin_idempotency_key(kind="grant", submission_key=SUBMISSION, account_id=3),
            "admin:grant:12345678-1234-5678-1234-567812345678:3",
        ),
        (keys.approval_entry_key(approval_id=11), "approval:11"),
        (
            keys.staff_idempotency_key(actor_id=5, action="adjust", client_key="k-1"),
            "staff-api:5:adjust:k-1",
        ),
        (keys.signup_grant_key(user_id=9), "signup:9"),
        (keys.monthly_grant_key(account_id=4, period="2026-11"), "monthly_grant:4:2026-11"),
        (keys.stripe_event_key(event_id="evt_1"), "stripe:evt_1"),
        (keys.stripe_payment_key(payment_ref="pi_1"), "stripe-payment:pi_1"),
        (keys.stripe_dispute_key(dispute_id="dp_1"), "stripe-dispute:dp_1"),
        (
            keys.stripe_refund_key(payment_intent_id="pi_1", amount_refunded=1500),
            "stripe-refund:pi_1:1500",
        ),
        (
            keys.stripe_checkout_key(user_id=2, client_key="buy-1"),
            "credits-checkout:2:buy-1",
        ),
        (keys.stripe_idempotency_key(ledger_key="refund:1"), "credits-refund:refund:1"),
        (
            keys.migration_key(source="usd_balance", user_id=8, generation=1),
            "migration:usd_balance:8:1",
        ),
        (keys.history_key(legacy_id="tx-42"), "history:tx-42"),
        (
            keys.rollback_key(entry_key="migration:usd_balance:8:1"),
            "rollback:migration:usd_balance:8:1",
        ),
        (keys.demo_spend_key(user_id=6, index=0), "demo:6:0"),
    ],
)
def test_each_key_is_spelled_as_the_ledger_holds_it(key, expected):
    assert key == expected


def test_the_budget_is_the_ledger_columns_length():
    for model in (CreditTransaction, CreditApprovalRequest):
        field = model._meta.get_field("idempotency_key")
        assert field.max_length == keys.IDEMPOTENCY_KEY_MAX_LENGTH
    assert len(str(LARGEST_ID)) == keys.MAX_ID_DIGITS


def test_the_longest_client_keys_fit_the_ledger():
    # given: the largest ids and the longest key each door lets a client send
    api = keys.api_idempotency_key(
        user_id=LARGEST_ID, client_key="k" * keys.API_CLIENT_KEY_MAX_LENGTH
    )
    staff = keys.staff_idempotency_key(
        actor_id=LARGEST_ID,
        action="refund",
        client_key="k" * keys.STAFF_CLIENT_KEY_MAX_LENGTH,
    )
    admin = keys.admin_idempotency_key(
        kind="adjust", submission_key=SUBMISSION, account_id=LARGEST_ID
    )
    # then
    for key in (api, staff, admin, keys.approval_entry_key(approval_id=LARGEST_ID)):
        assert len(key) <= keys.IDEMPOTENCY_KEY_MAX_LENGTH
    for key in (
        keys.signup_grant_key(user_id=LARGEST_ID),
        keys.monthly_grant_key(account_id=LARGEST_ID, period="2026-11"),
        keys.demo_spend_key(user_id=LARGEST_ID, index=LARGEST_ID),
    ):
        assert len(key) <= keys.IDEMPOTENCY_KEY_MAX_LENGTH


def test_the_keys_sent_to_stripe_fit_stripes_limit():
    checkout = keys.stripe_checkout_key(
        user_id=LARGEST_ID, client_key="k" * keys.CHECKOUT_CLIENT_KEY_MAX_LENGTH
    )
    refund = keys.stripe_idempotency_key(ledger_key="k" * keys.IDEMPOTENCY_KEY_MAX_LENGTH)
    assert len(checkout) <= keys.STRIPE_IDEMPOTENCY_KEY_MAX_LENGTH
    assert len(refund) <= keys.STRIPE_IDEMPOTENCY_KEY_MAX_LENGTH


def test_the_api_doors_hold_clients_to_their_budget():
    doors = {
        SpendInputSerializer: keys.API_CLIENT_KEY_MAX_LENGTH,
        StaffWriteInputSerializer: keys.STAFF_CLIENT_KEY_MAX_LENGTH,
        CheckoutInputSerializer: keys.CHECKOUT_CLIENT_KEY_MAX_LENGTH,
    }
    for serializer, budget in doors.items():
        assert serializer().fields["idempotency_key"].max_length == budget


def test_a_key_over_the_budget_is_refused_by_the_ledger(db):
    # given
    account = credit_account_open(user=UserFactory())
    too_long = keys.history_key(legacy_id="x" * keys.IDEMPOTENCY_KEY_MAX_LENGTH)
    # when / then
    with pytest.raises(InvalidAmount):
        credit_grant(
            account=account, amount=Decimal("1.00"), idempotency_key=too_long, reason="test"
        )
    assert account.entries.count() == 0
