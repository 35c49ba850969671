"""Stripe event payloads in API version 2026-08-26.dahlia, the newest one (stripe-python 15 pins
it), as Stripe sends them to an endpoint whose API version is not the one the project pins.

Stripe renders a webhook's `data.object` in the endpoint's API version (the account's default
when the endpoint has none), while dj-stripe re-fetches the objects it stores in
`STRIPE_API_VERSION` (2024-06-20, tests.billing.stripe_api_objects). Our receivers read the
payload, so these are the shapes they must read. Written from Stripe's API reference and
changelog, and from stripe-python 15's resource definitions (generated from Stripe's OpenAPI
spec for this version):

- 2025-03-31.basil: an invoice's subscription is under `parent.subscription_details` (no
  top-level `subscription`, `subscription_details`), its payments under `payments` (no `paid`,
  `charge`, `payment_intent`); an invoice line's price under `pricing.price_details`, its
  subscription item under `parent.subscription_item_details` (no `type`, `price`, `plan`,
  `proration`); a subscription's billing period is on each item (`items.data[]
  .current_period_start/end`), not on the subscription; the singular `discount` and `coupon`
  fields of subscriptions and customers' requests gave way to `discounts`.
- 2025-09-30.clover: a discount's coupon is `discount.source.coupon`, an id, not expanded (no
  `discount.coupon`); subscriptions default to `billing_mode.type = "flexible"`.
- 2026-03-25.dahlia: Checkout's `ui_mode` values renamed (`hosted` is `hosted_page`); the SDKs
  read decimal fields as decimals (still strings in the JSON).

Only the fields a receiver or dj-stripe reads, and those the changes above touch, are filled in.
"""

from tests.billing.stripe_events import PERIOD_END, PERIOD_START, new_id

API_VERSION = "2026-08-26.dahlia"


def event(event_type: str, obj: dict, *, created: int = PERIOD_START) -> dict:
    # API 2026-08-26.dahlia: Event (a "snapshot" event: the object as it was, in full)
    return {
        "id": new_id("evt"),
        "object": "event",
        "api_version": API_VERSION,
        "context": None,
        "created": created,
        "data": {"object": obj, "previous_attributes": {}},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": new_id("req"), "idempotency_key": new_id("idem")},
        "type": event_type,
    }


def discount(*, customer: str, coupon_id: str = "SPRING25") -> dict:
    # API 2025-09-30.clover and later: Discount; the coupon is `source.coupon`, an id.
    return {
        "id": "di_" + customer,
        "object": "discount",
        "checkout_session": None,
        "customer": customer,
        "customer_account": None,
        "end": None,
        "invoice": None,
        "invoice_item": None,
        "promotion_code": None,
        "source": {"type": "coupon", "coupon": coupon_id},
        "start": 1_700_000_000,
        "subscription": None,
        "subscription_item": None,
    }


