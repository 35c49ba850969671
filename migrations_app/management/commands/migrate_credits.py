"""`python manage.py migrate_credits`: move legacy billing onto the credit ledger.

One mode at a time, a dry run when none is given. Exit codes: 0 ok; 1 some users failed, a
rollback was refused, or verification found discrepancies; 2 a usage error or a refusal (bad
arguments, or --execute or --rollback without a terminal and without --yes). Usage errors
write nothing.

Before it writes, --execute and --rollback say what they are about to do and ask: --execute
shows a dry-run plan of the same selection (users and credits per source, failures expected),
--rollback the rollback preview the admin shows (what rolls back, what needs --force, what is
left alone); --yes skips the question for scripts. Text output is for people: amounts as money
(two places, thousands separated), counts as counts, key names as words; JSON keeps the stable
keys and exact amounts as strings.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from credits.api.serializers import MAX_ID
from migrations_app import engine
from migrations_app.console_email import EmailTally, console_email_counted
from migrations_app.engine.backup import BackupUnavailable
from migrations_app.engine.report import Outcome, Report, UserOutcome
from migrations_app.engine.rollback import rollback_preview, rollback_totals
from migrations_app.engine.selection import count_candidates
from migrations_app.exceptions import InvalidRunRequest, RunAlreadyActive
from migrations_app.models import MigrationStatus, RunMode, UserMigration
from migrations_app.run_request import RunRequest
from migrations_app.services import (
    migration_execute,
    migration_execute_start,
    migration_rollback,
    migration_run_fail,
    migration_run_finish,
    migration_run_launch,
    migration_run_start,
)
from migrations_app.sources import SOURCES, Context, get_source

MODES = ("analyze", "dry_run", "execute", "verify", "rollback", "status")
# --async turns --execute into "execute_async".
LINES_WITHOUT_VERBOSE = 20
FAILURES_IN_STATUS = 20
USAGE = 2
# Stays on screen at the end: 100%, the elapsed time and the rate.
PROGRESS_FORMAT = "{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}]"
# A rate or a percent as an operator types it: ASCII digits, an optional sign and point (no
# exponent, no "NaN", no digits of other scripts, which Decimal() would take).
PLAIN_DECIMAL = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)", re.ASCII)


def ascii_int(raw: str) -> int:
    """A whole number in ASCII digits (int() would take Arabic-Indic digits and "1_0")."""
    if not re.fullmatch(r"[+-]?[0-9]+", raw.strip(), re.ASCII):
        raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number")
    return int(raw)


def usage_error(message: str) -> CommandError:
    return CommandError(message, returncode=USAGE)


def money(value) -> str:
    """An amount as money: two places, thousands separated (26,365.86), never an exponent."""
    value = Decimal(value)
    return f"{value:,.2f}" if value.is_finite() else str(value)


def exact(value) -> str:
    """An amount with every place it has (a rounding remainder: 0.00412), in fixed point and
    with at least two places; "0E-8" is 0.00."""
    value = Decimal(value)
    if not value.is_finite():
        return str(value)
    normalized = value.normalize()
    return f"{normalized:,f}" if normalized.as_tuple().exponent < -2 else money(value)


def count(value: int) -> str:
    """A count, thousands separated (1,234)."""
    return f"{value:,}"


def user_count(value: int) -> str:
    """A count of users in words: "1 user", "1,234 users"."""
    return f"{count(value)} user{'' if value == 1 else 's'}"


def words(key: str) -> str:
    """A JSON key as words, for text output ("users_to_migrate": "users to migrate")."""
    return key.replace("_", " ")


def status_words(status: str) -> str:
    """A migration status as words ("COMPLETED": "completed")."""
    try:
        return MigrationStatus(status).label.lower()
    except ValueError:
        return words(status.lower())


class Command(BaseCommand):
    help = "Move users from legacy billing onto the credit ledger (dry run by default)."

    def add_arguments(self, parser):
        modes = parser.add_mutually_exclusive_group()
        modes.add_argument("--analyze", action="store_true", help="Totals before migrating.")
        modes.add_argument(
            "--dry-run", action="store_true", help="The full plan; writes nothing (default)."
        )
        modes.add_argument("--execute", action="store_true", help="Migrate, in batches.")
        modes.add_argument(
            "--verify", action="store_true", help="Check every credit; exit 1 if not."
        )
        modes.add_argument("--rollback", action="store_true", help="Undo (with --user or --all).")
        modes.add_argument("--status", action="store_true", help="Where the migration stands.")
        parser.add_argument(
            "--source",
            action="append",
            dest="sources",
            metavar="NAME",
            help=f"Repeatable; one of {', '.join(SOURCES)}. Default: CREDITS_MIGRATION_SOURCES.",
        )
        parser.add_argument(
            "--rate",
            action="append",
            default=[],
            metavar="CUR=RATE",
            help="Credits per unit, e.g. --rate USD=1.0 --rate UAH=0.024 (a bare number is USD).",
        )
        parser.add_argument(
            "--allow-high-rate",
            action="store_true",
            help="Accept a --rate above CREDITS_MIGRATION_RATE_MAX (refused without it).",
        )
        parser.add_argument("--percent", default="100", help="Staged rollout: 0 < P <= 100.")
        parser.add_argument(
            "--user",
            action="append",
            dest="users",
            default=[],
            metavar="ID|EMAIL",
            help="Repeatable: only these users.",
        )
        parser.add_argument("--all", action="store_true", help="With --rollback: every user.")
        parser.add_argument(
            "--batch-size", type=ascii_int, default=settings.CREDITS_MIGRATION_BATCH_SIZE
        )
        parser.add_argument(
            "--workers",
            type=ascii_int,
            default=settings.CREDITS_MIGRATION_WORKERS,
            help="Batches migrated at once on PostgreSQL, each on its own connection "
            "(1: one after another; SQLite always runs them one after another).",
        )
        parser.add_argument("--format", choices=["text", "json"], default="text")
        parser.add_argument("--keep-legacy", action="store_true", help="Leave legacy values.")
        parser.add_argument("--verbose", action="store_true", help="A line for every user.")
        parser.add_argument("--yes", action="store_true", help="Execute without asking.")
        parser.add_argument(
            "--force",
            action="store_true",
            help="With --rollback: reverse what is left of credits already spent.",
        )
        parser.add_argument("--no-notify", action="store_true", help="Send no notifications.")
        parser.add_argument(
            "--async",
            action="store_true",
            dest="run_async",
            help="With --execute: queue the run on Celery workers and return.",
        )
        parser.add_argument(
            "--backup-dir",
            default=str(settings.CREDITS_MIGRATION_BACKUP_DIR),
            help="Where --execute writes the CSV backup of the legacy rows it changes.",
        )

    # --- parsing --------------------------------------------------------------------------

    def handle(self, *args, **options):
        self.options = options
        self.json = options["format"] == "json"
        mode = self.mode = next((name for name in MODES if options[name]), "dry_run")
        typed_rates = self._rates(options["rate"])
        user_ids = self._users(options["users"]) if options["users"] else None
        if mode == "rollback" and user_ids is None and not options["all"]:
            raise usage_error("--rollback needs --user ID|EMAIL (repeatable) or --all.")
        if options["all"] and mode != "rollback":
            raise usage_error("--all goes with --rollback.")
        if options["force"] and mode != "rollback":
            raise usage_error("--force goes with --rollback.")
        if options["run_async"]:
            if mode != "execute":
                raise usage_error("--async goes with --execute (the run is queued on Celery).")
            mode = "execute_async"
        request = RunRequest(
            sources=list(dict.fromkeys(options["sources"] or settings.CREDITS_MIGRATION_SOURCES)),
            rates={currency: rate for currency, (_, rate) in typed_rates.items()},
            percent=self._percent(options["percent"]),
            user_ids=user_ids,
            batch_size=options["batch_size"],
            workers=options["workers"],
            keep_legacy=options["keep_legacy"],
            notify=not options["no_notify"],
            dry_run=mode not in ("execute", "execute_async"),
            allow_high_rate=options["allow_high_rate"],
        )
        try:
            request.validate(None)  # an operator at the shell: no actor
        except InvalidRunRequest as invalid:
            raise usage_error(self._usage_line(invalid, typed_rates)) from None
        self.request = request
        self.now = timezone.now()
        context = Context(
            rates=request.all_rates,
            now=self.now,
            keep_legacy=request.keep_legacy,
            rounding=settings.CREDITS_ROUNDING,
        )
        selection = engine.Selection(
            user_ids=user_ids,
            percent=request.percent,
            batch_size=request.batch_size,
            workers=request.workers,
            include_rolled_back=user_ids is not None,
        )
        parameters = request.parameters()
        return getattr(self, f"_{mode}")(request.sources, context, selection, parameters)

    def _usage_line(self, invalid: InvalidRunRequest, typed_rates) -> str:
        """The request's refusal in the command's words: the option as typed, then why."""
        options = self.options
        if invalid.field == "rates":
            typed, _ = typed_rates[invalid.key]
            return f"--rate {typed}: {invalid.problem}"
        if invalid.field == "sources":
            return f"--source: {invalid.problem}"
        option = "--" + invalid.field.replace("_", "-")
        return f"{option} {options.get(invalid.field, '')}: {invalid.problem}"

    def _rates(self, values) -> dict[str, tuple[str, Decimal]]:
        """Each `--rate CUR=RATE` as typed and as a Decimal; RunRequest checks the bounds."""
        rates = {}
        for value in values:
            currency, _, raw = value.rpartition("=")
            currency = (currency or "USD").strip().upper()
            if not PLAIN_DECIMAL.fullmatch(raw.strip()):
                raise usage_error(
                    f"--rate {value}: {raw!r} is not a number (digits and a point, e.g. 0.024)."
                )
            rates[currency] = (value, Decimal(raw.strip()))
        return rates

    def _percent(self, raw):
        if not PLAIN_DECIMAL.fullmatch(raw.strip()):
            raise usage_error(f"--percent {raw}: not a number.")
        return Decimal(raw.strip())

    def _users(self, values):
        user_model = get_user_model()
        ids = []
        for value in values:
            # ASCII digits only: "²" is a digit to str.isdigit() but no number to int().
            is_id = value.isascii() and value.isdigit()
            if is_id and int(value) > MAX_ID:
                raise usage_error(f"--user {value}: no such user.")
            query = Q(pk=int(value)) if is_id else Q(email__iexact=value)
            matches = list(user_model.objects.filter(query).values_list("pk", flat=True)[:2])
            if len(matches) != 1:
                problem = "no such user" if not matches else "more than one user has it"
                raise usage_error(f"--user {value}: {problem}.")
            ids.append(matches[0])
        return sorted(set(ids))

    # --- modes ----------------------------------------------------------------------------

    def _analyze(self, sources, context, selection, parameters):
        report = engine.analyze(sources, context, selection)
        report.parameters = parameters
        if self.json:
            self._print_json(report.as_dict())
            return self._exit_if_would_fail(report)
        self._header("Analysis", sources, parameters)
        for key, value in report.extra["analysis"].items():
            shown = count(value) if isinstance(value, int) else value
            self._line(f"  {words(key):<30} {shown}")
        self._summary(report, would=True)
        self._exit_if_would_fail(report)

    def _exit_if_would_fail(self, report: Report):
        if report.failed:
            raise CommandError(
                f"{report.failed} users would fail; see above (nothing was written)", returncode=1
            )

    def _dry_run(self, sources, context, selection, parameters):
        if not self.json:
            self._header("Dry run: nothing will be written", sources, parameters)
        report = engine.plan_users(sources, context, selection, on_user=self._user_line)
        report.parameters = parameters
        if self.json:
            self._print_json(report.as_dict())
        else:
            self._summary(report, would=True)
            self._line("Dry run: nothing was written. Run with --execute to migrate.")
        self._exit_if_would_fail(report)

    def _execute(self, sources, context, selection, parameters):
        planned = None
        if not self.options["yes"]:
            self._refuse_unconfirmed("execute", "--execute")
            self._header("Execute", sources, parameters)
            to_migrate, credits, planned = self._show_plan(sources, context, selection)
            self._confirm(f"Migrate {user_count(to_migrate)} ({money(credits)} credits) now?")
        with console_email_counted() as emails:
            return self._execute_confirmed(
                sources, context, selection, parameters, planned=planned, emails=emails
            )

    def _execute_confirmed(self, sources, context, selection, parameters, *, planned, emails):
        """Migrate, once confirmed; `planned` is how many users the plan went through (the
        progress bar's total), None when there was no plan."""
        try:
            run, backups = migration_execute_start(
                sources=sources,
                context=context,
                selection=selection,
                parameters=parameters,
                backup_dir=self.options["backup_dir"],
            )
        except BackupUnavailable as unusable:
            raise usage_error(f"--backup-dir {unusable.folder}: {unusable.problem}.") from None
        except RunAlreadyActive as refused:
            raise usage_error(f"{refused.message} (run {refused.details['run_id']})") from None
        if not self.json:
            self._header(f"Execute (run {run.pk})", sources, parameters)
            for path in backups:
                self._line(f"Backup of the legacy rows to change: {path}")
        report = self._run(
            run,
            lambda on_user: migration_execute(
                run=run,
                sources=sources,
                context=context,
                selection=selection,
                notify=parameters["notify"],
                on_user=on_user,
            ),
            total=(lambda: planned)
            if planned is not None
            else (lambda: self._candidates(sources, selection)),
        )
        report.parameters = parameters
        report.extra["backups"] = [str(path) for path in backups]
        return self._finish(run, report, emails)

    def _execute_async(self, sources, context, selection, parameters):
        if not self.options["yes"]:
            self._refuse_unconfirmed("execute", "--execute --async")
            self._header("Execute on the workers", sources, parameters)
            to_migrate, credits, _ = self._show_plan(sources, context, selection)
            self._confirm(
                f"Queue the migration of {user_count(to_migrate)} ({money(credits)} credits) "
                "on the workers now?"
            )
        # Without a broker the queued run goes on here, eagerly, and sends its emails here.
        with console_email_counted() as emails:
            try:
                run = migration_run_launch(request=self.request, actor=None, now=context.now)
            except RunAlreadyActive as refused:
                raise usage_error(f"{refused.message} (run {refused.details['run_id']})") from None
        run.refresh_from_db()
        if self.json:
            self._print_json(
                {
                    "run_id": run.pk,
                    "status": run.status,
                    "status_url": f"/api/migrate/runs/{run.pk}/",
                }
            )
            return self._print_emails(emails)
        self._line(f"Run {run.pk} queued on Celery ({run.status}).")
        self._line(
            "Watch it: python manage.py migrate_credits --status, or "
            f"GET /api/migrate/runs/{run.pk}/ (staff); verify with --verify when it completes."
        )
        self._print_emails(emails)

    # --- asking first ---------------------------------------------------------------------

    def _refuse_unconfirmed(self, verb: str, option: str) -> None:
        """Without --yes there must be a person to ask: a terminal, and text on stdout (a
        prompt would break JSON meant for a script)."""
        if not sys.stdin.isatty():
            raise usage_error(f"Refusing to {verb} without a terminal to confirm on; pass --yes.")
        if self.json:
            raise usage_error(f"{option} --format json is for scripts: pass --yes.")

    def _confirm(self, question: str) -> None:
        self.stdout.flush()
        answer = input(f"{question} Type yes to go on: ").strip().lower()
        if answer != "yes":
            raise usage_error("Not confirmed; nothing was written.")

    def _show_plan(self, sources, context, selection) -> tuple[int, Decimal, int]:
        """Print what --execute is about to do, from a dry-run plan of the same selection
        (nothing written); return the users it would migrate, their credits, and how many
        users the run will go through (the progress bar's total)."""
        credits = defaultdict(Decimal)
        progress = self._progress_bar(lambda: self._candidates(sources, selection), leave=False)

        def on_user(outcome: UserOutcome):
            if progress is not None:
                progress.update(1)
            if outcome.outcome == Outcome.MIGRATE:
                credits[outcome.source] += outcome.credits

        try:
            report = engine.plan_users(sources, context, selection, on_user=on_user)
        finally:
            if progress is not None:
                progress.close()
        self._line(self.style.MIGRATE_HEADING("-- the plan: a dry run of this selection --"))
        for name in sources:
            outcomes = report.per_source.get(name, {})
            self._line(
                f"{name}: {count(outcomes.get(Outcome.MIGRATE, 0))} users to migrate, "
                f"{money(credits[name])} credits; {count(outcomes.get(Outcome.FAILED, 0))} "
                f"would fail; {count(outcomes.get(Outcome.SKIPPED, 0))} skipped"
            )
        to_migrate = report.counts[Outcome.MIGRATE]
        total_credits = sum(credits.values(), Decimal("0.00"))
        self._line(f"users to migrate: {count(to_migrate)} ({money(total_credits)} credits)")
        if report.failed:
            self._line(
                self.style.ERROR(f"would fail: {count(report.failed)}")
                + " (recorded failed with the reason; --dry-run lists them)"
            )
        else:
            self._line("would fail: 0")
        self._line(f"skipped: {count(sum(report.skipped.values()))}")
        for reason, skipped in report.skipped.most_common():
            self._line(f"  {count(skipped):>8}  {reason}")
        return to_migrate, total_credits, sum(report.counts.values())

    def _show_rollback_plan(self, pks: list[int]) -> tuple[int, Decimal]:
        """Print what --rollback is about to do, from the preview the admin's rollback page
        shows (nothing written); return the users it would roll back and their credits."""
        totals = rollback_totals(rollback_preview(pks))
        force = self.options["force"]
        to_roll_back = totals.ready
        credits = totals.ready_credits + (totals.recoverable if force else Decimal(0))
        self._line(self.style.MIGRATE_HEADING("-- what the rollback would do --"))
        self._line(f"users to roll back: {count(to_roll_back)} ({money(credits)} credits reversed)")
        if totals.spent_users and force:
            self._line(
                f"  of them {count(totals.spent_users)} spent migrated credits, "
                f"{money(totals.spent)}: --force takes {money(totals.recoverable)} of them from "
                f"their other credits and records the shortfall, {money(totals.shortfall)}"
            )
        elif totals.spent_users:
            self._line(
                f"  of them {count(totals.spent_users)} spent migrated credits, "
                f"{money(totals.spent)}: they stay spent (recorded); --force would take "
                f"{money(totals.recoverable)} of them from their other credits"
            )
        if totals.blocked and not force:
            self._line(
                f"  refused without --force: {count(totals.blocked)} (active holds reserve "
                "credits of the migration)"
            )
        self._line(f"left alone: {count(totals.skipped)} (already rolled back or not migrated)")
        return to_roll_back, credits

    def _start(self, sources, mode, parameters):
        try:
            return migration_run_start(
                sources=sources,
                mode=mode,
                parameters=parameters,
                now=self.now,
                in_this_process=True,
            )
        except RunAlreadyActive as refused:
            raise usage_error(f"{refused.message} (run {refused.details['run_id']})") from None

    def _rollback(self, sources, context, selection, parameters):
        rows = UserMigration.objects.filter(
            source__in=sources,
            status__in=[MigrationStatus.COMPLETED, MigrationStatus.ROLLED_BACK],
        )
        if selection.user_ids is not None:
            rows = rows.filter(user_id__in=selection.user_ids)
        pks = None
        if not self.options["yes"]:
            self._refuse_unconfirmed("roll back", "--rollback")
            self._header("Rollback", sources, parameters)
            pks = list(rows.values_list("pk", flat=True))
            to_roll_back, credits = self._show_rollback_plan(pks)
            self._confirm(f"Roll back {user_count(to_roll_back)} ({money(credits)} credits) now?")
        with console_email_counted() as emails:
            return self._rollback_confirmed(
                sources,
                selection,
                parameters,
                total=(lambda: len(pks)) if pks is not None else rows.count,
                emails=emails,
            )

    def _rollback_confirmed(self, sources, selection, parameters, *, total, emails):
        run = self._start(sources, RunMode.ROLLBACK, {**parameters, "force": self.options["force"]})
        if not self.json:
            self._header(f"Rollback (run {run.pk})", sources, parameters)

        def rollback(on_user):
            return migration_rollback(
                actor=None,  # an operator at the shell
                force=self.options["force"],
                notify=parameters["notify"],
                sources=sources,
                user_ids=selection.user_ids,
                run=run,
                on_user=on_user,
            )

        report = self._run(run, rollback, total=total)
        report.parameters = parameters
        return self._finish(run, report, emails)

    def _verify(self, sources, context, selection, parameters):
        result = engine.verify(sources)
        if self.json:
            self._print_json(result.as_dict())
        else:
            self._header("Verify", sources, {})
            for name in sources:
                users = ", ".join(
                    f"{status_words(k)} {count(v)}" for k, v in result.users.get(name, {}).items()
                )
                self._line(f"{name}: {users or 'no migrated users'}")
                for key, value in result.totals.get(name, {}).items():
                    shown = exact(value) if key == "rounding_remainder" else money(value)
                    self._line(f"  {words(key):<22} {shown}")
            if result.is_clean:
                self._line(self.style.SUCCESS("Verified: no discrepancies."))
            else:
                self._line(self.style.ERROR(f"{len(result.discrepancies)} discrepancies:"))
                emails = self._emails([item.user_id for item in result.discrepancies])
                for item in result.discrepancies:
                    self._line(
                        f"  user {item.user_id} {emails.get(item.user_id, '')} "
                        f"[{item.source}]: {item.problem}"
                    )
        if not result.is_clean:
            raise CommandError(
                f"verification found {len(result.discrepancies)} discrepancies", returncode=1
            )

    def _status(self, sources, context, selection, parameters):
        status = engine.migration_status(sources)
        if self.json:
            return self._print_json(status)
        self._header("Status", sources, {})
        self._line(f"status: {words(status['status'])}")
        for key, value in status["summary"].items():
            if key != "sources":
                self._line(f"  {words(key):<18} {count(value)}")
        for name, facts in status["summary"]["sources"].items():
            statuses = ", ".join(
                f"{status_words(k)} {count(v)}" for k, v in sorted(facts["statuses"].items())
            )
            self._line(
                f"  {name}: {count(facts['to_migrate'])} to migrate; {statuses or 'none yet'}"
            )
        self._line(status["recommendation"])
        failures = status["failures"]
        if failures:
            shown = failures[:FAILURES_IN_STATUS]
            self._line(
                f"failed users ({len(shown)} of {count(status['summary']['failed'])}; "
                "--format json lists up to 100):"
            )
            for item in shown:
                email = f" {item['email']}" if item["email"] else ""
                self._line(f"  user {item['user_id']}{email} [{item['source']}]: {item['error']}")

    # --- running and reporting ------------------------------------------------------------

    def _run(self, run, work, *, total: Callable[[], int]) -> Report:
        progress = self._progress = self._progress_bar(total, leave=True)

        def on_user(outcome: UserOutcome):
            if progress is not None:
                progress.update(1)
            self._user_line(outcome)

        try:
            with self._logs_above(progress):
                return work(on_user)
        except BaseException as error:
            migration_run_fail(run=run, error=f"{type(error).__name__}: {error}")
            raise
        finally:
            self._progress = None
            if progress is not None:
                progress.close()

    def _logs_above(self, progress):
        """While the bar is shown, log records to the console (Celery's eager tasks log each
        task) are written above it, as the user lines are, instead of through it."""
        if progress is None:
            return contextlib.nullcontext()
        from tqdm.contrib.logging import logging_redirect_tqdm

        return logging_redirect_tqdm(tqdm_class=type(progress))

    def _candidates(self, sources, selection) -> int:
        """How many users the selection holds (skipped ones included: each gets a line)."""
        return sum(
            count_candidates(
                get_source(name), user_ids=selection.user_ids, percent=selection.percent
            )
            for name in sources
        )

    def _progress_bar(self, total: Callable[[], int], *, leave: bool):
        """A progress bar on stderr when it is a terminal (`total` is counted only then);
        `leave` keeps it on screen at the end: the run's, at 100% with the elapsed time and the
        rate (the plan's goes)."""
        if self.json or not sys.stderr.isatty():
            return None
        from tqdm import tqdm

        return tqdm(
            total=total(), unit="user", file=sys.stderr, leave=leave, bar_format=PROGRESS_FORMAT
        )

    def _finish(self, run, report: Report, emails: EmailTally | None):
        migration_run_finish(run=run, report=report)
        if self.json:
            self._print_json(report.as_dict())
        else:
            self._summary(report, would=False)
        self._print_emails(emails)
        if report.failed:
            raise CommandError(
                f"{report.failed} users failed or were refused; see above", returncode=1
            )

    def _print_emails(self, emails: EmailTally | None) -> None:
        """One line per kind of email the console backend was not shown (see console_email);
        on stderr with JSON, which stdout carries."""
        for subject, sent in emails.counts() if emails is not None else []:
            text = (
                f'notifications: {count(sent)} "{subject}" email{"" if sent == 1 else "s"} '
                "(console email: bodies not shown)"
            )
            if self.json:
                self.stderr.write(text)
            else:
                self._line(text)

    def _header(self, title, sources, parameters):
        if self.json:
            return
        self._line(self.style.MIGRATE_HEADING(f"== migrate_credits: {title} =="))
        self._line(f"sources: {', '.join(sources)}")
        if parameters:
            rates = ", ".join(f"{k}={v}" for k, v in parameters["rates"].items())
            line = (
                f"rates: {rates}; percent: {parameters['percent']}; "
                f"batch size: {count(parameters['batch_size'])}"
            )
            if self.mode == "execute":
                # Batches run at once only on PostgreSQL (migrations_app.engine.parallel).
                if connection.vendor == "sqlite":
                    line += "; workers: 1 (SQLite runs batches one after another)"
                else:
                    line += f"; workers: {parameters['workers']}"
            self._line(line + ("; keeping legacy values" if parameters["keep_legacy"] else ""))
        self._printed_lines = 0

    def _user_line(self, outcome: UserOutcome):
        if self.json:
            return
        self._printed_lines = getattr(self, "_printed_lines", 0) + 1
        if self._printed_lines > LINES_WITHOUT_VERBOSE and not self.options["verbose"]:
            if self._printed_lines == LINES_WITHOUT_VERBOSE + 1:
                self._line("  ... (more users; --verbose lists them all)")
            return
        legacy = ", ".join(f"{money(v)} {k}" for k, v in outcome.legacy_amounts.items())
        text = f"  user {outcome.user_id:>8} [{outcome.source}] {outcome.outcome:<11}"
        if outcome.outcome == Outcome.FAILED and self.mode in ("dry_run", "analyze"):
            text = f"  user {outcome.user_id:>8} [{outcome.source}] would fail: {outcome.error}"
        elif outcome.outcome in (Outcome.FAILED, Outcome.REFUSED):
            text += f" {outcome.error}"
        elif outcome.outcome == Outcome.SKIPPED:
            text += f" {outcome.note}"
        else:
            text += f" {money(outcome.credits):>10} credits"
            if legacy:
                text += f"  from {legacy}"
            if outcome.history:
                text += f"  +{outcome.history} history"
            if outcome.note:
                text += f"  ({outcome.note})"
            if outcome.data_mismatch:
                text += f"  MISMATCH: {outcome.data_mismatch}"
        self._line(text)

    def _summary(self, report: Report, *, would: bool):
        verb = "would be" if would else "were"
        users = report.counts
        done = users[Outcome.MIGRATE] + users[Outcome.MIGRATED]
        self._line(self.style.MIGRATE_HEADING("-- summary --"))
        if report.mode == "rollback":
            self._line(f"users rolled back: {count(users[Outcome.ROLLED_BACK])}")
            self._line(f"credits reversed: {money(-report.credits)}")
            for name, meaning in (
                ("spent_before_rollback", "spent before the rollback (stays spent)"),
                ("taken_from_account", "taken by --force from the users' other credits"),
                ("shortfall", "left unreversed (shortfall)"),
            ):
                value = Decimal(report.extra.get(name, "0"))
                if value:
                    self._line(f"  {meaning}: {money(value)}")
        else:
            self._line(f"user migrations (user x source): {count(done)} {verb} migrated")
            for currency, total in sorted(report.legacy_totals.items()):
                self._line(f"  legacy {currency:<10} {money(total)}")
            self._line(f"credits {verb} granted: {money(report.credits)}")
            self._line(f"rounding remainder kept: {exact(report.remainder)}")
            self._line(f"history entries: {count(report.history)}")
        if report.mismatches:
            self._line(f"data mismatches: {count(len(report.mismatches))} (migrated, reported)")
        skipped = sum(report.skipped.values())
        self._line(f"skipped: {count(skipped)}")
        for reason, users_skipped in report.skipped.most_common():
            self._line(f"  {count(users_skipped):>8}  {reason}")
        if report.failures:
            label = "would fail" if would else "failed"
            self._line(self.style.ERROR(f"{label}: {count(len(report.failures))}"))
            emails = self._emails([item.user_id for item in report.failures[:100]])
            for item in report.failures[:100]:
                self._line(
                    f"  user {item.user_id} {emails.get(item.user_id, '')} "
                    f"[{item.source}]: {'would fail: ' if would else ''}{item.error}"
                )
        else:
            self._line("would fail: 0" if would else "failed: 0")

    def _emails(self, user_ids):
        user_model = get_user_model()
        return dict(user_model.objects.filter(pk__in=user_ids).values_list("pk", "email"))

    def _line(self, text):
        progress = getattr(self, "_progress", None)
        if progress is None:
            self.stdout.write(text)
            return
        # The bar is on the same screen (stderr): take it off, print the line, draw it again.
        progress.clear()
        self.stdout.write(text)
        self.stdout.flush()
        progress.refresh()

    def _print_json(self, data):
        self.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str))
