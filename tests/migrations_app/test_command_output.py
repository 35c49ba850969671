"""migrate_credits as an operator reads it: the counts before "Type yes" (--execute and
--rollback), --yes for scripts, console email counted instead of printed, numbers as money and
counts, the failed users in --status, and the workers figure only where it applies."""

import io
import sys
import threading
from decimal import Decimal

import pytest
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from billing.models import LegacyBilling, UserProfile
from credits.models import CreditAccount, CreditTransaction
from credits.services import credit_spend
from migrations_app.console_email import CONSOLE_BACKEND, console_email_counted
from migrations_app.models import MigrationRun, MigrationStatus, UserMigration
from tests.factories import LegacyAccountFactory, LegacyBillingFactory
from tests.helpers import Terminal, sources_args, table_contents

pytestmark = pytest.mark.django_db

USD = sources_args("usd_balance")
WRITTEN = (
    MigrationRun,
    UserMigration,
    CreditAccount,
    CreditTransaction,
    UserProfile,
    LegacyBilling,
)


class Asked:
    """What the command had printed, and what was written, when it asked its question."""

    def __init__(self, answer: str):
        self.answer = answer
        self.prompts: list[str] = []
        self.printed: list[str] = []
        self.tables: list[dict] = []


@pytest.fixture
def on_a_terminal(monkeypatch, tmp_path):
    """Run migrate_credits with a terminal on stdin, answering `answer`; return the exit code,
    the output and what was seen at the question."""

    def run(*args, answer="yes", expect=0):
        out, err = io.StringIO(), io.StringIO()
        asked = Asked(answer)

        def answer_the_question(prompt):
            asked.prompts.append(prompt)
            asked.printed.append(out.getvalue())
            asked.tables.append(table_contents(*WRITTEN))
            return asked.answer

        monkeypatch.setattr(sys, "stdin", Terminal())
        monkeypatch.setattr("builtins.input", answer_the_question)
        code = 0
        try:
            call_command(
                "migrate_credits", *args, f"--backup-dir={tmp_path}", stdout=out, stderr=err
            )
        except CommandError as error:
            code = error.returncode
            err.write(str(error))
        assert code == expect, out.getvalue() + err.getvalue()
        return out.getvalue() + err.getvalue(), asked

    return run


def spend(user, amount: str) -> None:
    credit_spend(
        account=CreditAccount.objects.get(user=user),
        amount=Decimal(amount),
        idempotency_key=f"spend:{user.pk}:{amount}",
    )


# --- --execute: the plan's counts before the question ----------------------------------------


def test_execute_prints_the_plan_per_source_before_asking(on_a_terminal):
    # given: two sources, one user who would fail, one with nothing to migrate
    LegacyBillingFactory(balance_usd=Decimal("1200.00"))
    LegacyBillingFactory(balance_usd=Decimal("34.50"))
    LegacyBillingFactory(balance_usd=Decimal("-1.00"))
    LegacyAccountFactory(credits_balance=Decimal("7.25"))
    before = table_contents(*WRITTEN)
    # when
    out, asked = on_a_terminal("--execute", *sources_args("usd_balance", "user_fields"), expect=1)
    # then: the plan was printed before the question, and nothing was written by then
    (printed,) = asked.printed
    assert "usd_balance: 2 users to migrate, 1,234.50 credits; 1 would fail; 0 skipped" in printed
    assert "user_fields: 1 users to migrate, 7.25 credits; 0 would fail; 0 skipped" in printed
    assert "users to migrate: 3 (1,241.75 credits)" in printed
    assert "would fail: 1 (recorded failed with the reason; --dry-run lists them)" in printed
    assert "skipped: 0" in printed
    assert asked.prompts == ["Migrate 3 users (1,241.75 credits) now? Type yes to go on: "]
    assert asked.tables == [before]
    # and the run went on once confirmed
    assert UserMigration.objects.filter(status=MigrationStatus.COMPLETED).count() == 3
    assert "credits were granted: 1,241.75" in out


