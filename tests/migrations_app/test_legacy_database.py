"""LEGACY_DATABASE_URL: the legacy tables in a second database, end to end in real processes
(two SQLite files): seed, execute, verify, roll back."""

import json
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.subprocesses import python

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_a_migration_reads_and_changes_legacy_rows_in_their_own_database(tmp_path):
    main, legacy = tmp_path / "main.sqlite3", tmp_path / "legacy.sqlite3"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "CELERY_BROKER_URL")
    }
    env.update(
        DATABASE_URL=f"sqlite:///{main}",
        LEGACY_DATABASE_URL=f"sqlite:///{legacy}",
        DJANGO_SETTINGS_MODULE="project.settings_test",
    )

    def manage(*args, expect=(0,)):
        result = subprocess.run(
            [*python(), "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert result.returncode in expect, result.stdout + result.stderr
        return result.stdout

    # given two databases and legacy users in the second
    # (the legacy database first: the data migration reads legacy_accounts from it)
    manage("migrate", "--noinput", "--run-syncdb", "--database", "legacy")
    manage("migrate", "--noinput", "--run-syncdb")
    manage("seed_legacy", "--users", "120", "--seed", "5", "--sources", "usd_balance,user_fields")
    with sqlite3.connect(main) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    assert "user_billing" not in tables
    with sqlite3.connect(legacy) as db:
        before = dict(db.execute("SELECT user_id, balance_usd FROM user_billing"))
    assert before

    # when
    manage("migrate_credits", "--execute", "--yes", f"--backup-dir={tmp_path}", expect=(0, 1))

    # then the ledger is in the main database, the legacy balances were zeroed in theirs
    manage("migrate_credits", "--verify")
    with sqlite3.connect(legacy) as db:
        after = dict(db.execute("SELECT user_id, balance_usd FROM user_billing"))
    negative = {user_id for user_id, value in before.items() if float(value) < 0}
    assert {user_id for user_id, value in after.items() if float(value) != 0} == negative
    with sqlite3.connect(main) as db:
        migrated = db.execute(
            "SELECT count(*) FROM migrations_app_usermigration WHERE status = 'COMPLETED'"
        ).fetchone()[0]
    assert migrated > 0

    status = json.loads(manage("migrate_credits", "--status", "--format", "json"))
    # what is left is the seeded rule breakers, FAILED and waiting for fixed data
    assert status["summary"]["users_to_migrate"] == status["summary"]["failed"]

    # and a rollback restores them there
    manage("migrate_credits", "--rollback", "--yes", "--all", "--force")
    with sqlite3.connect(legacy) as db:
        restored = dict(db.execute("SELECT user_id, balance_usd FROM user_billing"))
    assert restored == before
    manage("migrate_credits", "--verify")
