"""How one ledger entry is written; internal to credits.services.

Every entry is one conditional UPDATE of its account (`balance + amount >= 0`, the totals
within their columns) returning the new totals, and one INSERT of the entry chained to them
(`balance_after = balance_before + amount`), in one transaction. The UPDATE is the whole check
and takes the row lock, so concurrent writers queue on the row, never lose an update and never
overdraw. Two modules carry it out, and `post` picks one:

- `portable`: the UPDATE through Django's cursor, then the ORM's INSERT. Every database; on
  PostgreSQL it writes partial refunds and reversals (they read what is left under the row
  lock first), and every entry when CREDITS_POSTGRESQL_FAST_PATH is off (the tests run the
  same invariant tests through both paths that way).
- `postgresql`: both in one statement, prepared once per connection: every other entry.

A rule about how an entry changes an account belongs in both modules; the tests' `write_path`
fixture holds them to the same behaviour.
"""

from credits.services.posting.entry import (
    IDEMPOTENCY_KEY_MAX_LENGTH,
    MAX_AMOUNT,
    Entry,
    as_decimal,
    check_key,
    positive_amount,
    signed_amount,
)
from credits.services.posting.post import post

__all__ = [
    "IDEMPOTENCY_KEY_MAX_LENGTH",
    "MAX_AMOUNT",
    "Entry",
    "as_decimal",
    "check_key",
    "positive_amount",
    "post",
    "signed_amount",
]
