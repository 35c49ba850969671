"""Staff see and edit Stripe packs and plan prices, and settle webhook issues, in the admin."""

from decimal import Decimal

import pytest
from django.urls import reverse

from billing.models import CreditPack, IssueKind, StripeEventIssue
from tests.factories import CreditPackFactory, PlanPriceFactory

pytestmark = pytest.mark.django_db


def test_a_credit_pack_is_added_in_the_admin(admin_client):
    # when
    response = admin_client.post(
        reverse("admin:billing_creditpack_add"),
        {
            "stripe_price_id": "price_pack_500",
            "name": "500 credits",
            "credits": "500.00",
            "amount_cents": "4500",
            "currency": "USD",
            "is_active": "on",
        },
    )
    # then
    assert response.status_code == 302
    pack = CreditPack.objects.get(stripe_price_id="price_pack_500")
    assert (pack.credits, pack.amount_cents, pack.currency) == (Decimal("500.00"), 4500, "usd")


def test_a_plan_price_must_name_a_configured_plan(admin_client):
    # when
    response = admin_client.post(
        reverse("admin:billing_planprice_add"),
        {"stripe_price_id": "price_gold", "plan": "gold", "interval": "month", "is_active": "on"},
    )
    # then
    assert response.status_code == 200
    assert "Unknown plan" in response.content.decode()


def test_pack_and_plan_price_changelists_load(admin_client):
    # given
    CreditPackFactory(name="Starter")
    PlanPriceFactory(plan="business")
    # when
    packs = admin_client.get(reverse("admin:billing_creditpack_changelist"))
    prices = admin_client.get(reverse("admin:billing_planprice_changelist"))
    # then
    assert packs.status_code == prices.status_code == 200
    assert "Starter" in packs.content.decode()
    assert "price_business_month" in prices.content.decode()


def test_issues_are_listed_and_marked_resolved_by_staff(admin_client, admin_user):
    # given
    issue = StripeEventIssue.objects.create(
        stripe_event_id="evt_1",
        event_type="checkout.session.completed",
        kind=IssueKind.UNKNOWN_CUSTOMER,
        detail="No user has Stripe customer cus_x.",
        stripe_customer_id="cus_x",
    )
    url = reverse("admin:billing_stripeeventissue_changelist")
    # when
    listed = admin_client.get(url, {"is_resolved__exact": "0"})
    response = admin_client.post(
        url, {"action": "mark_resolved", "_selected_action": [issue.pk]}, follow=True
    )
    # then
    assert "cus_x" in listed.content.decode()
    assert response.status_code == 200
    issue.refresh_from_db()
    assert issue.is_resolved
    assert issue.resolved_by == admin_user
    assert issue.resolved_at is not None


def test_issues_cannot_be_added_or_deleted_in_the_admin(admin_client):
    # given
    issue = StripeEventIssue.objects.create(
        stripe_event_id="evt_2", event_type="invoice.paid", kind=IssueKind.UNKNOWN_PRICE, detail="x"
    )
    # when
    add = admin_client.get(reverse("admin:billing_stripeeventissue_add"))
    delete = admin_client.post(
        reverse("admin:billing_stripeeventissue_delete", args=[issue.pk]), {"post": "yes"}
    )
    # then
    assert add.status_code == 403
    assert delete.status_code == 403
    assert StripeEventIssue.objects.filter(pk=issue.pk).exists()
