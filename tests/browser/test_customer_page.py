"""The customer's balance page in a real browser (Debian's chromium driven by Playwright)
against a live server, at a laptop's 1366x768 window: a customer logs in on the site's login
page, sees their balance and history, and after a staff grant sees the new balance and the
entry once the page is reloaded, then what a hold reserves and when credits expire.
Screenshots go to test-artifacts/ (not committed)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from credits.models import CreditAccount, EntryKind
from credits.services import credit_grant, credit_hold_create
from credits.services.staff import credit_staff_grant
from tests.browser.conftest import ARTIFACTS, LAPTOP, PASSWORD
from tests.factories import CreditAdminFactory, ProvisionedUserFactory

pytestmark = [pytest.mark.browser, pytest.mark.postgres]


def history_rows(page) -> list[str]:
    return [row.inner_text() for row in page.locator("#history tbody tr").all()]


def test_a_customer_sees_the_balance_and_a_staff_grant_after_reload(
    live_server, transactional_db, browser
):
    # given a signed-up customer (20.00 welcome credits) and a credit admin
    customer = ProvisionedUserFactory(
        username="dora@example.com", email="dora@example.com", is_staff=False
    )
    credit_admin = CreditAdminFactory(username="carla", email="carla@example.com")
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport=LAPTOP, locale="en-US", timezone_id="UTC")
    page = context.new_page()

    # when the customer opens the balance page, logs in, and lands on it
    page.goto(f"{live_server.url}/account/credits/")
    page.wait_for_selector("form.login")
    assert "/accounts/login/?next=/account/credits/" in page.url
    page.screenshot(path=str(ARTIFACTS / "customer-login.png"), full_page=True)
    page.fill("#id_username", customer.username)
    page.fill("#id_password", PASSWORD)
    page.click("form.login button[type=submit]")
    page.wait_for_url(f"{live_server.url}/account/credits/")

    # then the page shows the balance and the welcome grant, read from the API
    page.wait_for_function("document.getElementById('balance').textContent === '20.00'")
    page.wait_for_selector("#history tbody tr")
    assert page.inner_text("#plan") == "free"
    assert page.inner_text("#available") == "20.00"
    assert page.locator("#held-row").is_hidden()
    assert len(history_rows(page)) == 1
    assert "20.00" in history_rows(page)[0]
    assert page.locator("#expiring-section").is_hidden()
    assert page.locator("#load-error").is_hidden()
    page.screenshot(path=str(ARTIFACTS / "customer-balance.png"), full_page=True)

    # when a credit admin grants 50.00 through the service, and the customer reloads
    account = CreditAccount.objects.get(user=customer)
    entry = credit_staff_grant(
        account=account,
        amount=Decimal("50.00"),
        idempotency_key="browser-test:grant",
        actor=credit_admin,
        reason="Sorry about the outage",
    )
    page.reload()

    # then the new balance shows and the grant heads the history
    page.wait_for_function("document.getElementById('balance').textContent === '70.00'")
    page.wait_for_function("document.querySelectorAll('#history tbody tr').length === 2")
    newest = history_rows(page)[0]
    assert "50.00" in newest
    assert "70.00" in newest
    page.screenshot(path=str(ARTIFACTS / "customer-balance-after-grant.png"), full_page=True)

    # and nothing on the page is wider than the window (nothing cut off)
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow == 0
    account.refresh_from_db()
    assert account.balance == Decimal("70.00")
    assert (entry.kind, entry.amount, entry.actor_id) == (
        EntryKind.GRANT,
        Decimal("50.00"),
        credit_admin.pk,
    )

    # when a job reserves 10.00 and 12.00 of promotional credits expiring in 10 days come in
    expires_at = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    expires_at += timedelta(days=10)
    credit_grant(
        account=account,
        amount=Decimal("12.00"),
        idempotency_key="browser-test:promotion",
        expires_at=expires_at,
        description="Winter promotion",
    )
    credit_hold_create(
        account=account, amount=Decimal("10.00"), idempotency_key="browser-test:hold"
    )
    page.reload()

    # then the page shows what is available, what is held and the next expiry with its date
    page.wait_for_function("document.getElementById('balance').textContent === '82.00'")
    page.wait_for_selector("#expiring-section", state="visible")
    assert page.inner_text("#available") == "72.00"
    assert page.inner_text("#held") == "10.00"
    assert page.locator("#held-row").is_visible()
    expiry_date = f"{expires_at:%B} {expires_at.day}, {expires_at.year}"
    assert f"12.00 credits expire on {expiry_date}." in page.inner_text("#expiring-section")
    assert page.get_attribute("#expiring-date", "datetime") == (
        expires_at.isoformat().replace("+00:00", "Z")
    )
    page.screenshot(path=str(ARTIFACTS / "customer-balance-held-expiring.png"), full_page=True)
    context.close()


def test_the_landing_page_and_the_admin_index_fit_a_laptop_window(
    live_server, transactional_db, browser
):
    # given
    ARTIFACTS.mkdir(exist_ok=True)
    admin = CreditAdminFactory(username="carla", email="carla@example.com", is_superuser=True)
    context = browser.new_context(viewport=LAPTOP)
    page = context.new_page()

    # when
    page.goto(f"{live_server.url}/")
    page.wait_for_selector(".cards")
    page.screenshot(path=str(ARTIFACTS / "landing.png"), full_page=True)
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", admin.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#collapsed-apps")
    page.screenshot(path=str(ARTIFACTS / "admin-index.png"), full_page=True)

    # then the dj-stripe group starts folded, and opens on a click
    assert page.locator("#collapsed-apps .app-djstripe").is_hidden()
    page.click("#collapsed-apps > summary")
    assert page.locator("#collapsed-apps .app-djstripe").is_visible()
    context.close()


def test_older_entries_follow_the_cursor_of_the_transactions_api(
    live_server, transactional_db, browser
):
    # given a customer with 55 entries: more than the API's first page of 50
    customer = ProvisionedUserFactory(
        username="dora@example.com", email="dora@example.com", is_staff=False
    )
    account = CreditAccount.objects.get(user=customer)
    for number in range(54):
        credit_grant(account=account, amount=Decimal("1.00"), idempotency_key=f"page:{number}")
    context = browser.new_context(viewport=LAPTOP)
    page = context.new_page()
    page.goto(f"{live_server.url}/accounts/login/?next=/account/credits/")
    page.fill("#id_username", customer.username)
    page.fill("#id_password", PASSWORD)
    page.click("form.login button[type=submit]")
    page.wait_for_function("document.querySelectorAll('#history tbody tr').length === 50")
    assert page.locator("#more").is_visible()

    # when
    page.click("#more")

    # then the last page is appended, oldest (the welcome grant) last, and the button goes
    page.wait_for_function("document.querySelectorAll('#history tbody tr').length === 55")
    assert "Welcome credits" in history_rows(page)[-1]
    assert page.locator("#more").is_hidden()
    assert page.inner_text("#balance") == "74.00"
    context.close()
