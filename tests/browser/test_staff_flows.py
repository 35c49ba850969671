"""Staff flows in a real browser (Debian's chromium driven by Playwright) against a live server:
a credit admin finds a user by email and grants credits; a billing super admin rolls back a
migrated user. Screenshots of the grant form and the dashboard go to test-artifacts/."""

from decimal import Decimal

import pytest

from credits.models import CreditAccount, EntryKind
from migrations_app.models import MigrationStatus, UserMigration
from tests.browser.conftest import ARTIFACTS, log_in

pytestmark = [pytest.mark.browser, pytest.mark.postgres]


def test_credit_admin_grants_and_super_admin_rolls_back(live_server, world, browser):
    customer, migrated, credit_admin, super_admin = world
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()

    # given a credit admin, logged in, who finds the customer by email
    log_in(page, live_server.url, credit_admin.username)
    page.goto(f"{live_server.url}/admin/credits/creditaccount/")
    page.fill("#searchbar", "dora@example.com")
    page.press("#searchbar", "Enter")
    page.wait_for_selector("#result_list")
    assert page.locator("#result_list tbody tr").count() == 1

    # when they grant 50 credits with a reason
    page.check("#result_list tbody tr input.action-select")
    page.select_option("select[name=action]", "grant_credits")
    page.click("button[name=index]")
    page.wait_for_selector("#id_amount")
    page.fill("#id_amount", "50")
    page.fill("#id_reason", "Welcome back: outage on the 3rd")
    page.screenshot(path=str(ARTIFACTS / "grant-form.png"), full_page=True)
    page.click("input[type=submit][value='Grant credits']")

    # then they see the new balance and the entry on the account page
    page.wait_for_selector(".messagelist")
    assert "Granted 50.00 credits to dora@example.com; balance now 70.00." in page.inner_text(
        ".messagelist"
    )
    assert "70.00" in page.inner_text("#result_list")
    page.click("#result_list a:text('dora@example.com')")
    page.wait_for_selector("#ledger")
    ledger = page.inner_text("#ledger")
    assert "Welcome back: outage on the 3rd" in ledger
    assert "carla@example.com" in ledger
    page.screenshot(path=str(ARTIFACTS / "account-ledger.png"), full_page=True)
    account = CreditAccount.objects.get(user=customer)
    assert account.balance == Decimal("70.00")
    grant = account.entries.order_by("-id").first()
    assert (grant.kind, grant.amount, grant.actor_id) == (
        EntryKind.GRANT,
        Decimal("50.00"),
        credit_admin.pk,
    )
    context.close()

    # given a billing super admin on the migrations list
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    log_in(page, live_server.url, super_admin.username)
    page.goto(f"{live_server.url}/admin/migrations_app/usermigration/?q=eve%40example.com")
    page.wait_for_selector("#result_list")
    assert "Completed" in page.inner_text("#result_list")

    # when they roll back the migrated user, after the confirmation page
    page.check("#result_list tbody tr input.action-select")
    page.select_option("select[name=action]", "roll_back")
    page.click("button[name=index]")
    page.wait_for_selector("#rollback-lines")
    lines = page.inner_text("#rollback-lines")
    assert "eve@example.com" in lines
    assert "25.00" in lines
    page.screenshot(path=str(ARTIFACTS / "rollback-confirmation.png"), full_page=True)
    page.fill("#id_reason", "Customer stays on the legacy plan")
    page.click("input[type=submit][value='Yes, roll back']")

    # then the status changes
    page.wait_for_selector(".messagelist")
    assert "Rolled back eve@example.com (usd_balance): 25.00 credits reversed." in (
        page.inner_text(".messagelist")
    )
    assert "Rolled back" in page.inner_text("#result_list")
    assert UserMigration.objects.get(user=migrated).status == MigrationStatus.ROLLED_BACK

    # and the dashboard, linked from the admin index, shows it
    page.goto(f"{live_server.url}/admin/")
    page.click("a:text('Migration dashboard')")
    page.wait_for_selector("#status-chart svg")
    assert "usd_balance" in page.inner_text("#counts-by-source")
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
    context.close()