def test_execute_answered_no_writes_nothing(on_a_terminal):
    # given
    LegacyBillingFactory(balance_usd=Decimal("5.00"))
    before = table_contents(*WRITTEN)
    # when
    out, asked = on_a_terminal("--execute", *USD, answer="no", expect=2)
    # then
    assert asked.prompts == ["Migrate 1 user (5.00 credits) now? Type yes to go on: "]
    assert "Not confirmed; nothing was written." in out
    assert table_contents(*WRITTEN) == before


def test_execute_async_prints_the_plan_before_asking(on_a_terminal):
    # given
    LegacyBillingFactory(balance_usd=Decimal("8.00"))
    # when
    _, asked = on_a_terminal("--execute", "--async", "--no-notify", *USD, answer="no", expect=2)
    # then
    (printed,) = asked.printed
    assert "usd_balance: 1 users to migrate, 8.00 credits; 0 would fail; 0 skipped" in printed
    assert asked.prompts == [
        "Queue the migration of 1 user (8.00 credits) on the workers now? Type yes to go on: "
    ]
    assert not MigrationRun.objects.exists()


def test_execute_async_with_json_on_a_terminal_needs_yes(on_a_terminal):
    # given: a question would break the JSON on stdout
    LegacyBillingFactory(balance_usd=Decimal("8.00"))
    # when
    out, asked = on_a_terminal("--execute", "--async", "--format", "json", *USD, expect=2)
    # then
    assert asked.prompts == []
    assert "--execute --async --format json is for scripts: pass --yes." in out
    assert not MigrationRun.objects.exists()


# --- --rollback asks the same way --------------------------------------------------------------


def test_rollback_prints_its_counts_before_asking(migrate, on_a_terminal):
    # given: three migrated users, one of whom spent 4.00 of their 10.50; one rolled back before
    keeps = LegacyBillingFactory(balance_usd=Decimal("1500.00"))
    spender = LegacyBillingFactory(balance_usd=Decimal("10.50"))
    gone = LegacyBillingFactory(balance_usd=Decimal("2.00"))
    migrate("--execute", "--yes", *USD)
    spend(spender.user, "4.00")
    migrate("--rollback", "--yes", "--user", str(gone.user_id), *USD)
    before = table_contents(*WRITTEN)
    # when: without --force, answered no
    out, asked = on_a_terminal("--rollback", "--all", *USD, answer="no", expect=2)
    # then
    (printed,) = asked.printed
    assert "users to roll back: 2 (1,506.50 credits reversed)" in printed
    assert (
        "  of them 1 spent migrated credits, 4.00: they stay spent (recorded); --force would "
        "take 0.00 of them from their other credits" in printed
    )
    assert "left alone: 1 (already rolled back or not migrated)" in printed
    assert asked.prompts == ["Roll back 2 users (1,506.50 credits) now? Type yes to go on: "]
    assert "Not confirmed; nothing was written." in out
    assert table_contents(*WRITTEN) == before
    # when: with --force, answered yes
    out, asked = on_a_terminal("--rollback", "--all", "--force", *USD)
    # then
    (printed,) = asked.printed
    assert "users to roll back: 2 (1,506.50 credits reversed)" in printed
    assert (
        "  of them 1 spent migrated credits, 4.00: --force takes 0.00 of them from their "
        "other credits and records the shortfall, 4.00" in printed
    )
    assert asked.prompts == ["Roll back 2 users (1,506.50 credits) now? Type yes to go on: "]
    assert set(UserMigration.objects.values_list("status", flat=True)) == {
        MigrationStatus.ROLLED_BACK
    }
    assert LegacyBilling.objects.get(pk=keeps.pk).balance_usd == Decimal("1500.00")
    assert "users rolled back: 2" in out
    assert "  spent before the rollback (stays spent): 4.00" in out
    assert "  left unreversed (shortfall): 4.00" in out


