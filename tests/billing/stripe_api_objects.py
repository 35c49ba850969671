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


def product(product_id: str = "prod_pro") -> dict:
    # API 2024-06-20: Product
    return {
        "id": product_id,
        "object": "product",
        "active": True,
        "created": 1_700_000_000,
        "default_price": None,
        "description": None,
        "images": [],
        "livemode": False,
        "metadata": {},
        "name": "Pro",
        "package_dimensions": None,
        "shippable": None,
        "statement_descriptor": None,
        "type": "service",
        "unit_label": None,
        "updated": 1_700_000_000,
        "url": None,
    }


def price(price_id: str, *, product_id: str = "prod_pro", unit_amount: int = 2900) -> dict:
    # API 2024-06-20: Price (recurring, monthly); `product` is an id unless expanded
    return {
        "id": price_id,
        "object": "price",
        "active": True,
        "billing_scheme": "per_unit",
        "created": 1_700_000_000,
        "currency": "usd",
        "custom_unit_amount": None,
        "livemode": False,
        "lookup_key": None,
        "metadata": {},
        "nickname": None,
        "product": product_id,
        "recurring": {
            "aggregate_usage": None,
            "interval": "month",
            "interval_count": 1,
            "meter": None,
            "trial_period_days": None,
            "usage_type": "licensed",
        },
        "tax_behavior": "unspecified",
        "tiers_mode": None,
        "transform_quantity": None,
        "type": "recurring",
        "unit_amount": unit_amount,
        "unit_amount_decimal": str(unit_amount),
    }


def subscription(
    subscription_id: str,
    *,
    price_id: str,
    customer: str = "cus_subscriber",
    status: str = "active",
    current_period_start: int,
    current_period_end: int,
    ended_at: int | None = None,
) -> dict:
    # API 2024-06-20: Subscription; the period is on the subscription (it moved to the items
    # in 2025-03-31), `items.data[].price` is the price object.
    return {
        "id": subscription_id,
        "object": "subscription",
        "application_fee_percent": None,
        "billing_cycle_anchor": current_period_start,
        "cancel_at": None,
        "cancel_at_period_end": False,
        "canceled_at": ended_at,
        "collection_method": "charge_automatically",
        "created": current_period_start,
        "currency": "usd",
        "current_period_end": current_period_end,
        "current_period_start": current_period_start,
        "customer": customer,
        "days_until_due": None,
        "default_payment_method": None,
        "default_source": None,
        "default_tax_rates": [],
        "description": None,
        "discount": None,
        "discounts": [],
        "ended_at": ended_at,
        "items": {
            "object": "list",
            "data": [
                {
                    "id": "si_" + subscription_id,
                    "object": "subscription_item",
                    "created": current_period_start,
                    "metadata": {},
                    "price": price(price_id),
                    "quantity": 1,
                    "subscription": subscription_id,
                    "tax_rates": [],
                }
            ],
            "has_more": False,
            "total_count": 1,
            "url": f"/v1/subscription_items?subscription={subscription_id}",
        },
        "latest_invoice": None,
        "livemode": False,
        "metadata": {},
        "pending_setup_intent": None,
        "pending_update": None,
        "schedule": None,
        "start_date": current_period_start,
        "status": status,
        "test_clock": None,
        "trial_end": None,
        "trial_start": None,
    }


