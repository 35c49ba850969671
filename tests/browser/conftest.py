"""The browser tests' Chromium: Debian's, launched with the flags this closed network needs."""

import io
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections

from tests.conftest import CHROMIUM
from tests.factories import (
    CreditAdminFactory,
    LegacyAccountFactory,
    LegacyBillingFactory,
    ProvisionedUserFactory,
    SuperAdminFactory,
)

PASSWORD = "correct horse battery"  # tests.factories.UserFactory's
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
LAPTOP = {"width": 1366, "height": 768}
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def browser(monkeypatch):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls the test makes
    # between page steps are still plain synchronous code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
        # Database connections opened while Playwright's loop ran are not the test's own;
        # close them, or the test database cannot be dropped at the end.
        connections.close_all()


@pytest.fixture
def world(transactional_db, tmp_path):
    """A signed-up customer, users migrated from user_fields and usd_balance (one of them
    fails), and the two staff roles."""
    customer = ProvisionedUserFactory(username="dora", email="dora@example.com")
    migrated = LegacyBillingFactory(
        user__username="eve", user__email="eve@example.com", balance_usd=Decimal("25.00")
    ).user
    LegacyBillingFactory(user__username="finn", balance_uah=Decimal("1000.00"))
    LegacyBillingFactory(user__username="hal", balance_usd=Decimal("-3.00"))
    for number in range(3):
        LegacyAccountFactory(user__username=f"legacy{number}", credits_balance=Decimal("60.00"))
    with pytest.raises(CommandError) as one_failed:  # hal's negative balance: exit 1
        call_command(
            "migrate_credits",
            "--execute",
            "--yes",
            "--source=user_fields",
            "--source=usd_balance",
            f"--backup-dir={tmp_path}",
            stdout=io.StringIO(),
        )
    assert one_failed.value.returncode == 1
    credit_admin = CreditAdminFactory(username="carla", email="carla@example.com")
    super_admin = SuperAdminFactory(username="sam", email="sam@example.com")
    return customer, migrated, credit_admin, super_admin


def log_in(page, base_url, username):
    page.goto(f"{base_url}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")
