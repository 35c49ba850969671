"""Domain errors of billing. Each has a stable `code`, like the ledger's (credits.exceptions)."""

from enum import StrEnum

from core.exceptions import DomainError


class BillingErrorCode(StrEnum):
    PAYMENT_NOT_FOUND = "payment_not_found"
    REFUND_EXCEEDS_PURCHASE = "refund_exceeds_purchase"
    STRIPE_REFUND_FAILED = "stripe_refund_failed"


class BillingError(DomainError):
    code: BillingErrorCode
    message: str = "The billing operation failed."


class PaymentNotFound(BillingError):
    code = BillingErrorCode.PAYMENT_NOT_FOUND
    message = "No credit purchase on this account was paid with this payment intent."
    status_code = 404


class RefundExceedsPurchase(BillingError):
    code = BillingErrorCode.REFUND_EXCEEDS_PURCHASE
    message = "The refund is larger than what is left to refund of this purchase."


class StripeRefundFailed(BillingError):
    code = BillingErrorCode.STRIPE_REFUND_FAILED
    message = "Stripe refused or could not make the refund; nothing was written."
    status_code = 502
