import io
import json
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from billing.models import UserProfile
from tests.factories import (
    LegacyAccountFactory,
    LegacyBillingFactory,
    LegacyCreditTransactionFactory,
    LegacyPaymentFactory,
    LegacyUsageFactory,
    ProvisionedUserFactory,
    UserFactory,
    operations,
    previous_period,
)


@pytest.fixture
def migrate(tmp_path):
    """Run migrate_credits; return (exit code, output). JSON output is parsed."""

    def run(*args, expect=0):
        out, err = io.StringIO(), io.StringIO()
        code = 0
        try:
            call_command(
                "migrate_credits", *args, f"--backup-dir={tmp_path}", stdout=out, stderr=err
            )
        except CommandError as error:
            code = error.returncode
            err.write(str(error))
        assert code == expect, out.getvalue() + err.getvalue()
        text = out.getvalue()
        wants_json = "--format=json" in args or ("--format" in args and "json" in args)
        if wants_json and text.strip():
            return code, json.loads(text)
        return code, text + err.getvalue()

    return run


@dataclass
class LegacyWorld:
    """Realistic legacy data covering all four sources, with the users by role."""

    pro: object  # user_fields (ledger and payments agree) and usd_balance
    free: object  # user_fields, fractional credits
    mismatched: object  # user_fields, legacy ledger does not sum to credits_balance
    negative: object  # user_fields, negative credits_balance: fails
    gold: object  # user_fields with a plan usage_tiers does not know: fails there
    uah: object  # usd_balance, UAH only
    mixed: object  # usd_balance, USD and UAH
    overdrawn: object  # usd_balance, negative: fails
    dust: object  # usd_balance, worth less than a cent at some rates
    power: object  # rate_limit, 301 operations in the window
    regular: object  # rate_limit, 300 in the window and older ones
    quiet: object  # rate_limit, a few operations
    signed_up: object  # provisioned at signup, no legacy data


@pytest.fixture
def legacy_world(db) -> LegacyWorld:
    now = timezone.now()
    pro = LegacyAccountFactory(
        user__username="pro",
        plan="pro",
        credits_balance=Decimal("260.00"),
        subscription_status="active",
        subscription_started_at=now - timedelta(days=40),
        subscription_ends_at=now + timedelta(days=20),
        stripe_customer_id="cus_pro",
        stripe_price_id="price_pro",
        preferences={"theme": "dark"},
        usage_stats={"exports": 12},
    ).user
    LegacyCreditTransactionFactory(user=pro, delta=Decimal("300.00"), reason="purchase")
    LegacyCreditTransactionFactory(user=pro, delta=Decimal("-40.00"), reason="usage")
    LegacyPaymentFactory(user=pro, amount=2900, status="PAID")
    LegacyPaymentFactory(user=pro, amount=2900, status="FAILED")
    LegacyBillingFactory(user=pro, balance_usd=Decimal("10.50"))
    LegacyUsageFactory(user=pro, amount_used=Decimal("60.25"))
    LegacyUsageFactory(user=pro, period=previous_period(), amount_used=Decimal("250.00"))

    free = LegacyAccountFactory(user__username="free", credits_balance=Decimal("12.50")).user
    LegacyCreditTransactionFactory(user=free, delta=Decimal("20.00"), reason="signup")
    LegacyCreditTransactionFactory(user=free, delta=Decimal("-7.50"), reason="usage")
    UserProfile.objects.create(user=free, plan="free", preferences={"lang": "uk"})

    mismatched = LegacyAccountFactory(
        user__username="mismatched", plan="business", credits_balance=Decimal("1000.00")
    ).user
    LegacyCreditTransactionFactory(user=mismatched, delta=Decimal("500.00"))
    LegacyUsageFactory(user=mismatched, amount_used=Decimal("1200.00"))

    negative = LegacyAccountFactory(
        user__username="negative", credits_balance=Decimal("-5.00")
    ).user
    gold = LegacyAccountFactory(
        user__username="gold", plan="gold", credits_balance=Decimal("7.77")
    ).user

    uah = LegacyBillingFactory(user__username="uah", balance_uah=Decimal("1000.00")).user
    mixed = LegacyBillingFactory(
        user__username="mixed", balance_usd=Decimal("3.33"), balance_uah=Decimal("12.34")
    ).user
    overdrawn = LegacyBillingFactory(user__username="overdrawn", balance_usd=Decimal("-5.00")).user
    dust = LegacyBillingFactory(user__username="dust", balance_uah=Decimal("0.13")).user

    power = UserFactory(username="power")
    operations(power, 301, days_ago=2)
    regular = UserFactory(username="regular")
    operations(regular, 300, days_ago=29)
    operations(regular, 40, days_ago=31)
    quiet = UserFactory(username="quiet")
    operations(quiet, 3, days_ago=100)

    signed_up = ProvisionedUserFactory(username="signed_up")
    return LegacyWorld(
        pro=pro,
        free=free,
        mismatched=mismatched,
        negative=negative,
        gold=gold,
        uah=uah,
        mixed=mixed,
        overdrawn=overdrawn,
        dust=dust,
        power=power,
        regular=regular,
        quiet=quiet,
        signed_up=signed_up,
    )
