"""The project as deployed: the health check, `check --deploy`, and settings from the environment.

Settings are read once at import, so each environment is tried in a fresh interpreter with
`project.settings` (not the test settings) and an environment that holds only what the test
sets: nothing leaks in from the shell that runs the suite (e.g. the PostgreSQL pass's
DATABASE_URL).
"""

import json
import os
import secrets
import socket
import subprocess
from pathlib import Path

import pytest
from django.urls import reverse

from tests.subprocesses import python

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Only what an interpreter needs to start; every setting comes from the test itself.
PASSED_THROUGH = (
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "SYSTEMROOT",
    "TMPDIR",
    "TEMP",
    "TMP",
    "PYTHONPATH",
)
TIMEOUT_SECONDS = 120
TEST_SECRET_KEY = secrets.token_urlsafe(64)

PRODUCTION_ENV = {
    "DEBUG": "false",
    "ALLOWED_HOSTS": "credits.example.com",
    "SECURE_SSL_REDIRECT": "true",
    "SESSION_COOKIE_SECURE": "true",
    "CSRF_COOKIE_SECURE": "true",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
    "SECURE_HSTS_PRELOAD": "true",
}
INSECURE_DEFAULT_WARNINGS = {
    "security.W004",  # no HSTS
    "security.W008",  # no SSL redirect
    "security.W012",  # session cookie not secure
    "security.W016",  # CSRF cookie not secure
}

SETTINGS_PROBE = """
import json
import django
from django.conf import settings
django.setup()
from django.db import connection
from project.celery import app
database = settings.DATABASES["default"]
print(json.dumps({
    "DEBUG": settings.DEBUG,
    "ENGINE": database["ENGINE"],
    "NAME": str(database["NAME"]),
    "HOST": database.get("HOST", ""),
    "PORT": str(database.get("PORT", "")),
    "USER": database.get("USER", ""),
    "CONN_MAX_AGE": database.get("CONN_MAX_AGE"),
    "CONN_HEALTH_CHECKS": database.get("CONN_HEALTH_CHECKS"),
    "driver": connection.Database.__name__,
    "CELERY_TASK_ALWAYS_EAGER": settings.CELERY_TASK_ALWAYS_EAGER,
    "celery_task_always_eager": app.conf.task_always_eager,
    "celery_broker_url": app.conf.broker_url,
    "EMAIL_BACKEND": settings.EMAIL_BACKEND,
    "EMAIL_HOST": settings.EMAIL_HOST,
    "SECRET_KEY": settings.SECRET_KEY,
    "CREDITS_SIGNUP_GRANT": str(settings.CREDITS_SIGNUP_GRANT),
}))
"""


def run_python(*args, env=None):
    """Run the project's interpreter in the project root with only the given environment (a
    SECRET_KEY unless the test sets one, or None to leave it unset)."""
    clean = {name: os.environ[name] for name in PASSED_THROUGH if name in os.environ}
    clean["DJANGO_SETTINGS_MODULE"] = "project.settings"
    clean["SECRET_KEY"] = TEST_SECRET_KEY
    clean.update(env or {})
    clean = {name: value for name, value in clean.items() if value is not None}
    return subprocess.run(
        [*python(), *args],
        cwd=PROJECT_ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
    )


