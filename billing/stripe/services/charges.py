"""charge.refunded and charge.dispute.created: the refunded or disputed share of a pack's
credits goes back, never below zero."""

from decimal import ROUND_HALF_UP, Decimal

from billing.models import IssueKind
from billing.stripe.services._events import (
    STRIPE_SOURCE,
    EventProblem,
    HandledEvent,
    get_path,
    handled,
    profile_for,
    record_issue,
    required_int,
    stripe_id,
)
from billing.stripe.services.purchases import purchase_for_payment
from core.keys import stripe_dispute_key, stripe_refund_key
from credits.exceptions import InsufficientCredits
from credits.locks import account_lock
from credits.models import CENT, CreditAccount, CreditTransaction, EntryKind
from credits.services import credit_account_open, credit_refund


def refunded_for_payment(*, account: CreditAccount, payment_intent_id: str) -> Decimal:
    """Credits already taken back for refunds of this payment, as requested (shortfalls count)."""
    total = Decimal("0")
    refunds = account.entries.filter(
        kind=EntryKind.REFUND, metadata__payment_intent=payment_intent_id
    ).order_by()
    for amount, metadata in refunds.values_list("amount", "metadata"):
        requested = metadata.get("requested_amount") if isinstance(metadata, dict) else None
        total += -Decimal(requested) if requested is not None else -Decimal(str(amount))
    return total.quantize(CENT)


def _purchase_paid_with(payment_intent_id: str) -> CreditTransaction | None:
    """The first purchase paid with this payment intent, on whichever account (a guest's)."""
    return (
        CreditTransaction.objects.filter(
            kind=EntryKind.PURCHASE, metadata__payment_intent=payment_intent_id
        )
        .select_related("account__user")
        .order_by("pk")
        .first()
    )


def _take_back(
    *,
    event: HandledEvent,
    account: CreditAccount,
    purchase: CreditTransaction,
    amount: Decimal,
    idempotency_key: str,
    reason: str,
    what: str,
    details: dict,
) -> CreditTransaction:
    """Take back up to `amount` of a purchase's credits (never below zero), from that
    purchase's own lot first; the caller holds the account's lock. Raises InsufficientCredits
    when nothing at all is left."""
    return credit_refund(
        account=account,
        amount=amount,
        idempotency_key=idempotency_key,
        reason=reason,
        allow_partial=True,
        purchase=purchase,
        source=STRIPE_SOURCE,
        description=f"{what} of {purchase.description}"[:255],
        stripe_event_id=event.id,
        metadata=details,
    )


def _account_of_payment(event: HandledEvent, payment_intent_id: str) -> CreditAccount:
    """The account the event names; for a guest checkout (no customer, no known email), the
    account whose purchase was paid with this payment intent."""
    try:
        profile = profile_for(event)
    except EventProblem as problem:
        if problem.kind != IssueKind.UNKNOWN_CUSTOMER:
            raise
        purchase = _purchase_paid_with(payment_intent_id)
        if purchase is None:
            raise
        event.user = purchase.account.user
        return purchase.account
    return credit_account_open(user=profile.user)


