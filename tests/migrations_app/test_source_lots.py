"""The lot each source's credits become: its category from CREDITS_LOT_CATEGORIES'
"migration:<source>" (else "migration"), and when it expires.

usage_tiers' allowance is this period's (`monthly`, expiring when the period ends); usd_balance
was bought with money (`paid`, never expires); rate_limit's grant is free (`promotional`,
expiring CREDITS_RATE_LIMIT_EXPIRY_DAYS after the migration, never by default); user_fields'
balance is `migration` and never expires.
"""

from datetime import timedelta
from decimal import Decimal
from importlib import import_module
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.db import connection
from django.utils import timezone

from billing.services import period_end
from credits.models import CreditLot, EntryKind, LotCategory
from credits.services import credit_expiry_run
from tests.factories import (
    LegacyAccountFactory,
    LegacyBillingFactory,
    LegacyUsageFactory,
    UserFactory,
    current_period,
    operations,
)
from tests.helpers import assert_ledger_consistent, balance_of, sources_args

pytestmark = pytest.mark.django_db


def lot_of(user, source: str) -> CreditLot:
    return CreditLot.objects.select_related("entry").get(
        account__user=user, entry__kind=EntryKind.MIGRATION, entry__migrated_from=source
    )


def test_usage_tiers_allowance_is_a_monthly_lot_expiring_when_the_period_ends(migrate):
    # given: a pro user who used 60 of 260 this period
    legacy = LegacyAccountFactory(plan="pro")
    LegacyUsageFactory(user=legacy.user, amount_used=Decimal("60"))
    # when
    migrate("--execute", "--yes", *sources_args("usage_tiers"))
    # then
    lot = lot_of(legacy.user, "usage_tiers")
    ends = period_end(current_period())
    assert (lot.category, lot.amount, lot.expires_at) == (
        LotCategory.MONTHLY,
        Decimal("200.00"),
        ends,
    )
    # when: the period ends
    credit_expiry_run(now=ends - timedelta(microseconds=1))
    assert balance_of(legacy.user_id) == Decimal("200.00")
    credit_expiry_run(now=ends)
    # then: what is left of the allowance is gone
    assert balance_of(legacy.user_id) == Decimal("0.00")
    assert_ledger_consistent()


def test_usd_balance_is_a_paid_lot_that_never_expires(migrate):
    # given
    legacy = LegacyBillingFactory(balance_usd=Decimal("10.50"), balance_uah=Decimal("1000.00"))
    # when
    migrate("--execute", "--yes", *sources_args("usd_balance"))
    # then
    lot = lot_of(legacy.user, "usd_balance")
    assert (lot.category, lot.amount, lot.expires_at) == (
        LotCategory.PAID,
        Decimal("34.50"),
        None,
    )


def test_rate_limit_grant_is_promotional_and_never_expires_by_default(migrate):
    # given
    user = UserFactory()
    operations(user, 3, days_ago=2)
    # when
    migrate("--execute", "--yes", *sources_args("rate_limit"))
    # then
    lot = lot_of(user, "rate_limit")
    assert (lot.category, lot.amount, lot.expires_at) == (
        LotCategory.PROMOTIONAL,
        Decimal("20.00"),
        None,
    )


def test_rate_limit_grant_expires_the_set_days_after_the_migration(migrate, settings):
    # given: rate_limit credits last 30 days
    settings.CREDITS_RATE_LIMIT_EXPIRY_DAYS = 30
    user = UserFactory()
    operations(user, 3, days_ago=2)
    # when
    started = timezone.now()
    migrate("--execute", "--yes", *sources_args("rate_limit"))
    finished = timezone.now()
    # then
    lot = lot_of(user, "rate_limit")
    assert lot.category == LotCategory.PROMOTIONAL
    assert started + timedelta(days=30) <= lot.expires_at <= finished + timedelta(days=30)
    # when: 30 days on
    credit_expiry_run(now=lot.expires_at)
    # then
    assert balance_of(user.pk) == Decimal("0.00")
    assert_ledger_consistent()


def test_user_fields_balance_is_a_migration_lot_that_never_expires(migrate):
    # given
    legacy = LegacyAccountFactory(plan="pro", credits_balance=Decimal("260.00"))
    # when
    migrate("--execute", "--yes", *sources_args("user_fields"))
    # then
    lot = lot_of(legacy.user, "user_fields")
    assert (lot.category, lot.amount, lot.expires_at) == (
        LotCategory.MIGRATION,
        Decimal("260.00"),
        None,
    )


def test_the_category_setting_decides_a_sources_lot(migrate, settings):
    # given: usd_balance's credits mapped to "migration" instead of "paid"
    settings.CREDITS_LOT_CATEGORIES = {
        **settings.CREDITS_LOT_CATEGORIES,
        "migration:usd_balance": "migration",
    }
    legacy = LegacyBillingFactory(balance_usd=Decimal("5.00"))
    # when
    migrate("--execute", "--yes", *sources_args("usd_balance"))
    # then
    assert lot_of(legacy.user, "usd_balance").category == LotCategory.MIGRATION


def test_two_sources_for_one_user_make_a_lot_each(migrate):
    # given: a user in user_fields and usd_balance (the default sources)
    legacy = LegacyAccountFactory(plan="pro", credits_balance=Decimal("100.00"))
    LegacyBillingFactory(user=legacy.user, balance_usd=Decimal("7.00"))
    # when
    migrate("--execute", "--yes", *sources_args("user_fields", "usd_balance"))
    # then
    lots = CreditLot.objects.filter(account__user=legacy.user).order_by("category")
    assert [(lot.category, lot.amount) for lot in lots] == [
        (LotCategory.MIGRATION, Decimal("100.00")),
        (LotCategory.PAID, Decimal("7.00")),
    ]
    assert balance_of(legacy.user_id) == Decimal("107.00")
    assert_ledger_consistent()


def test_lots_built_for_an_existing_ledger_take_each_sources_category(migrate):
    # given: users migrated from three sources, their ledger as it stood before lots existed
    # (the lots the services made removed, as credits migration 0010 found the database)
    usd = LegacyBillingFactory(balance_usd=Decimal("7.00"))
    fields = LegacyAccountFactory(plan="pro", credits_balance=Decimal("100.00"))
    user = UserFactory()
    operations(user, 3, days_ago=2)
    migrate("--execute", "--yes", *sources_args("usd_balance", "user_fields", "rate_limit"))
    build = import_module("credits.migrations.0010_build_lots_from_ledgers")
    editor = SimpleNamespace(connection=connection)
    build.remove_lots(apps, editor)
    # when
    build.build_lots(apps, editor)
    # then: each lot's category is its legacy source's, as for lots the services make
    assert lot_of(usd.user, "usd_balance").category == LotCategory.PAID
    assert lot_of(fields.user, "user_fields").category == LotCategory.MIGRATION
    assert lot_of(user, "rate_limit").category == LotCategory.PROMOTIONAL
    assert_ledger_consistent()
