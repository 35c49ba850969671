"""Domain errors of the ledger. Each has a stable `code` that the API turns into its error shape."""

from enum import StrEnum

from core.exceptions import DomainError


class ErrorCode(StrEnum):
    INSUFFICIENT_CREDITS = "insufficient_credits"
    INVALID_AMOUNT = "invalid_amount"
    IDEMPOTENCY_CONFLICT = "idempotency_conflict"
    DUPLICATE_REFERENCE = "duplicate_reference"
    ALREADY_REVERSED = "already_reversed"
    NOT_REVERSIBLE = "not_reversible"
    ACCOUNT_NOT_FOUND = "account_not_found"
    LEDGER_IMMUTABLE = "ledger_immutable"
    REASON_REQUIRED = "reason_required"
    PERMISSION_DENIED = "permission_denied"
    OVER_LIMIT = "over_limit"
    SELF_APPROVAL = "self_approval"
    APPROVAL_DECIDED = "approval_decided"
    APPROVAL_REQUIRED = "approval_required"
    OWN_ACCOUNT = "own_account"
    OVER_DAILY_LIMIT = "over_daily_limit"
    HOLD_NOT_FOUND = "hold_not_found"
    HOLD_NOT_ACTIVE = "hold_not_active"


class CreditError(DomainError):
    code: ErrorCode
    message: str = "The credit operation failed."


class InsufficientCredits(CreditError):
    code = ErrorCode.INSUFFICIENT_CREDITS
    message = "The account does not hold enough credits."
    status_code = 402


class InvalidAmount(CreditError):
    code = ErrorCode.INVALID_AMOUNT
    message = "The amount must be a non-zero number of credits with at most 2 decimal places."


class IdempotencyConflict(CreditError):
    code = ErrorCode.IDEMPOTENCY_CONFLICT
    message = "This idempotency key was already used for a different operation."
    status_code = 409


class DuplicateReference(CreditError):
    code = ErrorCode.DUPLICATE_REFERENCE
    message = "This Stripe event or legacy transaction is already on the ledger."
    status_code = 409


class AlreadyReversed(CreditError):
    code = ErrorCode.ALREADY_REVERSED
    message = "This entry has already been reversed."
    status_code = 409


class NotReversible(CreditError):
    code = ErrorCode.NOT_REVERSIBLE
    message = "Reversals and history entries cannot be reversed."


class AccountNotFound(CreditError):
    code = ErrorCode.ACCOUNT_NOT_FOUND
    message = "This user has no credit account."
    status_code = 404


class ReasonRequired(CreditError):
    code = ErrorCode.REASON_REQUIRED
    message = "Staff actions need an actor and a reason."


class LedgerEntryImmutable(CreditError):
    code = ErrorCode.LEDGER_IMMUTABLE
    message = "Ledger entries are append-only; write a reversal instead."


class StaffPermissionDenied(CreditError):
    code = ErrorCode.PERMISSION_DENIED
    message = "You do not have the permission for this credit operation."
    status_code = 403


class ApprovalRequired(CreditError):
    code = ErrorCode.APPROVAL_REQUIRED
    message = (
        "The amount is above the approval threshold (CREDITS_APPROVAL_THRESHOLD) and this "
        "operation cannot wait for a second staff member's approval."
    )
    status_code = 403


class OverLimit(CreditError):
    code = ErrorCode.OVER_LIMIT
    message = (
        "The amount is above your limit per action (CREDITS_ADMIN_LIMIT); a billing super admin"
        " can do it."
    )
    status_code = 403


class OverDailyLimit(CreditError):
    code = ErrorCode.OVER_DAILY_LIMIT
    message = (
        "The amount is above what is left of your limit for the last 24 hours"
        " (CREDITS_ADMIN_DAILY_LIMIT); a billing super admin can do it."
    )
    status_code = 403


class OwnAccount(CreditError):
    code = ErrorCode.OWN_ACCOUNT
    message = "Staff do not grant, refund, adjust or approve for their own account."
    status_code = 403


class SelfApproval(CreditError):
    code = ErrorCode.SELF_APPROVAL
    message = "Nobody approves or rejects their own request; another staff member must."
    status_code = 403


class ApprovalDecided(CreditError):
    code = ErrorCode.APPROVAL_DECIDED
    message = "This request has already been decided the other way."
    status_code = 409


class HoldNotFound(CreditError):
    code = ErrorCode.HOLD_NOT_FOUND
    message = "There is no such hold on your account."
    status_code = 404


class HoldNotActive(CreditError):
    code = ErrorCode.HOLD_NOT_ACTIVE
    message = "This hold is no longer active: it was captured, released or has expired."
    status_code = 409