@handled("dispute")
def stripe_charge_disputed(event: HandledEvent) -> CreditTransaction | None:
    """A disputed payment: take back what is left of its pack's credits, recorded for staff."""
    dispute = event.object
    payment_intent_id = stripe_id(dispute.get("payment_intent"))
    if not payment_intent_id:
        raise EventProblem(IssueKind.MALFORMED_PAYLOAD, "The dispute names no payment intent.")
    dispute_id = stripe_id(dispute.get("id"))
    purchase = _purchase_paid_with(payment_intent_id)
    if purchase is None:
        raise EventProblem(
            IssueKind.REFUND_WITHOUT_PURCHASE,
            f"Dispute {dispute_id} of {payment_intent_id}: no credit purchase was paid with it.",
            payment_intent=payment_intent_id,
        )
    # Locked, so refunds and disputes of one payment are counted one at a time.
    account = account_lock(account_id=purchase.account_id)
    event.user = account.user
    to_take = purchase.amount - refunded_for_payment(
        account=account, payment_intent_id=payment_intent_id
    )
    details = {
        "payment_intent": payment_intent_id,
        "dispute": dispute_id,
        "charge": stripe_id(dispute.get("charge")),
        "purchase_entry_id": purchase.pk,
        "reason": str(dispute.get("reason") or ""),
    }
    entry = None
    if to_take > 0:
        try:
            entry = _take_back(
                event=event,
                account=account,
                purchase=purchase,
                amount=to_take,
                idempotency_key=stripe_dispute_key(dispute_id=dispute_id),
                reason="Payment disputed in Stripe",
                what="Dispute",
                details=details,
            )
        except InsufficientCredits:
            entry = None
    taken = -entry.amount if entry is not None else Decimal("0.00")
    record_issue(
        event.id,
        event.type,
        event,
        EventProblem(
            IssueKind.DISPUTE_OPENED,
            f"Payment {payment_intent_id} disputed: {taken} of {to_take} credits taken back.",
            taken=str(taken),
            **details,
        ),
    )
    return entry


@handled("charge")
def stripe_charge_refunded(event: HandledEvent) -> CreditTransaction | None:
    """Take back the refunded share of a pack's credits, never below zero; record a shortfall."""
    charge = event.object
    event.about(
        customer_id=stripe_id(charge.get("customer")),
        email=get_path(charge, "billing_details", "email") or charge.get("receipt_email") or "",
    )
    amount = required_int(charge, "amount")
    amount_refunded = required_int(charge, "amount_refunded")
    payment_intent_id = stripe_id(charge.get("payment_intent"))
    if amount <= 0 or not 0 <= amount_refunded <= amount or not payment_intent_id:
        raise EventProblem(
            IssueKind.MALFORMED_PAYLOAD,
            f"A refund of {amount_refunded} of {amount} on payment intent "
            f"{payment_intent_id or '(none)'} does not add up.",
        )
    account = _account_of_payment(event, payment_intent_id)
    # Serialises with staff refunds of the same payment (billing.stripe.refunds), whose own
    # charge.refunded event then finds its credits already taken back.
    account_lock(account_id=account.pk)
    purchase = purchase_for_payment(account=account, payment_intent_id=payment_intent_id)
    if purchase is None:
        raise EventProblem(
            IssueKind.REFUND_WITHOUT_PURCHASE,
            f"No credit purchase was paid with {payment_intent_id}; nothing was taken back.",
            payment_intent=payment_intent_id,
            amount_refunded_cents=amount_refunded,
        )
    target = (purchase.amount * amount_refunded / amount).quantize(CENT, rounding=ROUND_HALF_UP)
    to_take = target - refunded_for_payment(account=account, payment_intent_id=payment_intent_id)
    if to_take <= 0:
        return None
    details = {
        "payment_intent": payment_intent_id,
        "charge": stripe_id(charge.get("id")),
        "purchase_entry_id": purchase.pk,
        "amount_refunded_cents": amount_refunded,
        "charge_amount_cents": amount,
    }
    try:
        entry = _take_back(
            event=event,
            account=account,
            purchase=purchase,
            amount=to_take,
            idempotency_key=stripe_refund_key(
                payment_intent_id=payment_intent_id, amount_refunded=amount_refunded
            ),
            reason="Refunded in Stripe",
            what="Refund",
            details=details,
        )
    except InsufficientCredits:
        record_issue(
            event.id,
            event.type,
            event,
            EventProblem(
                IssueKind.REFUND_SHORTFALL,
                f"The user has no credits left; {to_take} refunded credits were not taken back.",
                shortfall=str(to_take),
                **details,
            ),
        )
        return None
    shortfall = entry.metadata.get("shortfall")
    if shortfall:
        record_issue(
            event.id,
            event.type,
            event,
            EventProblem(
                IssueKind.REFUND_SHORTFALL,
                f"The user had spent some: {-entry.amount} of {to_take} credits were taken "
                f"back, {shortfall} were not.",
                shortfall=shortfall,
                entry_id=entry.pk,
                **details,
            ),
        )
    return entry
