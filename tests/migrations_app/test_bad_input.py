"""Usage errors: a clear message, exit code 2, and nothing written."""

import os
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from billing.models import LegacyAccount, LegacyBilling, UserProfile
from credits.models import CreditAccount, CreditTransaction
from migrations_app.models import MigrationRun, UserMigration
from tests.factories import LegacyAccountFactory, LegacyBillingFactory
from tests.helpers import table_contents
from tests.subprocesses import python

pytestmark = pytest.mark.django_db

PROJECT_ROOT = Path(__file__).resolve().parents[2]
WATCHED = (
    MigrationRun,
    UserMigration,
    CreditAccount,
    CreditTransaction,
    UserProfile,
    LegacyBilling,
    LegacyAccount,
)


@pytest.fixture
def some_legacy_data(db):
    LegacyBillingFactory(user__username="alice", balance_usd=Decimal("5.00"))
    LegacyAccountFactory(credits_balance=Decimal("7.00"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--execute", "--yes", "--source", "bitcoin"),
            "--source: unknown source bitcoin; known sources: user_fields, usd_balance,"
            " rate_limit, usage_tiers.",
        ),
        (("--execute", "--yes", "--rate", "USD=abc"), "--rate USD=abc: 'abc' is not a number"),
        (
            ("--execute", "--yes", "--rate", "USD=-1"),
            "--rate USD=-1: a rate must be a number above 0.",
        ),
        (("--execute", "--yes", "--rate", "USD=0"), "--rate USD=0: a rate must be a number above"),
        (
            ("--execute", "--yes", "--rate", "EUR=1"),
            "--rate EUR=1: unknown currency EUR (USD or UAH).",
        ),
        (("--execute", "--yes", "--rate", "nan"), "--rate nan: 'nan' is not a number"),
        (
            ("--execute", "--yes", "--rate", "UAH=0.0241234"),
            "--rate UAH=0.0241234: at most 6 decimal places.",
        ),
        (
            ("--execute", "--yes", "--percent", "150"),
            "--percent 150: must be above 0 and at most 100.",
        ),
        (("--execute", "--yes", "--percent", "0"), "--percent 0: must be above 0 and at most 100."),
        (("--execute", "--yes", "--percent", "abc"), "--percent abc: not a number."),
        (("--execute", "--yes", "--user", "999999"), "--user 999999: no such user."),
        (
            ("--execute", "--yes", "--user", "nobody@example.com"),
            "--user nobody@example.com: no such user.",
        ),
        (("--rollback",), "--rollback needs --user ID|EMAIL (repeatable) or --all."),
        (("--rollback", "--source", "usd_balance"), "--rollback needs --user ID|EMAIL"),
        (
            ("--execute", "--yes", "--batch-size", "0"),
            "--batch-size 0: must be between 1 and 10000.",
        ),
        (("--execute", "--yes", "--workers", "0"), "--workers 0: must be between 1 and 16."),
        (("--execute", "--yes", "--workers", "17"), "--workers 17: must be between 1 and 16."),
        (("--execute", "--yes", "--all"), "--all goes with --rollback."),
        (("--execute", "--yes", "--force"), "--force goes with --rollback."),
    ],
    ids=[
        "unknown-source",
        "rate-not-a-number",
        "rate-negative",
        "rate-zero",
        "rate-unknown-currency",
        "rate-nan",
        "rate-too-precise",
        "percent-150",
        "percent-0",
        "percent-not-a-number",
        "unknown-user-id",
        "unknown-user-email",
        "rollback-without-users",
        "rollback-with-a-source-but-without-users",
        "batch-size-0",
        "workers-0",
        "workers-17",
        "all-without-rollback",
        "force-without-rollback",
    ],
)
def test_usage_error_exits_2_and_writes_nothing(migrate, some_legacy_data, args, message):
    # given
    before = table_contents(*WATCHED)
    # when
    _, out = migrate(*args, expect=2)
    # then
    assert message in out
    assert table_contents(*WATCHED) == before


def test_usage_errors_in_json_mode_exit_2_too(migrate, some_legacy_data):
    # given
    before = table_contents(*WATCHED)
    # when
    with pytest.raises(CommandError) as error:
        call_command("migrate_credits", "--execute", "--yes", "--percent", "0", "--format", "json")
    # then
    assert error.value.returncode == 2
    assert table_contents(*WATCHED) == before


def test_execute_and_dry_run_together_is_refused_by_the_parser(some_legacy_data):
    # given
    before = table_contents(*WATCHED)
    # when
    with pytest.raises(CommandError) as error:
        call_command("migrate_credits", "--execute", "--dry-run", "--yes")
    # then
    assert "argument --dry-run: not allowed with argument --execute" in str(error.value)
    assert table_contents(*WATCHED) == before


