"""An entry on its way to the ledger: what makes its amount and its key valid, and why a
write that moved nothing refused it. Shared by both write paths."""

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from credits.exceptions import InsufficientCredits, InvalidAmount
from credits.models import AMOUNT_DIGITS, AMOUNT_PLACES, CENT, CreditAccount, CreditTransaction
from credits.services.posting.lots import LotTerms

MAX_AMOUNT = Decimal(10) ** (AMOUNT_DIGITS - AMOUNT_PLACES) - CENT
IDEMPOTENCY_KEY_MAX_LENGTH = CreditTransaction._meta.get_field("idempotency_key").max_length


@dataclass
class Entry:
    account: CreditAccount
    kind: str
    amount: Decimal
    requested: Decimal
    idempotency_key: str
    earned_delta: Decimal
    spent_delta: Decimal
    fields: dict[str, Any]
    allow_partial: bool = False
    # A crediting entry's lot (None: the defaults for its kind and source).
    lot_terms: LotTerms | None = None
    # The lot a debit takes from first, before the draw-down rule (a refund's purchase lot).
    first_lot: int | None = None


def as_decimal(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise InvalidAmount(f"Amounts are Decimal or int, not {type(value).__name__}.")
    try:
        amount = Decimal(value)
        if not amount.is_finite() or amount != amount.quantize(CENT):
            raise InvalidAmount(amount=str(value))
    except InvalidOperation as error:
        raise InvalidAmount(amount=str(value)) from error
    if abs(amount) > MAX_AMOUNT:
        raise InvalidAmount(f"The amount must be at most {MAX_AMOUNT}.", amount=str(value))
    return amount.quantize(CENT)


def positive_amount(value: Any) -> Decimal:
    amount = as_decimal(value)
    if amount <= 0:
        raise InvalidAmount("The amount must be greater than zero.", amount=str(value))
    return amount


def signed_amount(value: Any) -> Decimal:
    amount = as_decimal(value)
    if amount == 0:
        raise InvalidAmount("The amount must not be zero.", amount=str(value))
    return amount


def check_key(key: str) -> None:
    if not isinstance(key, str) or not key.strip() or len(key) > IDEMPOTENCY_KEY_MAX_LENGTH:
        raise InvalidAmount(
            f"An idempotency key is a non-empty string of at most "
            f"{IDEMPOTENCY_KEY_MAX_LENGTH} characters.",
        )


class BeyondColumns(InvalidAmount):
    """invalid_amount: the entry would take the balance or a total beyond the columns."""


def refuse(entry: Entry):
    """Why the conditional write moved nothing: too little credit available (the balance less
    what holds reserve), or a balance or total that
    would go beyond the columns (numeric(14, 2)), which the write refuses before the database
    would raise (PostgreSQL) or store an out-of-range value (SQLite)."""
    balance, held, earned, spent = CreditAccount.objects.values_list(
        "balance", "held", "total_earned", "total_spent"
    ).get(pk=entry.account.pk)
    if (
        balance + entry.amount > MAX_AMOUNT
        or earned + entry.earned_delta > MAX_AMOUNT
        or spent + entry.spent_delta > MAX_AMOUNT
    ):
        raise BeyondColumns(
            f"The account's balance and totals stay at most {MAX_AMOUNT}; this entry would "
            "take them beyond it.",
            balance=str(balance),
            amount=str(entry.amount),
        )
    raise InsufficientCredits(
        balance=str(balance),
        held=str(held),
        available=str(balance - held),
        requested=str(-entry.amount),
    )
