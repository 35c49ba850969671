"""Shared fixtures and the rules for tests that need real services.

The suite runs twice (see scripts/test): on SQLite, and on PostgreSQL when DATABASE_URL points
at one. Tests marked `postgres` need PostgreSQL's row locks, triggers and real concurrent
connections; without it they skip with the reason, except under CI=true, where a missing
service is a failure, never a silent skip. Tests marked `browser` need the `playwright` package
and Debian's chromium at CHROMIUM (never a browser Playwright downloads), under the same rule.
"""

import importlib.util
import os

import pytest
from django.db import connection
from rest_framework.test import APIClient

from tests.factories import UserFactory

IN_CI = os.environ.get("CI", "").lower() == "true"


REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
CHROMIUM = "/usr/bin/chromium"


def _redis_answers() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def _browser_missing() -> str:
    """Why a browser test cannot run here, or "" when it can."""
    if importlib.util.find_spec("playwright") is None:
        return "needs the playwright Python package: pip install 'playwright>=1.40,<2'"
    if not os.access(CHROMIUM, os.X_OK):
        return f"needs Debian's chromium at {CHROMIUM}: apt-get install chromium"
    return ""


def _missing_service(message):
    if IN_CI:
        pytest.fail(f"CI=true and this test {message}", pytrace=False)
    pytest.skip(message)


def pytest_runtest_setup(item):
    if item.get_closest_marker("postgres") and connection.vendor != "postgresql":
        _missing_service(
            "needs PostgreSQL: run with DATABASE_URL=postgres://... (scripts/test does both passes)"
        )
    if item.get_closest_marker("redis") and not _redis_answers():
        _missing_service(f"needs Redis at {REDIS_URL} (set TEST_REDIS_URL)")
    if item.get_closest_marker("browser"):
        missing = _browser_missing()
        if missing:
            _missing_service(missing)


@pytest.fixture
def redis_url():
    return REDIS_URL


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def account(user):
    from credits.services import credit_account_open

    return credit_account_open(user=user)


@pytest.fixture
def staff_user(db):
    return UserFactory(is_staff=True, username="staff", email="staff@example.com")


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def user_client(user):
    client = APIClient()
    client.force_authenticate(user=user)
    return client
