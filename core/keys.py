"""Every idempotency key the apps write, built in one place, and the room they have.

A ledger entry's `idempotency_key` makes a retried operation write nothing twice, so a key's
spelling is part of the data: ledgers already hold these strings, and a builder that changed
one byte would let an old operation run again. Each key starts with a prefix that says who
wrote it (`api:`, `admin:`, `migration:`, ...), so no two writers can collide.

The builders take plain values (ids, strings), not models, so this module imports no app.

The room: CreditTransaction.idempotency_key holds IDEMPOTENCY_KEY_MAX_LENGTH characters, and
the ledger's services refuse a longer key (`invalid_amount`, nothing written), as they always
have; nothing is hashed. A key whose parts are ids and a client's key fits by construction:
each client key has a maximum (`*_CLIENT_KEY_MAX_LENGTH`) that the API's input fields enforce,
chosen so the longest key (ids of MAX_ID_DIGITS digits) fits; tests/core/test_keys.py holds them
to it. Keys built from other systems' ids (a Stripe event, a legacy transaction, a source's
name) are bounded by those systems and, failing that, refused by the ledger. The keys sent to
Stripe (checkout, refund) are Stripe's, held to STRIPE_IDEMPOTENCY_KEY_MAX_LENGTH.
"""

import uuid

# The ledger column's length (credits.models.CreditTransaction.idempotency_key).
IDEMPOTENCY_KEY_MAX_LENGTH = 200
# Stripe takes idempotency keys of up to 255 characters.
STRIPE_IDEMPOTENCY_KEY_MAX_LENGTH = 255
# A bigint primary key has at most 19 digits.
MAX_ID_DIGITS = 19

# What a client may send, per door: the rest of the room is the prefix and the ids.
API_CLIENT_KEY_MAX_LENGTH = 100
STAFF_CLIENT_KEY_MAX_LENGTH = IDEMPOTENCY_KEY_MAX_LENGTH - 64
CHECKOUT_CLIENT_KEY_MAX_LENGTH = 200


# --- the ledger's own doors ---------------------------------------------------------------


def api_idempotency_key(*, user_id: int, client_key: str) -> str:
    """Scope a client's key to its user, so users never collide with or probe each other."""
    return f"api:{user_id}:{client_key}"


def admin_idempotency_key(*, kind: str, submission_key: uuid.UUID | str, account_id: int) -> str:
    """An admin form's submission, per account: a resubmitted form writes nothing twice."""
    return f"admin:{kind}:{submission_key}:{account_id}"


def approval_entry_key(*, approval_id: int) -> str:
    """The entry an approved request writes: one per request."""
    return f"approval:{approval_id}"


def api_hold_key(*, user_id: int, client_key: str) -> str:
    """A hold a client makes (holds have their own key column, so no clash with spends)."""
    return f"api-hold:{user_id}:{client_key}"


def api_capture_key(*, user_id: int, client_key: str) -> str:
    """The spend entry of a client's capture of a hold."""
    return f"api-capture:{user_id}:{client_key}"


def lot_expiry_key(*, lot_id: int, sequence: int) -> str:
    """The expiry entry of a lot; `sequence` counts its earlier expiries (a lot given credits
    back by a reversal after it expired can expire again), so each runs once."""
    return f"expiry:lot:{lot_id}:{sequence}"


# --- billing ------------------------------------------------------------------------------


def staff_idempotency_key(*, actor_id: int, action: str, client_key: str) -> str:
    """A staff API client's key, scoped to the staff member and the action."""
    return f"staff-api:{actor_id}:{action}:{client_key}"


def signup_grant_key(*, user_id: int) -> str:
    return f"signup:{user_id}"


def monthly_grant_key(*, account_id: int, period: str) -> str:
    return f"monthly_grant:{account_id}:{period}"


def stripe_event_key(*, event_id: str) -> str:
    return f"stripe:{event_id}"


def stripe_payment_key(*, payment_ref: str) -> str:
    """A purchase's ledger key: its payment intent (or, without one, its checkout session)."""
    return f"stripe-payment:{payment_ref}"


def stripe_dispute_key(*, dispute_id: str) -> str:
    return f"stripe-dispute:{dispute_id}"


def stripe_refund_key(*, payment_intent_id: str, amount_refunded: int) -> str:
    """Keyed by the payment's refunded total: two events reporting the same refunds of one
    payment can never both write."""
    return f"stripe-refund:{payment_intent_id}:{amount_refunded}"


def stripe_checkout_key(*, user_id: int, client_key: str) -> str:
    """The key sent to Stripe with a Checkout Session: a client's retry gets the same session."""
    return f"credits-checkout:{user_id}:{client_key}"


def stripe_idempotency_key(*, ledger_key: str) -> str:
    """The key sent to Stripe with a staff refund, from the refund's ledger key."""
    return f"credits-refund:{ledger_key}"


# --- the migration ------------------------------------------------------------------------


def migration_key(*, source: str, user_id: int, generation: int) -> str:
    """A user's migrated credits from one source; a new generation after a rollback."""
    return f"migration:{source}:{user_id}:{generation}"


def history_key(*, legacy_id: str) -> str:
    """A legacy transaction copied into the ledger as history."""
    return f"history:{legacy_id}"


def rollback_key(*, entry_key: str) -> str:
    """The reversal of an entry written under `entry_key`."""
    return f"rollback:{entry_key}"


def demo_spend_key(*, user_id: int, index: int) -> str:
    """The demo data's spends, so running the demo setup twice spends nothing twice."""
    return f"demo:{user_id}:{index}"


def demo_bonus_key(*, user_id: int) -> str:
    """The demo customer's expiring bonus (demo_setup)."""
    return f"demo:bonus:{user_id}"


def demo_hold_key(*, user_id: int) -> str:
    """The demo customer's hold (demo_setup)."""
    return f"demo:hold:{user_id}"
