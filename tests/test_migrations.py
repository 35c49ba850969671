"""Every migration, dj-stripe's included, applied from zero to an empty PostgreSQL database.

The rest of the suite creates third-party tables straight from their models for speed
(project/settings_test.py); this test is the one that runs the real migration graph the way
`manage.py migrate` does in production, and checks that no model change lacks a migration and
that the project's own migrations reverse.
"""

import os
import subprocess
import uuid
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from django.db import connection

from tests.subprocesses import python

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def manage(*args, database_url):
    env = {**os.environ, "DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": "project.settings"}
    env.pop("CELERY_BROKER_URL", None)
    return subprocess.run(
        [*python(), "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.fixture
def empty_database():
    params = connection.settings_dict
    name = f"migrations_check_{uuid.uuid4().hex[:12]}"
    server = dict(
        host=params["HOST"] or "127.0.0.1",
        port=params["PORT"] or 5432,
        user=params["USER"],
        password=params["PASSWORD"] or None,
    )
    with psycopg.connect(dbname="postgres", autocommit=True, **server) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    credentials = quote(server["user"]) + (
        f":{quote(server['password'])}" if server["password"] else ""
    )
    try:
        yield f"postgres://{credentials}@{server['host']}:{server['port']}/{name}", name, server
    finally:
        with psycopg.connect(dbname="postgres", autocommit=True, **server) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def post_entries_signatures(db) -> list[str]:
    return [
        row[0]
        for row in db.execute(
            "SELECT oid::regprocedure::text FROM pg_proc WHERE proname = 'credits_post_entries'"
        )
    ]


def test_every_migration_applies_from_zero_and_the_project_ones_reverse(empty_database):
    url, name, server = empty_database

    # when every migration runs on an empty database
    migrated = manage("migrate", "--noinput", database_url=url)
    assert migrated.returncode == 0, migrated.stderr

    # then the ledger's trigger and constraints are in place
    with psycopg.connect(dbname=name, **server) as db:
        triggers = {row[0] for row in db.execute("SELECT tgname FROM pg_trigger")}
        checks = {
            row[0]
            for row in db.execute(
                "SELECT conname FROM pg_constraint WHERE contype = 'c' AND conname LIKE 'credits_%'"
            )
        }
        djstripe_tables = db.execute(
            "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'djstripe_%'"
        ).fetchone()[0]
        functions = post_entries_signatures(db)
    assert "credits_ledger_append_only" in triggers
    # (0005 and 0006 installed a function for shared calls; 0007 dropped it with the combiner)
    assert functions == []
    assert {
        "credits_account_balance_non_negative",
        "credits_entry_balance_after_is_before_plus_amount",
        "credits_entry_amount_zero_only_for_history",
    } <= checks
    assert djstripe_tables > 50

    # and no model change is missing a migration
    pending = manage("makemigrations", "--check", "--dry-run", database_url=url)
    assert pending.returncode == 0, pending.stdout + pending.stderr

    # and the project's own migrations reverse, trigger included, and apply again: undoing
    # 0007 brings back the function as 0006 left it
    back = manage("migrate", "credits", "0006", "--noinput", database_url=url)
    assert back.returncode == 0, back.stderr
    with psycopg.connect(dbname=name, **server) as db:
        assert post_entries_signatures(db) == [
            "credits_post_entries(json,timestamp with time zone,text)"
        ]
    for app in ("migrations_app", "billing", "credits"):
        reversed_ = manage("migrate", app, "zero", "--noinput", database_url=url)
        assert reversed_.returncode == 0, reversed_.stderr
    with psycopg.connect(dbname=name, **server) as db:
        assert not db.execute(
            "SELECT 1 FROM pg_trigger WHERE tgname = 'credits_ledger_append_only'"
        ).fetchone()
        assert post_entries_signatures(db) == []
    again = manage("migrate", "--noinput", database_url=url)
    assert again.returncode == 0, again.stderr
