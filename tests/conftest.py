"""Shared fixtures and the rules for tests that need real services.

The suite runs twice (see scripts/test): on SQLite, and on PostgreSQL when DATABASE_URL points
at one. Tests marked `postgres` need PostgreSQL's row locks, triggers and real concurrent
connections; without it they skip with the reason, except under CI=true, where a missing
service is a failure, never a silent skip. Tests marked `browser` need the `playwright` package
and Debian's chromium at CHROMIUM (never a browser Playwright downloads), under the same rule.

On PostgreSQL every test database (one per pytest-xdist worker) is a copy of one migrated
template (tests/pg_template.py). `--reuse-db` keeps pytest-django's own behaviour (an existing
test database is used as it is and migrated forward); `--create-db` rebuilds the template too.
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


@pytest.fixture(scope="session")
def django_db_setup(
    request,
    django_test_environment,
    django_db_blocker,
    django_db_use_migrations,
    django_db_keepdb,
    django_db_createdb,
    django_db_modify_db_settings,
):
    """pytest-django's setup, except that a PostgreSQL test database is cloned from the
    shared migrated template instead of migrated from zero."""
    from django.test.utils import setup_databases, teardown_databases
    from pytest_django.fixtures import _disable_migrations, _get_databases_for_setup

    from tests import pg_template

    verbosity = request.config.option.verbose
    reuse = django_db_keepdb and not django_db_createdb
    if connection.vendor != "postgresql" or reuse or not django_db_use_migrations:
        # pytest-django's own setup, as its django_db_setup does it
        if not django_db_use_migrations:
            _disable_migrations()
        aliases, serialized_aliases = _get_databases_for_setup(request.session.items)
        with django_db_blocker.unblock():
            config = setup_databases(
                verbosity=verbosity,
                interactive=False,
                aliases=aliases,
                serialized_aliases=serialized_aliases,
                keepdb=reuse,
            )
        yield
        if not django_db_keepdb:
            with django_db_blocker.unblock():
                teardown_databases(config, verbosity=verbosity)
        return

    with django_db_blocker.unblock():
        name = pg_template.create_from_template(rebuild=django_db_createdb, verbosity=verbosity)
    yield
    if not django_db_keepdb:
        with django_db_blocker.unblock():
            pg_template.drop(name)


@pytest.fixture(scope="session", autouse=True)
def migration_backups(tmp_path_factory):
    """Each test process (one per xdist worker) writes migration CSV backups to a folder of its
    own, never into the checkout's var/, and so do the processes the tests start."""
    from django.conf import settings

    folder = tmp_path_factory.mktemp("migration-backups")
    settings.CREDITS_MIGRATION_BACKUP_DIR = folder
    os.environ["CREDITS_MIGRATION_BACKUP_DIR"] = str(folder)
    return folder


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
