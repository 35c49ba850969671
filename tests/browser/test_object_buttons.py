"""The staff actions as buttons on the objects' pages, in a real browser at a 1366x768 laptop
window: a credit admin grants from a customer's account page (as an expiring migration lot,
shown with the account's hold), a billing super admin approves a large grant from the
request's page, releases the hold and rolls a migration back from the objects' pages, and the
customer sees the new balance on /account/credits/. Screenshots of each page go to
test-artifacts/ (they are looked at: native admin look, nothing cut off)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse
from django.utils import timezone

from credits.models import ApprovalStatus, CreditAccount, CreditApprovalRequest, CreditLot
from credits.services import credit_hold_create
from migrations_app.models import MigrationStatus, UserMigration
from tests.browser.conftest import ARTIFACTS, LAPTOP, PASSWORD, log_in

pytestmark = [pytest.mark.browser, pytest.mark.postgres]


def test_grant_approve_and_roll_back_from_the_objects_pages(live_server, world, browser, settings):
    customer, migrated, credit_admin, super_admin = world
    settings.CREDITS_APPROVAL_THRESHOLD = Decimal("100")
    account = CreditAccount.objects.get(user=customer)
    ARTIFACTS.mkdir(exist_ok=True)

    # given a credit admin on the customer's account page, where a job holds 5.00
    hold = credit_hold_create(
        account=account,
        amount=Decimal("5.00"),
        idempotency_key="browser-render-1",
        description="Video render",
    )
    context = browser.new_context(viewport=LAPTOP)
    page = context.new_page()
    log_in(page, live_server.url, credit_admin.username)
    page.goto(live_server.url + reverse("admin:credits_creditaccount_change", args=[account.pk]))
    page.screenshot(path=str(ARTIFACTS / "account-page-buttons.png"), full_page=True)

    # when they grant 40 with the page's Grant button as migration credits expiring in 30
    # days, then ask for 500 (above the threshold)
    page.click("a.staff-action-button:text('Grant')")
    page.fill("#id_amount", "40")
    page.fill("#id_reason", "Outage goodwill")
    page.select_option("#id_category", "migration")
    expires = (timezone.now() + timedelta(days=30)).replace(second=0, microsecond=0)
    page.fill("#id_expires_at", timezone.localtime(expires).strftime("%Y-%m-%dT%H:%M"))
    page.screenshot(path=str(ARTIFACTS / "grant-form-lot-terms.png"), full_page=True)
    page.click("input[type=submit][value='Grant credits']")
    page.wait_for_selector(".messagelist")
    assert "balance now 60.00 (migration lot, expires" in page.inner_text(".messagelist")
    # the page shows the new lot beside the signup's and the hold, and fits the laptop
    page.goto(live_server.url + reverse("admin:credits_creditaccount_change", args=[account.pk]))
    assert "40.00 of 40.00" in page.inner_text("#lots")
    assert "20.00 of 20.00" in page.inner_text("#lots")
    assert "Video render" in page.inner_text("#holds")
    page.screenshot(path=str(ARTIFACTS / "account-page-lots-holds-1366.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= LAPTOP["width"]
    assert CreditLot.objects.get(account=account, amount=Decimal("40.00")).expires_at == expires
    page.click("a.staff-action-button:text('Grant')")
    page.fill("#id_amount", "500")
    page.fill("#id_reason", "Enterprise contract")
    page.click("input[type=submit][value='Grant credits']")
    page.wait_for_selector(".messagelist")
    assert "approval" in page.inner_text(".messagelist")
    context.close()

    # then the account shows 60.00, and a request waits
    account.refresh_from_db()
    assert account.balance == Decimal("60.00")
    request = CreditApprovalRequest.objects.get(account=account)
    assert request.status == ApprovalStatus.PENDING

    # when a billing super admin approves it from the request's page
    context = browser.new_context(viewport=LAPTOP)
    page = context.new_page()
    log_in(page, live_server.url, super_admin.username)
    page.goto(
        live_server.url + reverse("admin:credits_creditapprovalrequest_change", args=[request.pk])
    )
    page.screenshot(path=str(ARTIFACTS / "request-page-buttons.png"), full_page=True)
    page.click("a.staff-action-button:text('Approve')")
    page.screenshot(path=str(ARTIFACTS / "approve-confirmation.png"), full_page=True)
    page.click("input[type=submit][value='Approve']")
    page.wait_for_selector(".messagelist")
    assert "approved" in page.inner_text(".messagelist")

    # and releases the customer's hold from the account's page, with a reason
    page.goto(live_server.url + reverse("admin:credits_creditaccount_change", args=[account.pk]))
    page.click("#holds a.release-hold")
    page.fill("#id_reason", "Render crashed")
    page.screenshot(path=str(ARTIFACTS / "release-hold-confirmation.png"), full_page=True)
    page.click("input[type=submit][value='Release']")
    page.wait_for_selector(".messagelist")
    assert f"Released hold #{hold.pk}" in page.inner_text(".messagelist")
    assert "No active holds." in page.inner_text("#holds")

    # and rolls eve's migration back from the migration's page
    row = UserMigration.objects.get(user=migrated, source="usd_balance")
    page.goto(live_server.url + reverse("admin:migrations_app_usermigration_change", args=[row.pk]))
    page.screenshot(path=str(ARTIFACTS / "migration-page-buttons.png"), full_page=True)
    page.click("a.staff-action-button:text('Roll back')")
    page.wait_for_selector("#rollback-totals")
    page.screenshot(path=str(ARTIFACTS / "rollback-from-page.png"), full_page=True)
    page.fill("#id_reason", "Customer stays on legacy")
    page.click("input[type=submit][value='Yes, roll back']")
    page.wait_for_selector(".messagelist")
    assert "Rolled back eve@example.com (usd_balance): 25.00 credits reversed." in (
        page.inner_text(".messagelist")
    )
    # the lists fit the laptop's width: neither the page nor the result table scrolls sideways
    for name, url in (
        ("migrations", "admin:migrations_app_usermigration_changelist"),
        ("ledger", "admin:credits_credittransaction_changelist"),
        ("requests", "admin:credits_creditapprovalrequest_changelist"),
        ("accounts", "admin:credits_creditaccount_changelist"),
        ("holds", "admin:credits_credithold_changelist"),
    ):
        page.goto(live_server.url + reverse(url))
        page.screenshot(path=str(ARTIFACTS / f"{name}-list-1366.png"), full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= LAPTOP["width"], name
        overflow = page.evaluate(
            "(() => { const r = document.querySelector('#changelist .results');"
            " return r.scrollWidth - r.clientWidth; })()"
        )
        assert overflow <= 0, (name, overflow)
    context.close()

    # then the ledger and the History say so
    account.refresh_from_db()
    assert account.balance == Decimal("560.00")
    row.refresh_from_db()
    assert row.status == MigrationStatus.ROLLED_BACK
    assert LogEntry.objects.filter(object_id=str(request.pk)).exists()
    assert LogEntry.objects.filter(object_id=str(row.pk)).exists()

    # and the customer sees the new balance on their page
    context = browser.new_context(viewport=LAPTOP)
    page = context.new_page()
    page.goto(f"{live_server.url}/accounts/login/?next=/account/credits/")
    page.fill("#id_username", customer.username)
    page.fill("#id_password", PASSWORD)
    page.click("[type=submit]")
    page.wait_for_selector("text=560.00")
    # (the history is a second request of the page's script: wait for its rows)
    page.wait_for_selector("#history tbody tr")
    assert "Credits granted by support" in page.inner_text("body")
    page.screenshot(path=str(ARTIFACTS / "customer-balance-after.png"), full_page=True)
    context.close()