def test_rollback_without_a_terminal_and_without_yes_refuses(migrate, monkeypatch):
    # given
    user = LegacyBillingFactory(balance_usd=Decimal("5.00")).user
    migrate("--execute", "--yes", *USD)
    monkeypatch.setattr(sys, "stdin", io.StringIO())
    before = table_contents(*WRITTEN)
    # when
    _, out = migrate("--rollback", "--user", str(user.pk), *USD, expect=2)
    # then: one line, and nothing written (no rollback run either)
    assert out.strip() == "Refusing to roll back without a terminal to confirm on; pass --yes."
    assert table_contents(*WRITTEN) == before


def test_rollback_with_json_on_a_terminal_needs_yes(migrate, on_a_terminal):
    # given
    LegacyBillingFactory(balance_usd=Decimal("5.00"))
    migrate("--execute", "--yes", *USD)
    before = table_contents(*WRITTEN)
    # when
    out, asked = on_a_terminal("--rollback", "--all", "--format", "json", *USD, expect=2)
    # then
    assert asked.prompts == []
    assert "--rollback --format json is for scripts: pass --yes." in out
    assert table_contents(*WRITTEN) == before


def test_rollback_with_yes_asks_nothing(migrate, on_a_terminal):
    # given
    LegacyBillingFactory(balance_usd=Decimal("5.00"))
    migrate("--execute", "--yes", *USD)
    # when
    out, asked = on_a_terminal("--rollback", "--yes", "--all", *USD)
    # then
    assert asked.prompts == []
    assert "users rolled back: 1" in out


# --- console email: counted, not printed ------------------------------------------------------


# Transactional: the emails go when each batch commits, as they do outside a test, inside the
# command's run.
@pytest.mark.django_db(transaction=True)
def test_console_email_is_counted_instead_of_printed(migrate, settings, capsys):
    # given: Django's console backend, the embedded default
    settings.EMAIL_BACKEND = CONSOLE_BACKEND
    LegacyBillingFactory(balance_usd=Decimal("5.00"))
    LegacyBillingFactory(balance_usd=Decimal("1234.50"))
    LegacyBillingFactory(balance_usd=Decimal("-1.00"))
    # when
    _, executed = migrate("--execute", "--yes", *USD, expect=1)
    _, rolled_back = migrate("--rollback", "--yes", "--all", *USD)
    # then: no email body anywhere, one line per kind of email
    printed = capsys.readouterr()
    for text in (printed.out, printed.err, executed, rolled_back):
        assert "Subject:" not in text
        assert "Content-Type:" not in text
    assert (
        'notifications: 2 "Your credits are ready" emails (console email: bodies not shown)'
        in executed
    )
    assert (
        'notifications: 1 "We hit a problem moving your account to credits" email'
        " (console email: bodies not shown)" in executed
    )
    assert (
        'notifications: 2 "Your account was rolled back to your previous billing" emails'
        " (console email: bodies not shown)" in rolled_back
    )
    # and the setting is as it was
    assert settings.EMAIL_BACKEND == CONSOLE_BACKEND


@pytest.mark.django_db(transaction=True)
def test_console_email_with_json_goes_to_stderr(settings, capsys, tmp_path):
    # given
    settings.EMAIL_BACKEND = CONSOLE_BACKEND
    LegacyBillingFactory(balance_usd=Decimal("5.00"))
    out, err = io.StringIO(), io.StringIO()
    # when
    call_command(
        "migrate_credits",
        "--execute",
        "--yes",
        "--format",
        "json",
        *USD,
        f"--backup-dir={tmp_path}",
        stdout=out,
        stderr=err,
    )
    # then: stdout is the JSON alone
    assert out.getvalue().lstrip().startswith("{")
    assert "notifications:" not in out.getvalue()
    assert 'notifications: 1 "Your credits are ready" email' in err.getvalue()
    assert "Subject:" not in capsys.readouterr().out


def test_other_email_backends_send_as_before(migrate, django_capture_on_commit_callbacks):
    # given: the tests' locmem backend
    LegacyBillingFactory(balance_usd=Decimal("5.00"))
    # when
    with django_capture_on_commit_callbacks(execute=True):
        _, out = migrate("--execute", "--yes", *USD)
    # then
    assert len(mail.outbox) == 1
    assert "notifications:" not in out


