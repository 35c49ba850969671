"""The browser tests' Chromium: Debian's, launched with the flags this closed network needs."""

from pathlib import Path

import pytest
from django.db import connections

from tests.conftest import CHROMIUM

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