def invoice(
    invoice_id: str,
    *,
    price_id: str,
    subscription: str,
    customer: str = "cus_subscriber",
    email: str = "subscriber@example.com",
    amount_paid: int = 2900,
    period_start: int,
    period_end: int,
) -> dict:
    # API 2024-06-20: Invoice; `subscription` and `paid` at the top level (both moved in
    # 2025-03-31), each line's `price` is the price object.
    return {
        "id": invoice_id,
        "object": "invoice",
        "account_country": "US",
        "account_name": "Credits test",
        "amount_due": amount_paid,
        "amount_paid": amount_paid,
        "amount_remaining": 0,
        "attempt_count": 1,
        "attempted": True,
        "auto_advance": False,
        "billing_reason": "subscription_cycle",
        "charge": None,
        "collection_method": "charge_automatically",
        "created": period_start,
        "currency": "usd",
        "customer": customer,
        "customer_email": email,
        "default_payment_method": None,
        "default_source": None,
        "description": None,
        "discount": None,
        "discounts": [],
        "due_date": None,
        "ending_balance": 0,
        "hosted_invoice_url": None,
        "invoice_pdf": None,
        "lines": {
            "object": "list",
            "data": [
                {
                    "id": "il_" + invoice_id,
                    "object": "line_item",
                    "amount": amount_paid,
                    "currency": "usd",
                    "description": "1 x Pro",
                    "discount_amounts": [],
                    "discountable": True,
                    "discounts": [],
                    "invoice": invoice_id,
                    "livemode": False,
                    "metadata": {},
                    "period": {"start": period_start, "end": period_end},
                    "price": price(price_id),
                    "proration": False,
                    "quantity": 1,
                    "subscription": subscription,
                    "subscription_item": "si_" + subscription,
                    "tax_amounts": [],
                    "tax_rates": [],
                    "type": "subscription",
                }
            ],
            "has_more": False,
            "total_count": 1,
            "url": f"/v1/invoices/{invoice_id}/lines",
        },
        "livemode": False,
        "metadata": {},
        "next_payment_attempt": None,
        "number": "ABC123-0001",
        "paid": True,
        "payment_intent": None,
        "period_end": period_end,
        "period_start": period_start,
        "receipt_number": None,
        "starting_balance": 0,
        "statement_descriptor": None,
        "status": "paid",
        "status_transitions": {
            "finalized_at": period_start,
            "marked_uncollectible_at": None,
            "paid_at": period_start,
            "voided_at": None,
        },
        "subscription": subscription,
        "subtotal": amount_paid,
        "tax": None,
        "total": amount_paid,
        "total_discount_amounts": [],
        "total_tax_amounts": [],
        "webhooks_delivered_at": period_start,
    }


def charge(
    charge_id: str,
    *,
    payment_intent: str,
    amount: int,
    amount_refunded: int,
    customer: str | None = "cus_buyer",
    email: str | None = "buyer@example.com",
) -> dict:
    # API 2024-06-20: Charge; `refunds` is not included unless expanded (since 2022-11-15).
    return {
        "id": charge_id,
        "object": "charge",
        "amount": amount,
        "amount_captured": amount,
        "amount_refunded": amount_refunded,
        "application_fee_amount": None,
        "balance_transaction": None,
        "billing_details": {"address": None, "email": email, "name": None, "phone": None},
        "calculated_statement_descriptor": "CREDITS",
        "captured": True,
        "created": 1_700_000_000,
        "currency": "usd",
        "customer": customer,
        "description": None,
        "disputed": False,
        "failure_code": None,
        "failure_message": None,
        "fraud_details": {},
        "invoice": None,
        "livemode": False,
        "metadata": {},
        "outcome": {"network_status": "approved_by_network", "type": "authorized"},
        "paid": True,
        "payment_intent": payment_intent,
        "payment_method": None,
        "payment_method_details": {"type": "card"},
        "receipt_email": None,
        "receipt_url": None,
        "refunded": amount_refunded == amount,
        "shipping": None,
        "source": None,
        "statement_descriptor": None,
        "status": "succeeded",
        "transfer_group": None,
    }


def dispute(dispute_id: str, *, charge: str, payment_intent: str, amount: int) -> dict:
    # API 2024-06-20: Dispute
    return {
        "id": dispute_id,
        "object": "dispute",
        "amount": amount,
        "balance_transactions": [],
        "charge": charge,
        "created": 1_700_000_000,
        "currency": "usd",
        "evidence": {},
        "evidence_details": {
            "due_by": 1_700_864_000,
            "has_evidence": False,
            "past_due": False,
            "submission_count": 0,
        },
        "is_charge_refundable": False,
        "livemode": False,
        "metadata": {},
        "payment_intent": payment_intent,
        "reason": "fraudulent",
        "status": "needs_response",
    }