def test_the_tally_counts_emails_sent_from_many_threads(settings):
    # given
    settings.EMAIL_BACKEND = CONSOLE_BACKEND
    threads, per_thread = 8, 50
    barrier = threading.Barrier(threads)

    def send():
        barrier.wait()
        for index in range(per_thread):
            mail.send_mail(f"Your credits are ready: you received {index}", "", "a@b.c", ["d@e.f"])

    # when
    with console_email_counted() as tally:
        workers = [threading.Thread(target=send) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    # then
    assert tally.counts() == [("Your credits are ready", threads * per_thread)]
    assert settings.EMAIL_BACKEND == CONSOLE_BACKEND


def test_the_tally_leaves_other_backends_alone(settings):
    # given
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    # when
    with console_email_counted() as tally:
        mail.send_mail("Hello", "", "a@b.c", ["d@e.f"])
    # then
    assert tally is None
    assert len(mail.outbox) == 1


# --- numbers ----------------------------------------------------------------------------------


def test_money_has_two_places_and_separators_and_no_exponent(migrate):
    # given: a large balance, and dust worth a fraction of a cent (0.13 UAH at 0.024)
    LegacyBillingFactory(balance_usd=Decimal("26365.86"))
    LegacyBillingFactory(balance_uah=Decimal("0.13"))
    # when
    _, out = migrate("--dry-run", *USD)
    # then
    assert "  legacy USD        26,365.86" in out
    assert "  legacy UAH        0.13" in out
    assert "credits would be granted: 26,365.86" in out
    assert "rounding remainder kept: 0.00312" in out
    assert "26,365.86 credits" in out  # the user's line
    assert "E-" not in out and "E+" not in out


def test_a_remainder_of_zero_is_printed_as_zero(migrate):
    # given
    LegacyBillingFactory(balance_usd=Decimal("5.00"))
    # when
    _, out = migrate("--execute", "--yes", *USD)
    _, verified = migrate("--verify", *USD)
    # then
    assert "rounding remainder kept: 0.00" in out
    assert "E-" not in out
    assert "usd_balance: completed 1" in verified
    assert "  rounding remainder     0.00" in verified
    assert "  credits granted        5.00" in verified
    assert "E-" not in verified


# --- status: the failed users it points to ----------------------------------------------------


def test_status_carries_the_failed_users(migrate):
    # given
    broken = LegacyBillingFactory(balance_usd=Decimal("-5.00"))
    LegacyBillingFactory(balance_usd=Decimal("5.00"))
    migrate("--execute", "--yes", *USD, expect=1)
    # when
    _, facts = migrate("--status", "--format", "json", *USD)
    _, text = migrate("--status", *USD)
    # then
    assert facts["failures"] == [
        {
            "user_id": broken.user_id,
            "email": broken.user.email,
            "source": "usd_balance",
            "error": "negative legacy balance (-5.00 USD, 0.00 UAH)",
        }
    ]
    assert "status: migration needed" in text
    assert "  users to migrate   1" in text
    assert "  usd_balance: 1 to migrate; completed 1, failed 1" in text
    assert "failed users (1 of 1; --format json lists up to 100):" in text
    assert (
        f"  user {broken.user_id} {broken.user.email} [usd_balance]: negative legacy balance"
        in text
    )


# --- workers ------------------------------------------------------------------------------------


def test_the_workers_figure_is_printed_only_where_it_applies(migrate):
    # given
    LegacyBillingFactory(balance_usd=Decimal("5.00"))
    # when
    _, executed = migrate("--execute", "--yes", "--workers", "2", *USD)
    _, planned = migrate("--dry-run", *USD)
    # then
    if connection.vendor == "sqlite":
        assert "workers: 1 (SQLite runs batches one after another)" in executed
        assert "workers: 2" not in executed
    else:
        assert "workers: 2" in executed
    assert "workers" not in planned  # a dry run runs no batches at once
