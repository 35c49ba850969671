"""Realistic, deterministic legacy billing data: the "before" world to try the migration on.

`seed_legacy()` (the `seed_legacy` management command) creates N auth users and the legacy rows
of the sources asked for, and nothing else: no UserProfile, no CreditAccount, no ledger entry;
creating those is the migration's job. Users are `legacy-s{seed}-{i:06d}` (i from 1) with
`{username}@example.com`, `date_joined` in the past and one unusable password, computed once
(Django's unusable marker carries a random suffix, so that column alone differs between runs).

Determinism. User i draws from its own `random.Random` streams, seeded from (seed, i, stream):
one for its profile (which tables it is in, its flags) and one per table. So a user's rows do
not depend on the batch size, on N (but see rule breakers), or on which other sources are
filled: `--sources usd_balance` writes the same `user_billing` rows as a full run. Nothing is
drawn in dict or set order. The one input besides the seed is the reference day, taken once:
`timezone.now()` truncated to the day (UTC), or `today=`/`--today`. Every timestamp is written
relative to it and never after it, and `user_billing.updated_at` (auto_now) is set back to it.

Proportions, drawn per user (so approximate; exact counts are in the returned summary):
- 2% of users have no legacy rows at all; the others are each, independently, in
  `user_billing` (60%), `legacy_accounts` (65%) and `legacy_operations` (55%), so most users
  with data are in several sources (and a few are in none by chance).
- `user_billing` (usd_balance): 55% USD only (0.01-500.00), 15% UAH only (100.00-20000.00),
  15% both, 15% zero in both.
- `legacy_accounts` (user_fields, usage_tiers): plan free 82%, pro 15%, business 3%;
  credits_balance with cents, free 0-20.00 (a third exactly 0), pro 0-520.00, business
  0-2000.00. Paying plans have a subscription (active 85%, past_due 7%, canceled 8%; started
  30-720 days ago, never before the user joined; a period end within 30 days, or up to 10 days
  past for some canceled ones), a `cus_...` customer id and a `price_...` id (monthly 80%,
  yearly 20%). 10% of free users are former subscribers: canceled, with a customer id.
  Every account has preferences; 80% have usage_stats.
- `payments` (user_fields, pro and business only): 1-5 per user since the subscription
  started, 75% the plan's price and 25% a top-up (5-50 USD), amounts in cents, currency usd;
  status PAID 80%, FAILED 12%, REFUNDED 8%.
- `legacy_credit_transactions` (user_fields, every legacy account): a signup bonus then 0-5
  purchases, monthly grants, usage and adjustments that never overdraw, closed by the delta
  that makes the sum equal credits_balance; 5% of accounts are "inconsistent legacy ledgers":
  one extra delta of 0.01-50.00 either way that the balance never saw.
- `legacy_operations` (rate_limit): 1-8 operations over the last 60 days, except 3% of the
  users with operations, "power users": between 1.17 and 1.67 times (POWER_OPS_PER_DAY x
  WINDOW_DAYS) operations in the window (351-500 with the default 10/day over 30 days), all in
  its last WINDOW_DAYS - 1 days so they stay power users when the migration runs the day after,
  plus 0-20 older ones.
- `legacy_usage` (usage_tiers, legacy accounts only): 85% of accounts have a row for the
  current period (YYYY-MM of the reference day): 80% of them used 0-100% of their plan's
  monthly credits (CREDITS_PLANS), 20% used more (up to 200%); half of those also have a row
  for the previous period, which the migration must ignore.
- Rule breakers, for the migration's FAILED path: 0.2% (every 500th user, from an offset below
  100 drawn from the seed, so at least one when N >= 100; none when N < 100). Each is in
  `user_billing` with a negative balance_usd and in `legacy_accounts` with a negative
  credits_balance (its legacy ledger sums to it: a usage that overdrew), where those tables
  are filled.

Summary: `seed_legacy()` returns a `SeedSummary` counted while writing (users, rows per table,
users per source, in several sources and in none, plans, balance kinds, power users by the
settings' rule, inconsistent ledgers, rule breakers); the command prints it, and
`legacy_seed_summary()` counts the same from the database, so tests can hold one to the other.

Speed: users are generated, inserted and forgotten a chunk (`batch_size` users) at a time with
`bulk_create`, never a query per user. Everything runs in one transaction per database, so a
failure leaves nothing behind and the same seed can simply be run again.
"""

from billing.management.legacy_seed.generate import seed_legacy
from billing.management.legacy_seed.mix import (
    DEFAULT_BATCH_SIZE,
    SOURCES,
    TABLES,
    SeedRefused,
    parse_sources,
    power_operations_threshold,
    reference_moment,
    username_prefix,
)
from billing.management.legacy_seed.summary import SeedSummary, legacy_seed_summary

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "SOURCES",
    "TABLES",
    "SeedRefused",
    "SeedSummary",
    "legacy_seed_summary",
    "parse_sources",
    "power_operations_threshold",
    "reference_moment",
    "seed_legacy",
    "username_prefix",
]