def settings_with(env=None):
    result = run_python("-c", SETTINGS_PROBE, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def production_env():
    # token_urlsafe(64) is 86 characters drawn from 64 symbols: long and random enough.
    return {**PRODUCTION_ENV, "SECRET_KEY": secrets.token_urlsafe(64)}


def unused_local_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- /healthz -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_healthz_answers_ok_when_the_database_answers(client):
    # when
    response = client.get(reverse("healthz"))

    # then
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok"}}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_healthz_refuses_other_methods(client):
    # when
    response = client.post(reverse("healthz"))

    # then
    assert response.status_code == 405


def test_healthz_answers_unavailable_when_the_database_does_not():
    # given: PostgreSQL configured on a local port nothing listens on
    probe = (
        "import django; django.setup()\n"
        "from django.test import Client\n"
        "response = Client().get('/healthz')\n"
        "print(response.status_code, response.content.decode())\n"
    )
    env = {
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{unused_local_port()}/nothing",
        "ALLOWED_HOSTS": "testserver",
    }

    # when
    result = run_python("-c", probe, env=env)

    # then
    assert result.returncode == 0, result.stderr
    status_code, body = result.stdout.strip().splitlines()[-1].split(" ", 1)
    assert status_code == "503"
    assert json.loads(body) == {
        "status": "unavailable",
        "checks": {"database": "error: OperationalError"},
    }


# --- manage.py check --deploy -------------------------------------------------------------


def test_deploy_check_passes_with_production_settings():
    # when
    result = run_python(
        "manage.py", "check", "--deploy", "--fail-level", "WARNING", env=production_env()
    )

    # then
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNING" not in result.stdout + result.stderr


def test_deploy_check_reports_the_insecure_defaults():
    # when
    result = run_python("manage.py", "check", "--deploy", "--fail-level", "WARNING")

    # then
    assert result.returncode != 0
    output = result.stdout + result.stderr
    for warning in INSECURE_DEFAULT_WARNINGS:
        assert warning in output
    assert "security.W018" not in output  # DEBUG is off by default


def test_deploy_check_reports_the_development_key_of_debug():
    # when: DEBUG=true and no SECRET_KEY
    result = run_python("manage.py", "check", "--deploy", env={"DEBUG": "true", "SECRET_KEY": None})

    # then: it starts, with the development key, which the check flags
    output = result.stdout + result.stderr
    assert "security.W009" in output
    assert "security.W018" in output


@pytest.mark.parametrize("secret_key", [None, ""], ids=["unset", "empty"])
@pytest.mark.parametrize("command", [["manage.py", "check"], ["-c", SETTINGS_PROBE]])
def test_without_debug_a_missing_secret_key_refuses_to_start(secret_key, command):
    # when
    result = run_python(*command, env={"SECRET_KEY": secret_key})

    # then: a clear message, not a server signing with a known key
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY is not set" in result.stderr
    assert result.stdout == ""


def test_the_wsgi_application_refuses_to_load_without_a_secret_key():
    result = run_python("-c", "from project.wsgi import application", env={"SECRET_KEY": None})
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_deploy_check_reports_a_short_secret_key():
    # given
    env = {**production_env(), "SECRET_KEY": "too-short"}

    # when
    result = run_python("manage.py", "check", "--deploy", "--fail-level", "WARNING", env=env)

    # then
    assert result.returncode != 0
    assert "security.W009" in result.stdout + result.stderr


# --- settings from the environment --------------------------------------------------------


def test_defaults_are_the_embedded_setup():
    # when
    values = settings_with()

    # then
    assert values["DEBUG"] is False
    assert values["ENGINE"] == "django.db.backends.sqlite3"
    assert values["NAME"] == str(PROJECT_ROOT / "db.sqlite3")
    assert values["CELERY_TASK_ALWAYS_EAGER"] is True
    assert values["celery_task_always_eager"] is True
    assert values["EMAIL_BACKEND"] == "django.core.mail.backends.console.EmailBackend"
    assert values["SECRET_KEY"] == TEST_SECRET_KEY
    assert values["CREDITS_SIGNUP_GRANT"] == "20"


def test_database_url_selects_postgresql_through_psycopg():
    # when
    values = settings_with({"DATABASE_URL": "postgres://ledger:s3cret@db.internal:6543/ledger"})

    # then
    assert values["ENGINE"] == "django.db.backends.postgresql"
    assert values["driver"] == "psycopg"
    assert (values["HOST"], values["PORT"], values["USER"], values["NAME"]) == (
        "db.internal",
        "6543",
        "ledger",
        "ledger",
    )
    assert values["CONN_MAX_AGE"] == 60
    assert values["CONN_HEALTH_CHECKS"] is True


def test_celery_broker_url_turns_off_eager_tasks():
    # when
    values = settings_with({"CELERY_BROKER_URL": "redis://redis.internal:6379/0"})

    # then
    assert values["CELERY_TASK_ALWAYS_EAGER"] is False
    assert values["celery_task_always_eager"] is False
    assert values["celery_broker_url"] == "redis://redis.internal:6379/0"


def test_email_url_selects_smtp():
    # when
    values = settings_with({"EMAIL_URL": "smtp://mailer:s3cret@mail.example.com:587"})

    # then
    assert values["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    assert values["EMAIL_HOST"] == "mail.example.com"


@pytest.mark.parametrize(("raw", "expected"), [("true", True), ("false", False)])
def test_debug_is_read_from_the_environment(raw, expected):
    # when
    values = settings_with({"DEBUG": raw})

    # then
    assert values["DEBUG"] is expected


@pytest.mark.parametrize("raw", ["abc", "-1", "NaN", "Infinity"])
def test_bad_signup_grant_setting_is_refused_at_startup(raw):
    # when
    result = run_python("-c", SETTINGS_PROBE, env={"CREDITS_SIGNUP_GRANT": raw})

    # then
    assert result.returncode != 0
    assert "CREDITS_SIGNUP_GRANT" in result.stderr