def test_execute_and_dry_run_together_exit_2_from_the_command_line():
    # given: a real command line, where argparse itself exits
    # when
    result = subprocess.run(
        [*python(), "manage.py", "migrate_credits", "--execute", "--dry-run"],
        cwd=PROJECT_ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "project.settings_test"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    # then
    assert result.returncode == 2, result.stderr
    assert "argument --dry-run: not allowed with argument --execute" in result.stderr


# --- issue 12: every usage error exits 2 with one line, before any run is started ----------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--execute", "--yes", "--user", "²"), "--user ²: no such user."),
        (
            ("--execute", "--yes", "--user", "99999999999999999999999"),
            "--user 99999999999999999999999: no such user.",
        ),
        (("--execute", "--yes", "--rate", "USD=1e30"), "--rate USD=1e30: '1e30' is not a number"),
        (("--execute", "--yes", "--rate", "USD=١٢"), "--rate USD=١٢: '١٢' is not a number"),
        (
            ("--execute", "--yes", "--rate", "USD=\uff11\uff12"),  # fullwidth 12
            "--rate USD=\uff11\uff12: '\uff11\uff12' is not a number",
        ),
        (("--execute", "--yes", "--rate", "USD=Infinity"), "'Infinity' is not a number"),
        (
            ("--execute", "--yes", "--percent", "\uff15\uff10"),
            "--percent \uff15\uff10: not a number.",
        ),
        (
            ("--execute", "--yes", "--rate", "USD=1000.000001"),
            "--rate USD=1000.000001: above CREDITS_MIGRATION_RATE_MAX (1000); pass "
            "--allow-high-rate if it is meant.",
        ),
        (
            ("--execute", "--yes", "--allow-high-rate", "--rate", "USD=1000000000000"),
            "--rate USD=1000000000000: a rate must be at most 999999999999.999999.",
        ),
        (("--rate", "USD=999999"), "above CREDITS_MIGRATION_RATE_MAX (1000)"),  # dry run too
        (("--analyze", "--rate", "UAH=5000"), "--rate UAH=5000: above CREDITS_MIGRATION_RATE_MAX"),
        (
            ("--execute", "--yes", "--batch-size", "10001"),
            "--batch-size 10001: must be between 1 and 10000.",
        ),
    ],
    ids=[
        "user-superscript-two",
        "user-beyond-bigint",
        "rate-exponent",
        "rate-arabic-indic-digits",
        "rate-fullwidth-digits",
        "rate-infinity",
        "percent-fullwidth-digits",
        "rate-above-max",
        "rate-beyond-the-column-even-when-allowed",
        "rate-above-max-in-a-dry-run",
        "rate-above-max-in-analyze",
        "batch-size-above-the-api-bound",
    ],
)
def test_more_usage_errors_exit_2_and_write_nothing(migrate, some_legacy_data, args, message):
    # given
    before = table_contents(*WATCHED)
    # when
    _, out = migrate(*args, expect=2)
    # then
    assert message in out
    assert "Traceback" not in out
    assert table_contents(*WATCHED) == before


@pytest.mark.parametrize("value", ["1_0", "\u0661\u0660", "ten"])
def test_a_batch_size_in_anything_but_ascii_digits_is_refused(some_legacy_data, value):
    # given
    before = table_contents(*WATCHED)
    # when
    with pytest.raises(CommandError) as error:
        call_command("migrate_credits", "--execute", "--yes", "--batch-size", value)
    # then: argparse's refusal (exit 2 from a command line)
    assert f"argument --batch-size: {value!r} is not a whole number" in str(error.value)
    assert table_contents(*WATCHED) == before
    assert not MigrationRun.objects.exists()


def test_a_rate_above_the_max_migrates_with_allow_high_rate(migrate, settings):
    # given
    settings.CREDITS_MIGRATION_RATE_MAX = Decimal("10")
    user = LegacyBillingFactory(balance_usd=Decimal("2.00")).user
    # when
    migrate("--execute", "--yes", "--allow-high-rate", "--rate", "USD=20", "--source=usd_balance")
    # then: an operator's run, recorded without an actor
    row = UserMigration.objects.get(user=user)
    assert row.initial_credits_granted == Decimal("40.00")
    assert MigrationRun.objects.get().triggered_by is None


def test_a_backup_dir_that_cannot_be_created_exits_2_and_starts_no_run(some_legacy_data, tmp_path):
    # given: the backup folder would be under a regular file
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    before = table_contents(*WATCHED)
    # when
    with pytest.raises(CommandError) as error:
        call_command(
            "migrate_credits",
            "--execute",
            "--yes",
            "--source=usd_balance",
            f"--backup-dir={blocker}/backups",
        )
    # then
    assert error.value.returncode == 2
    assert str(error.value).startswith(f"--backup-dir {blocker}/backups: cannot be created (")
    assert table_contents(*WATCHED) == before
    assert not MigrationRun.objects.exists()


def test_a_backup_dir_that_is_not_writable_exits_2_and_starts_no_run(some_legacy_data, tmp_path):
    # given
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o500)
    if os.access(folder, os.W_OK):  # root writes anywhere
        pytest.skip("running as a user that may write to a read-only folder")
    before = table_contents(*WATCHED)
    # when
    with pytest.raises(CommandError) as error:
        call_command(
            "migrate_credits",
            "--execute",
            "--yes",
            "--source=usd_balance",
            f"--backup-dir={folder}",
        )
    # then
    assert error.value.returncode == 2
    assert str(error.value) == f"--backup-dir {folder}: not writable."
    assert table_contents(*WATCHED) == before


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(("--rate", "USD=1e30"), id="rate-exponent"),
        pytest.param(("--rate", "USD=abc"), id="rate-not-a-number"),
        pytest.param(("--rate", "USD=5000"), id="rate-above-max"),
        pytest.param(("--source", "usd_balance", "--backup-dir", "{file}/x"), id="backup-dir"),
    ],
)
def test_usage_errors_print_one_line_and_exit_2_from_the_command_line(tmp_path, args):
    # given: a real command line; these are refused before the database is read
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    args = [arg.format(file=blocker) for arg in args]
    # when
    result = subprocess.run(
        [*python(), "manage.py", "migrate_credits", "--execute", "--yes", *args],
        cwd=PROJECT_ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "project.settings_test"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    # then
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("CommandError: --")
    assert result.stdout == ""
