"""migrate_credits on a real terminal (a pseudo-terminal), as an operator runs it on production:
the plan's counts before "Type yes", the rollback's question, the progress bar left on screen at
100% with its elapsed time and rate, and console email (the default backend) counted, never
printed. The command is its own process on the project's settings, reading the PostgreSQL test
database, so what it is given is committed first."""

import fcntl
import io
import os
import pty
import re
import select
import struct
import subprocess
import termios
import time
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

from billing.models import LegacyBilling
from credits.models import CreditAccount, CreditTransaction
from migrations_app.models import MigrationRun, MigrationStatus, UserMigration
from tests.factories import LegacyBillingFactory
from tests.subprocesses import python

ROOT = Path(__file__).resolve().parents[2]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
PROMPT = "Type yes to go on: "
TIMEOUT = 60

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def environment() -> dict[str, str]:
    """The test database, the project's own settings (console email, Celery without a
    broker), a terminal type."""
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    if db["PASSWORD"]:
        url = url.replace("@", f":{db['PASSWORD']}@", 1)
    env = {key: value for key, value in os.environ.items() if key not in ("CELERY_BROKER_URL",)}
    env.pop("EMAIL_URL", None)
    env.update(DATABASE_URL=url, DJANGO_SETTINGS_MODULE="project.settings", TERM="xterm")
    return env


class Terminal:
    """migrate_credits on a pseudo-terminal of 120 columns: stdin, stdout and stderr all."""

    def __init__(self, *args: str):
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        self.master, self.raw = master, b""
        self.process = subprocess.Popen(
            [*python(), "manage.py", "migrate_credits", *args],
            cwd=ROOT,
            env=environment(),
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
        )
        os.close(slave)

    @property
    def screen(self) -> str:
        """What was shown, without colours; a carriage return stays (the bar redraws with it)."""
        return ANSI.sub("", self.raw.decode(errors="replace")).replace("\r\n", "\n")

    def read_until(self, text: str) -> str:
        deadline = time.monotonic() + TIMEOUT
        while text not in self.screen:
            if not self._read(deadline - time.monotonic()):
                pytest.fail(f"{text!r} never came; the terminal showed:\n{self.screen}")
        return self.screen

    def type(self, line: str) -> None:
        os.write(self.master, line.encode())

    def finish(self) -> int:
        """Read to the end; the exit code."""
        deadline = time.monotonic() + TIMEOUT
        while self._read(deadline - time.monotonic()):
            pass
        code = self.process.wait(timeout=TIMEOUT)
        os.close(self.master)
        return code

    def _read(self, timeout: float) -> bool:
        if timeout <= 0 or not select.select([self.master], [], [], timeout)[0]:
            return False
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # EIO: the command has closed the terminal
            return False
        self.raw += chunk
        return bool(chunk)


def bar_lines(screen: str) -> list[str]:
    """Each state of the progress bar drawn, in order (the bar redraws after a carriage
    return)."""
    return [part for part in re.split(r"[\r\n]", screen) if "%|" in part]


def assert_no_email_body(screen: str) -> None:
    assert "Content-Type:" not in screen
    assert "Subject:" not in screen
    assert "MIME-Version" not in screen


def test_execute_shows_the_plan_asks_and_keeps_the_bar_at_100_percent(tmp_path):
    # given: two users to migrate and one whose balance breaks a rule
    for amount in ("5.00", "1234.50", "-1.00"):
        LegacyBillingFactory(balance_usd=Decimal(amount))
    terminal = Terminal("--execute", "--source", "usd_balance", f"--backup-dir={tmp_path}")
    # when: at the question
    asked = terminal.read_until(PROMPT)
    # then: the counts came first, and nothing is written yet
    assert "usd_balance: 2 users to migrate, 1,239.50 credits; 1 would fail; 0 skipped" in asked
    assert "users to migrate: 2 (1,239.50 credits)" in asked
    assert "would fail: 1" in asked
    assert asked.rstrip().endswith("Migrate 2 users (1,239.50 credits) now? Type yes to go on:")
    assert not MigrationRun.objects.exists()
    # when
    terminal.type("yes\n")
    code = terminal.finish()
    screen = terminal.screen
    # then: migrated (exit 1: the one that breaks a rule is recorded FAILED)
    assert code == 1, screen
    assert UserMigration.objects.filter(status=MigrationStatus.COMPLETED).count() == 2
    assert UserMigration.objects.filter(status=MigrationStatus.FAILED).count() == 1
    # the bar stays at 100% with the elapsed time and the rate
    last = bar_lines(screen)[-1]
    assert "100%" in last and "3/3" in last and "user/s" in last, last
    assert re.search(r"\[\d\d:\d\d<", last), last
    # the users' lines are not mixed into the bar
    for part in re.split(r"[\r\n]", screen):
        assert not ("%|" in part and "[usd_balance]" in part), part
    # and the emails are counted, not shown
    assert_no_email_body(screen)
    assert (
        'notifications: 2 "Your credits are ready" emails (console email: bodies not shown)'
        in screen
    )
    assert 'notifications: 1 "We hit a problem moving your account to credits" email' in screen


def test_execute_answered_no_writes_nothing(tmp_path):
    # given
    legacy = LegacyBillingFactory(balance_usd=Decimal("5.00"))
    terminal = Terminal("--execute", "--source", "usd_balance", f"--backup-dir={tmp_path}")
    terminal.read_until(PROMPT)
    # when
    terminal.type("no\n")
    code = terminal.finish()
    # then
    assert code == 2, terminal.screen
    assert "Not confirmed; nothing was written." in terminal.screen
    assert not MigrationRun.objects.exists()
    assert not UserMigration.objects.exists()
    assert not CreditAccount.objects.filter(user_id=legacy.user_id).exists()
    assert LegacyBilling.objects.get(pk=legacy.pk).balance_usd == Decimal("5.00")


def test_rollback_asks_with_its_counts(tmp_path):
    # given: a migrated user
    legacy = LegacyBillingFactory(balance_usd=Decimal("5.00"))
    call_command(
        "migrate_credits",
        "--execute",
        "--yes",
        "--source",
        "usd_balance",
        f"--backup-dir={tmp_path}",
        stdout=io.StringIO(),
    )
    entries = CreditTransaction.objects.count()
    terminal = Terminal("--rollback", "--user", str(legacy.user_id), "--source", "usd_balance")
    # when: at the question
    asked = terminal.read_until(PROMPT)
    # then
    assert "users to roll back: 1 (5.00 credits reversed)" in asked
    assert "left alone: 0" in asked
    assert asked.rstrip().endswith("Roll back 1 user (5.00 credits) now? Type yes to go on:")
    assert CreditTransaction.objects.count() == entries
    # when
    terminal.type("yes\n")
    code = terminal.finish()
    screen = terminal.screen
    # then
    assert code == 0, screen
    assert UserMigration.objects.get(user_id=legacy.user_id).status == MigrationStatus.ROLLED_BACK
    assert LegacyBilling.objects.get(pk=legacy.pk).balance_usd == Decimal("5.00")
    last = bar_lines(screen)[-1]
    assert "100%" in last and "1/1" in last and "user/s" in last, last
    assert_no_email_body(screen)
    assert (
        'notifications: 1 "Your account was rolled back to your previous billing" email'
        " (console email: bodies not shown)" in screen
    )
