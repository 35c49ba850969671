"""The CSV backup, in the engine: its folder is checked before a run starts, and a backup that
cannot be written fails the run before anyone is migrated (`migration_execute_start`)."""

import csv
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from migrations_app import engine
from migrations_app.engine.backup import BackupUnavailable, backup_folder, backup_write
from migrations_app.models import MigrationRun, RunStatus, UserMigration
from migrations_app.services import migration_execute_start
from migrations_app.sources import Context
from tests.factories import LegacyBillingFactory, MigrationRunFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 5, 12, 30, 15, tzinfo=UTC)
CONTEXT = Context(rates={"USD": Decimal("1"), "UAH": Decimal("0.024")}, now=NOW)


def test_no_folder_is_needed_with_keep_legacy_or_without_a_source_that_changes_legacy(tmp_path):
    keeping = Context(rates=CONTEXT.rates, now=NOW, keep_legacy=True)
    assert (
        backup_folder(backup_dir=tmp_path / "a", sources=["usd_balance"], context=keeping) is None
    )
    assert (
        backup_folder(backup_dir=tmp_path / "b", sources=["user_fields"], context=CONTEXT) is None
    )
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_folder_under_a_file_is_refused_in_words(tmp_path):
    # given
    blocker = tmp_path / "file"
    blocker.write_text("")
    # when
    with pytest.raises(BackupUnavailable) as refused:
        backup_folder(backup_dir=blocker / "x", sources=["usd_balance"], context=CONTEXT)
    # then
    assert refused.value.folder == blocker / "x"
    assert refused.value.problem.startswith("cannot be created (")


def test_the_backup_holds_the_legacy_rows_of_the_run_in_one_file_per_source(tmp_path):
    # given
    legacy = LegacyBillingFactory(balance_usd=Decimal("7.25"), balance_uah=Decimal("99.99"))
    run = MigrationRunFactory()
    folder = backup_folder(backup_dir=tmp_path, sources=["usd_balance"], context=CONTEXT)
    # when
    (path,) = backup_write(
        folder=folder,
        sources=["usd_balance", "user_fields"],
        selection=engine.Selection(),
        context=CONTEXT,
        run=run,
    )
    # then
    assert path == tmp_path / f"usd_balance-run{run.pk}-20261105T123015.csv"
    with path.open() as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["user_id"] == str(legacy.user_id)
    assert Decimal(row["balance_usd"]) == Decimal("7.25")


def test_a_backup_that_cannot_be_written_fails_the_run_and_migrates_nobody(tmp_path, monkeypatch):
    # given: a folder that passes the check, and a disk that then refuses the file
    LegacyBillingFactory(balance_usd=Decimal("1.00"))

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("pathlib.Path.open", full_disk)
    # when
    with pytest.raises(BackupUnavailable) as refused:
        migration_execute_start(
            sources=["usd_balance"],
            context=CONTEXT,
            selection=engine.Selection(),
            parameters={"notify": False},
            backup_dir=tmp_path,
        )
    # then
    assert refused.value.problem == (
        "the backup could not be written (No space left on device); nothing was migrated"
    )
    (run,) = MigrationRun.objects.all()
    assert run.status == RunStatus.FAILED
    assert run.error.startswith("The backup could not be written: ")
    assert not UserMigration.objects.exists()
