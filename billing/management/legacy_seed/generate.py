"""Generation: users and legacy rows, a chunk at a time, each user from its own random streams."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import router, transaction

from billing.management.legacy_seed.mix import (
    BALANCE_CAP_CENTS,
    BALANCE_KINDS,
    BALANCE_WEIGHTS,
    DEFAULT_BATCH_SIZE,
    FORMER_SUBSCRIBERS,
    HISTORY_DAYS,
    IN_ACCOUNTS,
    IN_BILLING,
    IN_OPERATIONS,
    INCONSISTENT_LEDGERS,
    LANGUAGES,
    LEGACY_MONTHLY_GRANT_CENTS,
    MODELS,
    NO_LEGACY_DATA,
    OPERATION_KINDS,
    OPERATION_WEIGHTS,
    PAYMENT_STATUSES,
    PAYMENT_WEIGHTS,
    PLAN_WEIGHTS,
    PLANS,
    POWER_USERS,
    PRICE_CENTS,
    PURCHASE_CENTS,
    RULE_BREAKER_EVERY,
    RULE_BREAKER_MIN_USERS,
    SOURCE_MODELS,
    SOURCES,
    SUBSCRIPTION_STATUSES,
    SUBSCRIPTION_WEIGHTS,
    TABLES,
    TOP_UP_CENTS,
    SeedRefused,
    in_list_size,
    parse_sources,
    power_operations_threshold,
    reference_moment,
    username_prefix,
)
from billing.management.legacy_seed.summary import SeedSummary
from billing.models import (
    LegacyAccount,
    LegacyBilling,
    LegacyCreditTransaction,
    LegacyOperation,
    LegacyPayment,
    LegacyUsage,
)

# One random stream per user and purpose; the numbers are part of the seed's meaning.
_PROFILE, _BILLING, _ACCOUNT, _PAYMENTS, _LEDGER, _OPERATIONS, _USAGE = range(7)


def seed_legacy(
    *,
    users: int,
    seed: int,
    sources: str | Iterable[str] = SOURCES,
    batch_size: int = DEFAULT_BATCH_SIZE,
    today: date | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SeedSummary:
    """Create `users` users and their legacy rows for `sources`; return what was written."""
    sources = parse_sources(sources)
    if users <= 0:
        raise SeedRefused(f"--users must be at least 1, not {users}.")
    if seed < 0:
        raise SeedRefused(f"--seed must be 0 or more, not {seed}.")
    if batch_size <= 0:
        raise SeedRefused(f"--batch-size must be at least 1, not {batch_size}.")
    user_model = get_user_model()
    seeder = _Seeder(users=users, seed=seed, sources=sources, batch_size=batch_size, today=today)
    models = [user_model, *(model for source in sources for model in SOURCE_MODELS[source])]
    with ExitStack() as stack:
        for alias in sorted({router.db_for_write(model) for model in models}):
            stack.enter_context(transaction.atomic(using=alias))
        users_db = router.db_for_write(user_model)
        prefix = username_prefix(seed)
        existing = user_model._default_manager.using(users_db).filter(username__startswith=prefix)
        if existing.exists():
            raise SeedRefused(
                f"Users for seed {seed} already exist ({prefix}*); use another --seed."
            )
        for start in range(1, users + 1, batch_size):
            stop = min(start + batch_size, users + 1)
            seeder.write_chunk(start, stop)
            if progress is not None:
                progress(stop - 1, users)
    return seeder.summary


@dataclass
class _Profile:
    index: int
    joined: datetime
    joined_days: int
    is_rule_breaker: bool
    in_billing: bool
    in_accounts: bool
    in_operations: bool
    is_power: bool
    is_inconsistent: bool


class _Seeder:
    def __init__(self, *, users, seed, sources, batch_size, today):
        self.seed = seed
        self.sources = sources
        self.batch_size = batch_size
        self.ref = reference_moment(today)
        self.period = self.ref.strftime("%Y-%m")
        self.previous_period = (self.ref.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
        self.window = timedelta(days=settings.CREDITS_RATE_LIMIT_WINDOW_DAYS)
        self.since = self.ref - self.window
        self.power_threshold = power_operations_threshold()
        self.plan_cents = {
            plan: int(credits * 100) for plan, credits in settings.CREDITS_PLANS.items()
        }
        self.password = make_password(None)
        self.user_model = get_user_model()
        self.rule_breaker_offset = (
            random.Random(seed).randrange(RULE_BREAKER_MIN_USERS)
            if users >= RULE_BREAKER_MIN_USERS
            else None
        )
        self.fills = {model for source in sources for model in SOURCE_MODELS[source]}
        self.summary = SeedSummary(
            seed=seed,
            sources=sources,
            reference_day=self.ref.date(),
            rows=dict.fromkeys(TABLES, 0),
            users_per_source=dict.fromkeys(sources, 0),
            plans=dict.fromkeys(PLANS, 0) if LegacyAccount in self.fills else {},
            balances=(
                dict.fromkeys((*BALANCE_KINDS, "negative"), 0)
                if LegacyBilling in self.fills
                else {}
            ),
        )

    def _rng(self, index: int, stream: int) -> random.Random:
        return random.Random((self.seed << 48) + (index << 4) + stream)

    def write_chunk(self, start: int, stop: int) -> None:
        profiles = [self._profile(index) for index in range(start, stop)]
        prefix = username_prefix(self.seed)
        new_users = [
            self.user_model(
                username=f"{prefix}{profile.index:06d}",
                email=f"{prefix}{profile.index:06d}@example.com",
                password=self.password,
                date_joined=profile.joined,
            )
            for profile in profiles
        ]
        self.user_model._default_manager.bulk_create(new_users, batch_size=self.batch_size)
        user_ids = self._user_ids(new_users)
        rows = {model: [] for model in MODELS}
        for profile, user_id in zip(profiles, user_ids, strict=True):
            self._user_rows(profile, user_id, rows)
        for model in MODELS:
            if rows[model]:
                model._default_manager.bulk_create(rows[model], batch_size=self.batch_size)
                self.summary.rows[model._meta.db_table] += len(rows[model])
        self._stamp_billing(rows[LegacyBilling])
        self.summary.users_created += len(new_users)

    def _user_ids(self, new_users) -> list[int]:
        if all(user.pk is not None for user in new_users):
            return [user.pk for user in new_users]
        # A backend that cannot return ids from a bulk insert: one query per chunk.
        names = [user.username for user in new_users]
        ids, size = {}, in_list_size(self.user_model)
        for offset in range(0, len(names), size):
            ids.update(
                self.user_model._default_manager.filter(
                    username__in=names[offset : offset + size]
                ).values_list("username", "pk")
            )
        return [ids[name] for name in names]

    def _stamp_billing(self, billing_rows) -> None:
        # updated_at is auto_now, so the insert stamped the wall clock; the reference day keeps
        # the rows deterministic. update() does not touch auto_now fields.
        if all(row.pk is not None for row in billing_rows):
            keys, lookup = [row.pk for row in billing_rows], "pk__in"
        else:
            keys, lookup = [row.user_id for row in billing_rows], "user_id__in"
        size = in_list_size(LegacyBilling)
        for offset in range(0, len(keys), size):
            LegacyBilling._default_manager.filter(**{lookup: keys[offset : offset + size]}).update(
                updated_at=self.ref
            )

    def _is_rule_breaker(self, index: int) -> bool:
        offset = self.rule_breaker_offset
        return offset is not None and (index - 1) % RULE_BREAKER_EVERY == offset

    def _profile(self, index: int) -> _Profile:
        r = self._rng(index, _PROFILE)
        has_nothing = r.random() < NO_LEGACY_DATA
        in_billing = r.random() < IN_BILLING
        in_accounts = r.random() < IN_ACCOUNTS
        in_operations = r.random() < IN_OPERATIONS
        is_power = r.random() < POWER_USERS
        is_inconsistent = r.random() < INCONSISTENT_LEDGERS
        joined_days = r.randint(180, 1500)
        joined = self.ref - timedelta(days=joined_days, seconds=r.randrange(86400))
        is_rule_breaker = self._is_rule_breaker(index)
        if is_rule_breaker:
            has_nothing, in_billing, in_accounts, is_inconsistent = False, True, True, False
        if has_nothing:
            in_billing = in_accounts = in_operations = False
        return _Profile(
            index=index,
            joined=joined,
            joined_days=joined_days,
            is_rule_breaker=is_rule_breaker,
            in_billing=in_billing,
            in_accounts=in_accounts,
            in_operations=in_operations,
            is_power=is_power,
            is_inconsistent=is_inconsistent,
        )

    def _user_rows(self, profile: _Profile, user_id: int, rows) -> None:
        summary = self.summary
        in_sources = []
        breaks_rule = False
        if profile.in_billing and LegacyBilling in self.fills:
            billing, kind = self._billing(profile, user_id)
            rows[LegacyBilling].append(billing)
            summary.balances[kind] += 1
            breaks_rule |= kind == "negative"
            in_sources.append("usd_balance")
        if profile.in_accounts and LegacyAccount in self.fills:
            account = self._account(profile, user_id)
            rows[LegacyAccount].append(account)
            summary.plans[account.plan] += 1
            breaks_rule |= account.credits_balance < 0
            if "user_fields" in self.sources:
                in_sources.append("user_fields")
                if account.plan != "free":
                    rows[LegacyPayment] += self._payments(profile, account)
                entries = self._ledger(profile, account)
                rows[LegacyCreditTransaction] += entries
                if sum(entry.delta for entry in entries) != account.credits_balance:
                    summary.inconsistent_ledgers += 1
            if "usage_tiers" in self.sources:
                in_sources.append("usage_tiers")
                rows[LegacyUsage] += self._usage(profile, account)
        if profile.in_operations and LegacyOperation in self.fills:
            operations = self._operations(profile, user_id)
            rows[LegacyOperation] += operations
            recent = sum(1 for operation in operations if operation.created_at >= self.since)
            summary.power_users += recent > self.power_threshold
            in_sources.append("rate_limit")
        for source in in_sources:
            summary.users_per_source[source] += 1
        summary.users_in_several_sources += len(in_sources) >= 2
        summary.users_without_rows += not in_sources
        summary.rule_breaking_users += breaks_rule

    def _billing(self, profile: _Profile, user_id: int) -> tuple[LegacyBilling, str]:
        r = self._rng(profile.index, _BILLING)
        if profile.is_rule_breaker:
            usd, uah, kind = -_cents(r.randint(100, 5000)), Decimal("0.00"), "negative"
        else:
            kind = r.choices(BALANCE_KINDS, BALANCE_WEIGHTS)[0]
            usd = _cents(r.randint(1, 50000)) if kind in ("usd_only", "both") else Decimal("0.00")
            uah = (
                _cents(r.randint(10000, 2000000))
                if kind in ("uah_only", "both")
                else Decimal("0.00")
            )
        row = LegacyBilling(user_id=user_id, balance_usd=usd, balance_uah=uah)
        return row, kind

    def _account(self, profile: _Profile, user_id: int) -> LegacyAccount:
        r = self._rng(profile.index, _ACCOUNT)
        plan = r.choices(PLANS, PLAN_WEIGHTS)[0]
        if profile.is_rule_breaker:
            balance = -_cents(r.randint(1, 9999))
        elif plan == "free" and r.random() < 1 / 3:
            balance = Decimal("0.00")
        else:
            balance = _cents(r.randint(0, BALANCE_CAP_CENTS[plan]))
        status, started, ends, customer, price = "", None, None, "", ""
        customer_id = f"cus_S{self.seed}U{profile.index:06d}"
        if plan != "free":
            status = r.choices(SUBSCRIPTION_STATUSES, SUBSCRIPTION_WEIGHTS)[0]
            age_days = r.randint(30, min(720, profile.joined_days - 1))
            started = self.ref - timedelta(days=age_days, seconds=r.randrange(86400))
            ends_in_days = r.randint(-10, 30) if status == "canceled" else r.randint(1, 30)
            ends = self.ref + timedelta(days=ends_in_days)
            customer = customer_id
            price = f"price_{plan}_{'yearly' if r.random() < 0.2 else 'monthly'}"
        elif r.random() < FORMER_SUBSCRIBERS:
            status = "canceled"
            age_days = r.randint(120, min(900, profile.joined_days - 1))
            started = self.ref - timedelta(days=age_days, seconds=r.randrange(86400))
            ends = started + timedelta(days=r.randint(30, 90))
            customer = customer_id
        preferences = {
            "language": r.choice(LANGUAGES),
            "theme": r.choice(("light", "dark")),
            "email_notifications": r.random() < 0.7,
        }
        usage_stats = {}
        if r.random() < 0.8:
            usage_stats = {
                "operations_total": r.randint(0, 5000),
                "projects": r.randint(0, 12),
                "last_active": (self.ref - timedelta(days=r.randint(0, 90))).date().isoformat(),
            }
        return LegacyAccount(
            user_id=user_id,
            plan=plan,
            credits_balance=balance,
            subscription_status=status,
            subscription_started_at=started,
            subscription_ends_at=ends,
            stripe_customer_id=customer,
            stripe_price_id=price,
            preferences=preferences,
            usage_stats=usage_stats,
        )

    def _payments(self, profile: _Profile, account: LegacyAccount) -> list[LegacyPayment]:
        r = self._rng(profile.index, _PAYMENTS)
        since = account.subscription_started_at
        moments = _moments(r, since, self.ref, r.randint(1, 5))
        payments = []
        for number, moment in enumerate(moments):
            if r.random() < 0.75:
                amount = PRICE_CENTS[account.stripe_price_id]
            else:
                amount = r.choice(TOP_UP_CENTS)
            payments.append(
                LegacyPayment(
                    user_id=account.user_id,
                    stripe_payment_intent_id=f"pi_S{self.seed}U{profile.index:06d}N{number}",
                    amount=amount,
                    currency="usd",
                    status=r.choices(PAYMENT_STATUSES, PAYMENT_WEIGHTS)[0],
                    created_at=moment,
                )
            )
        return payments

    def _ledger(self, profile: _Profile, account: LegacyAccount) -> list[LegacyCreditTransaction]:
        r = self._rng(profile.index, _LEDGER)
        target = int(account.credits_balance * 100)
        deltas = [(2000, "signup_bonus")]
        running = 2000
        for _ in range(r.randint(0, 5)):
            draw = r.random()
            if draw < 0.3:
                delta, reason = r.choice(PURCHASE_CENTS), "purchase"
            elif draw < 0.5:
                delta, reason = LEGACY_MONTHLY_GRANT_CENTS[account.plan], "monthly_grant"
            elif draw < 0.95:
                delta, reason = -r.randint(0, running), "usage"
            else:
                delta, reason = r.randint(-min(running, 1000), 1000), "admin_adjustment"
            if delta:
                deltas.append((delta, reason))
                running += delta
        closing = target - running
        if closing:
            deltas.append((closing, "usage" if closing < 0 else "purchase"))
        if profile.is_inconsistent:
            stray = r.randint(1, 5000) * r.choice((1, -1))
            position = r.randint(1, len(deltas))
            deltas.insert(position, (stray, "usage" if stray < 0 else "purchase"))
        moments = _moments(r, profile.joined, self.ref, len(deltas))
        entries = []
        for number, ((delta, reason), moment) in enumerate(zip(deltas, moments, strict=True)):
            event_id, metadata = "", {}
            if reason == "purchase":
                event_id = f"evt_S{self.seed}U{profile.index:06d}T{number}"
                metadata = {"package": f"{abs(delta) // 100} credits"}
            elif reason == "usage":
                metadata = {"operation": r.choices(OPERATION_KINDS, OPERATION_WEIGHTS)[0]}
            elif reason == "monthly_grant":
                metadata = {"period": moment.strftime("%Y-%m")}
            elif reason == "admin_adjustment":
                metadata = {"note": "support"}
            entries.append(
                LegacyCreditTransaction(
                    user_id=account.user_id,
                    delta=_cents(delta),
                    reason=reason,
                    stripe_event_id=event_id,
                    metadata=metadata,
                    created_at=moment,
                )
            )
        return entries

    def _operations(self, profile: _Profile, user_id: int) -> list[LegacyOperation]:
        r = self._rng(profile.index, _OPERATIONS)
        window_seconds = int(self.window.total_seconds())
        history_seconds = max(HISTORY_DAYS * 86400, window_seconds)
        if profile.is_power:
            threshold = self.power_threshold
            low = max(int(threshold) + 1, int(threshold * Decimal("1.17")))
            high = max(low, int(threshold * 5 / 3))
            # Inside the window, but clear of its oldest day: a run tomorrow still counts them.
            recent_seconds = max(86400, window_seconds - 86400)
            ages = [r.randint(1, recent_seconds) for _ in range(r.randint(low, high))]
            if history_seconds > window_seconds:
                ages += [
                    r.randint(window_seconds + 1, history_seconds) for _ in range(r.randint(0, 20))
                ]
        else:
            ages = [r.randint(1, HISTORY_DAYS * 86400) for _ in range(r.randint(1, 8))]
        kinds = r.choices(OPERATION_KINDS, OPERATION_WEIGHTS, k=len(ages))
        return [
            LegacyOperation(
                user_id=user_id, kind=kind, created_at=self.ref - timedelta(seconds=age)
            )
            for age, kind in sorted(zip(ages, kinds, strict=True), reverse=True)
        ]

    def _usage(self, profile: _Profile, account: LegacyAccount) -> list[LegacyUsage]:
        r = self._rng(profile.index, _USAGE)
        if r.random() >= 0.85:
            return []
        # A plan without monthly credits in CREDITS_PLANS is given a free plan's 20.00.
        monthly = self.plan_cents.get(account.plan, 0) or 2000
        within_allowance = r.random() < 0.8
        used = r.randint(0, monthly) if within_allowance else r.randint(monthly + 1, 2 * monthly)
        usage = [LegacyUsage(user_id=account.user_id, period=self.period, amount_used=_cents(used))]
        if r.random() < 0.5:
            usage.append(
                LegacyUsage(
                    user_id=account.user_id,
                    period=self.previous_period,
                    amount_used=_cents(r.randint(0, 2 * monthly)),
                )
            )
        return usage


def _cents(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)


def _moments(r: random.Random, since: datetime, until: datetime, count: int) -> list[datetime]:
    """`count` whole-second moments in [since, until), oldest first."""
    span = max(1, int((until - since).total_seconds()))
    since = since.replace(microsecond=0)
    return sorted(since + timedelta(seconds=r.randrange(span)) for _ in range(count))
