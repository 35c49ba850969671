"""Monthly plan credits are a `monthly` lot that expires when its period ends (00:00 UTC on the
1st of the next month), whether beat or a paid invoice granted the month; with
CREDITS_MONTHLY_ROLLOVER_CAP up to the cap is kept one period more. The signup grant is a
`promotional` lot that never expires."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.models import UserProfile
from billing.services import monthly_credits_grant, period_end, user_signup
from billing.stripe.services import stripe_invoice_paid
from credits.models import CreditAccount, CreditLot, CreditTransaction, EntryKind, LotCategory
from credits.services import credit_expiry_run, credit_spend
from tests.billing import stripe_events
from tests.factories import PlanPriceFactory, ProvisionedUserFactory
from tests.helpers import assert_ledger_consistent

pytestmark = pytest.mark.django_db

DECEMBER = "2025-12"
JANUARY_1 = datetime(2026, 1, 1, tzinfo=UTC)
FEBRUARY_1 = datetime(2026, 2, 1, tzinfo=UTC)


def subscriber(plan="pro", customer=None) -> CreditAccount:
    user = ProvisionedUserFactory(provision__signup_grant=False)
    UserProfile.objects.filter(user=user).update(
        plan=plan,
        subscription_status="active",
        stripe_customer_id=customer,
        migration_completed_at=timezone.now(),
    )
    return CreditAccount.objects.get(user=user)


def expiries(account) -> list[Decimal]:
    return list(
        CreditTransaction.objects.filter(account=account, kind=EntryKind.EXPIRY)
        .order_by("pk")
        .values_list("amount", flat=True)
    )


def test_a_period_ends_at_the_first_instant_of_the_next_month_in_utc():
    assert period_end("2025-12") == JANUARY_1
    assert period_end("2026-01") == FEBRUARY_1
    assert period_end("2026-02") == datetime(2026, 3, 1, tzinfo=UTC)


def test_a_monthly_grant_is_a_monthly_lot_expiring_when_its_period_ends():
    # given
    account = subscriber("pro")
    # when
    monthly_credits_grant(period=DECEMBER)
    # then
    lot = CreditLot.objects.get(account=account)
    assert lot.category == LotCategory.MONTHLY
    assert (lot.amount, lot.remaining) == (Decimal("260.00"), Decimal("260.00"))
    assert lot.expires_at == JANUARY_1
    assert lot.entry.kind == EntryKind.MONTHLY_GRANT


def test_what_is_left_of_the_month_expires_at_its_end_in_one_entry():
    # given: December's 260, 60 spent
    account = subscriber("pro")
    monthly_credits_grant(period=DECEMBER)
    credit_spend(account=account, amount=Decimal("60"), idempotency_key="spend")
    # when: a moment before the period's end
    early = credit_expiry_run(now=JANUARY_1 - timedelta(microseconds=1))
    # then: nothing yet
    assert early.lots_expired == 0
    # when: at the period's end, twice
    credit_expiry_run(now=JANUARY_1)
    credit_expiry_run(now=JANUARY_1 + timedelta(minutes=5))
    # then: one expiry of the 200 left
    assert expiries(account) == [Decimal("-200.00")]
    account.refresh_from_db()
    assert (account.balance, account.total_earned, account.total_spent) == (
        Decimal("0.00"),
        Decimal("60.00"),
        Decimal("60.00"),
    )
    assert CreditLot.objects.get(account=account).remaining == Decimal("0.00")
    assert_ledger_consistent()


def test_with_a_rollover_cap_the_cap_is_kept_one_period_then_expires(settings):
    # given: a cap of 50; December's 260 with 60 spent, then January's 260
    settings.CREDITS_MONTHLY_ROLLOVER_CAP = Decimal("50")
    account = subscriber("pro")
    monthly_credits_grant(period=DECEMBER)
    credit_spend(account=account, amount=Decimal("60"), idempotency_key="spend")
    # when: December ends
    credit_expiry_run(now=JANUARY_1)
    # then: 150 of December's 200 expire, 50 are kept until February
    december = CreditLot.objects.get(account=account)
    assert expiries(account) == [Decimal("-150.00")]
    assert (december.remaining, december.rolled_over, december.expires_at) == (
        Decimal("50.00"),
        True,
        FEBRUARY_1,
    )
    # when: January is granted and half-way through the month the expiry runs again
    monthly_credits_grant(period="2026-01")
    credit_expiry_run(now=JANUARY_1 + timedelta(days=15))
    # then: nothing more
    assert expiries(account) == [Decimal("-150.00")]
    account.refresh_from_db()
    assert account.balance == Decimal("310.00")
    # when: January ends
    credit_expiry_run(now=FEBRUARY_1)
    # then: December's kept 50 expire (no second rollover); January keeps 50 of its 260
    december.refresh_from_db()
    january = CreditLot.objects.exclude(pk=december.pk).get(account=account)
    assert december.remaining == Decimal("0.00")
    assert (january.remaining, january.rolled_over) == (Decimal("50.00"), True)
    assert sorted(expiries(account)) == [Decimal("-210.00"), Decimal("-150.00"), Decimal("-50.00")]
    account.refresh_from_db()
    assert account.balance == Decimal("50.00")
    assert_ledger_consistent()


def test_an_invoice_granted_month_expires_when_that_month_ends():
    # given
    PlanPriceFactory(stripe_price_id="price_pro_monthly", plan="pro")
    account = subscriber("pro", customer="cus_paid")
    # when: December paid by invoice (its period starts 2025-12-01)
    stripe_invoice_paid(
        event_id="evt_invoice_december",
        event_type="invoice.paid",
        payload=stripe_events.invoice(price_id="price_pro_monthly", customer="cus_paid"),
    )
    # then
    lot = CreditLot.objects.get(account=account)
    assert (lot.category, lot.amount, lot.expires_at) == (
        LotCategory.MONTHLY,
        Decimal("260.00"),
        JANUARY_1,
    )
    # when: December ends
    credit_expiry_run(now=JANUARY_1)
    # then
    assert expiries(account) == [Decimal("-260.00")]
    assert_ledger_consistent()


def test_the_signup_grant_is_a_promotional_lot_that_never_expires(settings):
    # given
    settings.CREDITS_SIGNUP_GRANT = Decimal("20")
    # when
    user = user_signup(email="new@example.com", password=None)
    # then
    lot = CreditLot.objects.get(account__user=user)
    assert (lot.category, lot.amount, lot.expires_at) == (
        LotCategory.PROMOTIONAL,
        Decimal("20.00"),
        None,
    )
    assert credit_expiry_run(now=datetime(2999, 1, 1, tzinfo=UTC)).lots_expired == 0
