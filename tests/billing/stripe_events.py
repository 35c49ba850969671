"""Real-shaped Stripe event payloads (API version 2024-06-20), and their signatures.

Only the fields the receivers and dj-stripe read are filled in, with Stripe's names and types.
"""

import hashlib
import hmac
import json
import time
import uuid

API_VERSION = "2024-06-20"
PERIOD_START = 1_764_547_200  # 2025-12-01T00:00:00Z
PERIOD_END = 1_767_225_600  # 2026-01-01T00:00:00Z


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


def event(
    event_type: str,
    obj: dict,
    *,
    event_id: str | None = None,
    created: int = PERIOD_START,
    livemode: bool = False,
) -> dict:
    return {
        "id": event_id or new_id("evt"),
        "object": "event",
        "api_version": API_VERSION,
        "created": created,
        "data": {"object": obj},
        "livemode": livemode,
        "pending_webhooks": 1,
        "request": {"id": new_id("req"), "idempotency_key": str(uuid.uuid4())},
        "type": event_type,
    }


def checkout_session(
    *,
    price_id: str,
    amount_total: int,
    customer: str | None = "cus_buyer",
    email: str = "buyer@example.com",
    currency: str = "usd",
    payment_intent: str | None = None,
    mode: str = "payment",
    payment_status: str = "paid",
) -> dict:
    return {
        "id": new_id("cs_test"),
        "object": "checkout.session",
        "amount_subtotal": amount_total,
        "amount_total": amount_total,
        "client_reference_id": None,
        "currency": currency,
        "customer": customer,
        "customer_details": {"email": email, "name": "Buyer", "tax_exempt": "none"},
        "customer_email": None,
        "livemode": False,
        "metadata": {"price_id": price_id},
        "mode": mode,
        "payment_intent": payment_intent or new_id("pi"),
        "payment_status": payment_status,
        "status": "complete",
        "subscription": None,
    }


def invoice(
    *,
    price_id: str,
    customer: str = "cus_subscriber",
    email: str = "subscriber@example.com",
    subscription: str = "sub_1",
    amount_paid: int = 2900,
    period_start: int = PERIOD_START,
    period_end: int = PERIOD_END,
) -> dict:
    return {
        "id": new_id("in"),
        "object": "invoice",
        "amount_due": amount_paid,
        "amount_paid": amount_paid,
        "billing_reason": "subscription_cycle",
        "currency": "usd",
        "customer": customer,
        "customer_email": email,
        "livemode": False,
        "paid": True,
        "status": "paid",
        "subscription": subscription,
        "period_start": period_start,
        "period_end": period_end,
        "lines": {
            "object": "list",
            "data": [
                {
                    "id": new_id("il"),
                    "object": "line_item",
                    "amount": amount_paid,
                    "currency": "usd",
                    "period": {"start": period_start, "end": period_end},
                    "price": {"id": price_id, "object": "price", "type": "recurring"},
                    "quantity": 1,
                    "subscription": subscription,
                    "type": "subscription",
                }
            ],
            "has_more": False,
        },
    }


def subscription(
    *,
    price_id: str,
    status: str = "active",
    customer: str = "cus_subscriber",
    subscription_id: str = "sub_1",
    start_date: int = PERIOD_START,
    current_period_end: int = PERIOD_END,
    ended_at: int | None = None,
) -> dict:
    return {
        "id": subscription_id,
        "object": "subscription",
        "customer": customer,
        "status": status,
        "start_date": start_date,
        "current_period_start": start_date,
        "current_period_end": current_period_end,
        "cancel_at_period_end": False,
        "canceled_at": ended_at,
        "ended_at": ended_at,
        "livemode": False,
        "items": {
            "object": "list",
            "data": [
                {
                    "id": new_id("si"),
                    "object": "subscription_item",
                    "price": {"id": price_id, "object": "price", "type": "recurring"},
                    "quantity": 1,
                }
            ],
        },
    }


def charge(
    *,
    payment_intent: str,
    amount: int,
    amount_refunded: int,
    customer: str | None = "cus_buyer",
    email: str = "buyer@example.com",
) -> dict:
    return {
        "id": new_id("ch"),
        "object": "charge",
        "amount": amount,
        "amount_captured": amount,
        "amount_refunded": amount_refunded,
        "billing_details": {"email": email},
        "currency": "usd",
        "customer": customer,
        "livemode": False,
        "paid": True,
        "payment_intent": payment_intent,
        "refunded": amount_refunded == amount,
        "status": "succeeded",
    }


def body_of(payload: dict) -> bytes:
    return json.dumps(payload).encode()


def signature(body: bytes, secret: str, *, timestamp: int | None = None) -> str:
    """The Stripe-Signature header: HMAC-SHA256 of "<timestamp>.<body>" with the secret."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def dispute(*, payment_intent: str, amount: int, charge: str | None = None) -> dict:
    # API 2024-06-20: Dispute
    return {
        "id": new_id("dp"),
        "object": "dispute",
        "amount": amount,
        "charge": charge or new_id("ch"),
        "created": PERIOD_START,
        "currency": "usd",
        "is_charge_refundable": False,
        "livemode": False,
        "metadata": {},
        "payment_intent": payment_intent,
        "reason": "fraudulent",
        "status": "needs_response",
    }
