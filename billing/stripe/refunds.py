"""Staff refunds that give money back through Stripe and take the credits off the ledger.

The Stripe refund and the ledger entry cannot share one transaction, so the order makes a retry
safe: the account is locked, the refund is checked against the purchase it belongs to, Stripe
is asked with an idempotency key derived from ours, and the entry (carrying the Stripe refund
id) is written before the lock is released. If Stripe refuses, nothing is written. If the
process dies after Stripe refunded, the same call again gets the same refund back from Stripe
(same idempotency key) and writes the entry once. A retry after success replays the entry
without calling Stripe. The `charge.refunded` event Stripe then sends waits for that lock and
finds the credits already taken back (billing.stripe.services.stripe_charge_refunded).

The money refunded is the purchase's price times the share of its credits refunded, in cents.
"""

from decimal import ROUND_HALF_UP, Decimal

import stripe
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from djstripe.settings import djstripe_settings

from billing.exceptions import PaymentNotFound, RefundExceedsPurchase, StripeRefundFailed
from billing.stripe.services import purchase_for_payment, refunded_for_payment
from core.keys import stripe_idempotency_key
from credits.exceptions import InsufficientCredits, ReasonRequired
from credits.locks import account_lock
from credits.models import CreditAccount, CreditApprovalRequest, CreditTransaction, EntryKind
from credits.services import (
    check_idempotency_key,
    credit_refund,
    credit_staff_authorize,
    credit_staff_refund,
    positive_amount,
)

STRIPE_REFUND_SOURCE = "stripe_refund"


def _refunded_cents(account: CreditAccount, payment_intent_id: str) -> int:
    """Cents of this payment refunded so far: the larger of the staff refunds' sum and the
    cumulative total Stripe last reported (charge.refunded, which includes them)."""
    staff, reported = 0, 0
    refunds = account.entries.filter(
        kind=EntryKind.REFUND, metadata__payment_intent=payment_intent_id
    ).values_list("metadata", flat=True)
    for metadata in refunds:
        staff += int(metadata.get("refund_amount_cents") or 0)
        reported = max(reported, int(metadata.get("amount_refunded_cents") or 0))
    return max(staff, reported)


def stripe_refund_credits(
    *,
    account: CreditAccount,
    amount: Decimal,
    payment_intent_id: str,
    actor: AbstractBaseUser | None,
    reason: str,
    idempotency_key: str,
) -> CreditTransaction:
    """Refund a purchase's credits through Stripe and take them off the account."""
    if not reason.strip():
        raise ReasonRequired("A refund needs a reason.")
    amount = positive_amount(amount)
    # Before Stripe is asked: a key the ledger would refuse must not let money leave first.
    check_idempotency_key(idempotency_key)
    # Durable: the money leaves inside this block, so no outer transaction may roll it back.
    with transaction.atomic(durable=True):
        locked = account_lock(account_id=account.pk)
        # Under the lock, so a double submission finds the first one's entry.
        if CreditTransaction.objects.filter(idempotency_key=idempotency_key).exists():
            # A retry after success: the ledger settles it (replay or conflict); Stripe is
            # not asked.
            return credit_refund(
                account=account,
                amount=amount,
                idempotency_key=idempotency_key,
                reason=reason,
                actor=actor,
                allow_partial=True,
            )
        purchase = purchase_for_payment(account=account, payment_intent_id=payment_intent_id)
        if purchase is None:
            raise PaymentNotFound(payment_intent_id=payment_intent_id)
        left = purchase.amount - refunded_for_payment(
            account=account, payment_intent_id=payment_intent_id
        )
        if amount > left:
            raise RefundExceedsPurchase(refundable=str(left), requested=str(amount))
        # Available, not balance: credits that holds reserve cannot be taken back, and the
        # money must not leave for credits the entry could then not take.
        available = locked.balance - locked.held
        if available < amount:
            raise InsufficientCredits(
                balance=str(locked.balance),
                held=str(locked.held),
                available=str(available),
                requested=str(amount),
            )
        paid_cents = int(purchase.metadata["amount_cents"])
        cents = int((paid_cents * amount / purchase.amount).quantize(1, rounding=ROUND_HALF_UP))
        # Refused before Stripe is asked: a refund of no money, or more money than the payment
        # has left to refund (Stripe's refunds of it so far, ours and the dashboard's).
        if cents <= 0:
            raise RefundExceedsPurchase(
                "The refund rounds to 0 cents; Stripe cannot refund it.",
                refundable=str(left),
                requested=str(amount),
                refund_cents=cents,
            )
        refundable_cents = paid_cents - _refunded_cents(account, payment_intent_id)
        if cents > refundable_cents:
            raise RefundExceedsPurchase(
                f"The refund is {cents} cents; the payment has {refundable_cents} left to refund.",
                refundable=str(left),
                requested=str(amount),
                refund_cents=cents,
                refundable_cents=refundable_cents,
            )
        try:
            refund = stripe.Refund.create(
                api_key=djstripe_settings.STRIPE_SECRET_KEY,
                stripe_version=djstripe_settings.STRIPE_API_VERSION,
                idempotency_key=stripe_idempotency_key(ledger_key=idempotency_key),
                payment_intent=payment_intent_id,
                amount=cents,
                metadata={"credits_idempotency_key": idempotency_key, "account_id": account.pk},
            )
        except stripe.StripeError as error:
            raise StripeRefundFailed(
                error.user_message or str(error) or StripeRefundFailed.message,
                stripe_code=error.code or "",
                payment_intent_id=payment_intent_id,
            ) from error
        # allow_partial: the money is gone already, so a spend that slipped in cannot make the
        # entry fail; the shortfall is recorded on it (the lock above makes that unlikely).
        return credit_refund(
            account=account,
            amount=amount,
            idempotency_key=idempotency_key,
            reason=reason,
            actor=actor,
            allow_partial=True,
            # The paid lot this money bought goes first, not the free credits beside it.
            purchase=purchase,
            source=STRIPE_REFUND_SOURCE,
            description=f"Stripe refund of {purchase.description}"[:255],
            metadata={
                "stripe_refund_id": refund.id,
                "payment_intent": payment_intent_id,
                "refund_amount_cents": cents,
                "currency": purchase.metadata.get("currency", ""),
                "purchase_entry_id": purchase.pk,
            },
        )


def billing_staff_refund(
    *,
    account: CreditAccount,
    amount: Decimal,
    idempotency_key: str,
    actor: AbstractBaseUser,
    reason: str,
    stripe_refund: bool = False,
    payment_intent_id: str = "",
) -> CreditTransaction | CreditApprovalRequest:
    """Refund credits as staff; with stripe_refund, give the purchase's money back too.

    Without Stripe it is `credit_staff_refund` (limits, and approval above the threshold). With
    Stripe the same roles and limits apply first, but above the approval threshold it is
    refused: the money would leave before anyone approved it.
    """
    if not stripe_refund:
        return credit_staff_refund(
            account=account,
            amount=amount,
            idempotency_key=idempotency_key,
            actor=actor,
            reason=reason,
        )
    if not payment_intent_id:
        raise PaymentNotFound("A Stripe refund needs the purchase's payment intent id.")
    credit_staff_authorize(
        actor=actor,
        account=account,
        kind=EntryKind.REFUND,
        amount=positive_amount(amount),
        reason=reason,
    )
    return stripe_refund_credits(
        account=account,
        amount=amount,
        payment_intent_id=payment_intent_id,
        actor=actor,
        reason=reason,
        idempotency_key=idempotency_key,
    )
