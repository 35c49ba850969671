"""Stripe API objects as the fake server serves them, API version 2024-06-20 (the project's
pinned `STRIPE_API_VERSION`), written from Stripe's API reference for that version.

Each builder returns the object's JSON as Stripe answers a GET of it. Fields dj-stripe's sync
reads are filled in with Stripe's names and types; others are left out, as Stripe allows for
fields added after the version. A discount's coupon is `discount.coupon` in this version (it
moved to `discount.source.coupon` in 2025-09-30 and later, which dj-stripe 2.11 cannot read).
"""

import time

from tests.billing.stripe_events import new_id

API_VERSION = "2024-06-20"


def account(account_id: str = "acct_test_platform") -> dict:
    # API 2024-06-20: Account
    return {
        "id": account_id,
        "object": "account",
        "business_profile": {"name": "Credits test", "support_email": None, "url": None},
        "business_type": None,
        "charges_enabled": True,
        "country": "US",
        "created": 1_700_000_000,
        "default_currency": "usd",
        "details_submitted": True,
        "email": "platform@example.com",
        "metadata": {},
        "payouts_enabled": True,
        "settings": {"branding": {"icon": None, "logo": None}, "dashboard": {"display_name": "x"}},
        "type": "standard",
    }


def coupon(coupon_id: str = "SPRING25") -> dict:
    # API 2024-06-20: Coupon
    return {
        "id": coupon_id,
        "object": "coupon",
        "amount_off": None,
        "created": 1_700_000_000,
        "currency": None,
        "duration": "forever",
        "duration_in_months": None,
        "livemode": False,
        "max_redemptions": None,
        "metadata": {},
        "name": "Spring 25%",
        "percent_off": 25.0,
        "redeem_by": None,
        "times_redeemed": 1,
        "valid": True,
    }


def customer(
    customer_id: str = "cus_buyer", *, email: str = "buyer@example.com", with_coupon: bool = False
) -> dict:
    # API 2024-06-20: Customer; `discount.coupon` is the coupon object itself.
    discount = None
    if with_coupon:
        discount = {
            "id": "di_" + customer_id,
            "object": "discount",
            "checkout_session": None,
            "coupon": coupon(),
            "customer": customer_id,
            "end": None,
            "invoice": None,
            "invoice_item": None,
            "promotion_code": None,
            "start": 1_700_000_000,
            "subscription": None,
            "subscription_item": None,
        }
    return {
        "id": customer_id,
        "object": "customer",
        "address": None,
        "balance": 0,
        "created": 1_700_000_000,
        "currency": "usd",
        "default_source": None,
        "delinquent": False,
        "description": None,
        "discount": discount,
        "email": email,
        "invoice_prefix": "ABC123",
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": {},
        "name": "Buyer",
        "phone": None,
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": None,
    }


def payment_intent(
    payment_intent_id: str, *, amount: int, customer: str | None = "cus_buyer"
) -> dict:
    # API 2024-06-20: PaymentIntent (latest_charge, not charges)
    return {
        "id": payment_intent_id,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_received": amount,
        "capture_method": "automatic",
        "client_secret": f"{payment_intent_id}_secret_x",
        "confirmation_method": "automatic",
        "created": 1_700_000_000,
        "currency": "usd",
        "customer": customer,
        "description": None,
        "last_payment_error": None,
        "latest_charge": None,
        "livemode": False,
        "metadata": {},
        "payment_method": None,
        "payment_method_types": ["card"],
        "receipt_email": None,
        "setup_future_usage": None,
        "shipping": None,
        "statement_descriptor": None,
        "status": "succeeded",
    }


def refund(*, payment_intent: str | None, amount: int) -> dict:
    # API 2024-06-20: Refund
    return {
        "id": new_id("re"),
        "object": "refund",
        "amount": amount,
        "charge": None,
        "created": int(time.time()),
        "currency": "usd",
        "metadata": {},
        "payment_intent": payment_intent,
        "reason": "requested_by_customer",
        "status": "succeeded",
    }


def checkout_session_created(form: dict) -> dict:
    # API 2024-06-20: Checkout Session as POST /v1/checkout/sessions answers it
    session_id = new_id("cs_test")
    return {
        "id": session_id,
        "object": "checkout.session",
        "amount_subtotal": None,
        "amount_total": None,
        "cancel_url": form.get("cancel_url"),
        "client_reference_id": form.get("client_reference_id"),
        "created": int(time.time()),
        "currency": None,
        "customer": form.get("customer"),
        "customer_email": form.get("customer_email"),
        "expires_at": int(time.time()) + 86_400,
        "livemode": False,
        "metadata": {k[9:-1]: v for k, v in form.items() if k.startswith("metadata[")},
        "mode": form.get("mode"),
        "payment_intent": None,
        "payment_status": "unpaid",
        "status": "open",
        "success_url": form.get("success_url"),
        "url": f"https://checkout.stripe.com/c/pay/{session_id}",
    }