def customer(customer_id: str, *, email: str, with_coupon: bool = False) -> dict:
    # API 2026-08-26.dahlia: Customer
    return {
        "id": customer_id,
        "object": "customer",
        "address": None,
        "balance": 0,
        "business_name": None,
        "created": 1_700_000_000,
        "currency": "usd",
        "customer_account": None,
        "default_source": None,
        "delinquent": False,
        "description": None,
        "discount": discount(customer=customer_id) if with_coupon else None,
        "email": email,
        "individual_name": None,
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


def checkout_session(
    session_id: str,
    *,
    price_id: str,
    amount_total: int,
    payment_intent: str | None,
    customer: str | None,
    email: str,
    payment_status: str = "paid",
    status: str = "complete",
) -> dict:
    # API 2026-08-26.dahlia: Checkout Session in payment mode. A customer's own discount does
    # not apply to a payment-mode session: `discounts` is what the session itself was given.
    return {
        "id": session_id,
        "object": "checkout.session",
        "adaptive_pricing": {"enabled": False},
        "amount_subtotal": amount_total,
        "amount_total": amount_total,
        "client_reference_id": None,
        "collected_information": None,
        "created": PERIOD_START,
        "currency": "usd",
        "customer": customer,
        "customer_account": None,
        "customer_details": {
            "address": None,
            "business_name": None,
            "email": email,
            "individual_name": None,
            "name": "Buyer",
            "phone": None,
            "tax_exempt": "none",
            "tax_ids": [],
        },
        "customer_email": None,
        "discounts": [],
        "expires_at": PERIOD_START + 86_400,
        "invoice": None,
        "livemode": False,
        "metadata": {"price_id": price_id},
        "mode": "payment",
        "payment_intent": payment_intent,
        "payment_method_types": ["card"],
        "payment_status": payment_status,
        "presentment_details": None,
        "status": status,
        "subscription": None,
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": "hosted_page",
        "url": None,
    }


def subscription(
    subscription_id: str,
    *,
    price_id: str,
    customer: str,
    status: str = "active",
    current_period_start: int = PERIOD_START,
    current_period_end: int = PERIOD_END,
    ended_at: int | None = None,
) -> dict:
    # API 2025-03-31.basil and later: Subscription; the period is on each item only.
    return {
        "id": subscription_id,
        "object": "subscription",
        "billing_cycle_anchor": current_period_start,
        "billing_mode": {"flexible": None, "type": "flexible", "updated_at": None},
        "cancel_at": None,
        "cancel_at_period_end": False,
        "canceled_at": ended_at,
        "collection_method": "charge_automatically",
        "created": current_period_start,
        "currency": "usd",
        "customer": customer,
        "customer_account": None,
        "discounts": [],
        "ended_at": ended_at,
        "items": {
            "object": "list",
            "data": [
                {
                    "id": "si_" + subscription_id,
                    "object": "subscription_item",
                    "created": current_period_start,
                    "current_period_end": current_period_end,
                    "current_period_start": current_period_start,
                    "discounts": [],
                    "metadata": {},
                    "price": {"id": price_id, "object": "price", "type": "recurring"},
                    "quantity": 1,
                    "subscription": subscription_id,
                    "tax_rates": [],
                }
            ],
            "has_more": False,
            "url": f"/v1/subscription_items?subscription={subscription_id}",
        },
        "latest_invoice": None,
        "livemode": False,
        "metadata": {},
        "start_date": current_period_start,
        "status": status,
        "test_clock": None,
    }


def invoice(
    invoice_id: str,
    *,
    price_id: str,
    subscription: str,
    customer: str,
    email: str,
    payment_intent: str,
    amount_paid: int = 2900,
    period_start: int = PERIOD_START,
    period_end: int = PERIOD_END,
) -> dict:
    # API 2025-03-31.basil and later: Invoice; `parent` names the subscription, `payments`
    # the payment intent; each line's price is under `pricing.price_details`.
    return {
        "id": invoice_id,
        "object": "invoice",
        "amount_due": amount_paid,
        "amount_overpaid": 0,
        "amount_paid": amount_paid,
        "amount_remaining": 0,
        "billing_reason": "subscription_cycle",
        "collection_method": "charge_automatically",
        "created": period_start,
        "currency": "usd",
        "customer": customer,
        "customer_account": None,
        "customer_email": email,
        "discounts": [],
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
                    "parent": {
                        "type": "subscription_item_details",
                        "invoice_item_details": None,
                        "subscription_item_details": {
                            "invoice_item": None,
                            "proration": False,
                            "proration_details": {"credited_items": None},
                            "subscription": subscription,
                            "subscription_item": "si_" + subscription,
                        },
                    },
                    "period": {"start": period_start, "end": period_end},
                    "pretax_credit_amounts": [],
                    "pricing": {
                        "type": "price_details",
                        "price_details": {"price": price_id, "product": "prod_pro"},
                        "unit_amount_decimal": str(amount_paid),
                    },
                    "quantity": 1,
                    "subscription": subscription,
                    "subtotal": amount_paid,
                    "taxes": [],
                }
            ],
            "has_more": False,
            "url": f"/v1/invoices/{invoice_id}/lines",
        },
        "livemode": False,
        "metadata": {},
        "number": "ABC123-0001",
        "parent": {
            "type": "subscription_details",
            "quote_details": None,
            "subscription_details": {
                "metadata": {},
                "subscription": subscription,
                "subscription_proration_date": None,
            },
        },
        "payments": {
            "object": "list",
            "data": [
                {
                    "id": new_id("inpay"),
                    "object": "invoice_payment",
                    "amount_paid": amount_paid,
                    "amount_requested": amount_paid,
                    "created": period_start,
                    "currency": "usd",
                    "invoice": invoice_id,
                    "is_default": True,
                    "livemode": False,
                    "payment": {"type": "payment_intent", "payment_intent": payment_intent},
                    "status": "paid",
                    "status_transitions": {"canceled_at": None, "paid_at": period_start},
                }
            ],
            "has_more": False,
            "url": f"/v1/invoice_payments?invoice={invoice_id}",
        },
        "period_end": period_end,
        "period_start": period_start,
        "status": "paid",
        "status_transitions": {
            "finalized_at": period_start,
            "marked_uncollectible_at": None,
            "paid_at": period_start,
            "voided_at": None,
        },
        "subtotal": amount_paid,
        "total": amount_paid,
        "total_discount_amounts": [],
        "total_pretax_credit_amounts": [],
        "total_taxes": [],
    }


def charge(
    charge_id: str,
    *,
    payment_intent: str,
    amount: int,
    amount_refunded: int,
    customer: str | None,
    email: str | None,
) -> dict:
    # API 2026-08-26.dahlia: Charge (no `invoice` since basil; `refunds` only when expanded)
    return {
        "id": charge_id,
        "object": "charge",
        "amount": amount,
        "amount_captured": amount,
        "amount_refunded": amount_refunded,
        "billing_details": {
            "address": None,
            "email": email,
            "name": None,
            "phone": None,
            "tax_id": None,
        },
        "captured": True,
        "created": PERIOD_START,
        "currency": "usd",
        "customer": customer,
        "disputed": False,
        "livemode": False,
        "metadata": {},
        "paid": True,
        "payment_intent": payment_intent,
        "presentment_details": None,
        "receipt_email": None,
        "refunded": amount_refunded == amount,
        "status": "succeeded",
    }


def dispute(dispute_id: str, *, charge: str, payment_intent: str, amount: int) -> dict:
    # API 2026-08-26.dahlia: Dispute
    return {
        "id": dispute_id,
        "object": "dispute",
        "amount": amount,
        "balance_transactions": [],
        "charge": charge,
        "created": PERIOD_START,
        "currency": "usd",
        "enhanced_eligibility_types": [],
        "evidence": {},
        "evidence_details": {
            "due_by": PERIOD_START + 864_000,
            "enhanced_eligibility": {},
            "has_evidence": False,
            "past_due": False,
            "submission_count": 0,
        },
        "is_charge_refundable": False,
        "livemode": False,
        "metadata": {},
        "network_reason_code": "10.4",
        "payment_intent": payment_intent,
        "payment_method_details": {
            "card": {"brand": "visa", "case_type": "chargeback", "network_reason_code": "10.4"},
            "type": "card",
        },
        "reason": "fraudulent",
        "status": "needs_response",
    }
