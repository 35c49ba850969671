"""`manage.py seed_legacy --users N --seed S`: realistic legacy billing data to migrate.

Creates users and legacy rows only (see billing/management/legacy_seed/ for the mix and the
determinism rules), then prints what it wrote.
"""

from datetime import date

from django.core.management.base import BaseCommand, CommandError

from billing.management.legacy_seed import DEFAULT_BATCH_SIZE, SOURCES, SeedRefused, seed_legacy


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--today must be a date like 2026-11-21, not {value!r}.") from None


class Command(BaseCommand):
    help = (
        "Create N users with realistic, seed-deterministic legacy billing rows (user_billing, "
        "legacy_accounts, payments, legacy_credit_transactions, legacy_operations, "
        "legacy_usage). No profiles, accounts or ledger entries: the migration creates those."
    )

    def add_arguments(self, parser):
        parser.add_argument("--users", type=int, required=True, help="How many users to create.")
        parser.add_argument(
            "--seed", type=int, required=True, help="Random seed; one seed, one set of users."
        )
        parser.add_argument(
            "--sources",
            default=",".join(SOURCES),
            help=f"Comma-separated sources to fill (default: {','.join(SOURCES)}).",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=DEFAULT_BATCH_SIZE,
            help=f"Users generated and inserted at a time (default {DEFAULT_BATCH_SIZE}).",
        )
        parser.add_argument(
            "--today",
            help="Reference day YYYY-MM-DD that timestamps are relative to (default: today, UTC).",
        )

    def handle(self, *args, users, seed, sources, batch_size, today, verbosity, **options):
        def progress(done, total):
            if verbosity >= 2:
                self.stdout.write(f"  {done}/{total} users")

        try:
            summary = seed_legacy(
                users=users,
                seed=seed,
                sources=sources,
                batch_size=batch_size,
                today=_day(today) if today else None,
                progress=progress,
            )
        except SeedRefused as error:
            raise CommandError(str(error)) from error
        if verbosity >= 1:
            for line in summary.lines():
                self.stdout.write(line)
