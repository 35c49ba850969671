"""`python manage.py expire_credits`: what the beat task does every few minutes, by hand.

Releases the holds whose time is up, then writes one `expiry` entry per lot whose expiry has
come with credit left (credits.services.credit_expiry_run); prints the counts. `--dry-run`
lists what is due and writes nothing. `--now` runs as of another moment (an operator catching
up, a test); a value that is not an ISO 8601 date and time is exit 2 with one line. Run twice,
or twice at once, it writes each expiry once.
"""

from datetime import datetime
from decimal import Decimal

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from credits.selectors import holds_due_to_expire, lots_due_to_expire
from credits.services import credit_expiry_run

USAGE = 2


def moment(raw: str) -> datetime:
    """An ISO 8601 date and time ("2026-12-01T00:00:00Z"; a date alone is its midnight; no
    offset: the project's time zone)."""
    try:
        value = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise CommandError(
            f"--now must be an ISO 8601 date and time like 2026-12-01T00:00:00Z, not {raw!r}",
            returncode=USAGE,
        ) from None
    return value if timezone.is_aware(value) else timezone.make_aware(value)


def plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


class Command(BaseCommand):
    help = (
        "Release expired holds and expire credit lots whose expiry has come (one expiry entry "
        "per lot); --dry-run lists them and writes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run", action="store_true", help="List the holds and lots due; write nothing."
        )
        parser.add_argument(
            "--now",
            help="Run as of this moment, ISO 8601 (default: now). Lots due by then expire.",
        )

    def handle(self, *args, dry_run, now, **options):
        now = moment(now) if now is not None else timezone.now()
        if dry_run:
            self._list_due(now)
            return
        run = credit_expiry_run(now=now)
        self.stdout.write(
            f"expire_credits: {plural(run.holds_expired, 'hold')} released as expired, "
            f"{plural(run.lots_expired, 'lot')} expired ({run.credits_expired:,.2f} credits)"
        )
        if run.bounded:
            self.stdout.write("more may be due: the run stopped at its bound; run it again")

    def _list_due(self, now: datetime) -> None:
        holds = lots = 0
        for hold in holds_due_to_expire(now=now).iterator():
            holds += 1
            self.stdout.write(
                f"hold {hold.pk}  account {hold.account_id}  {hold.amount:,.2f} credits  "
                f"expired {hold.expires_at.isoformat()}"
            )
        credits = Decimal("0.00")
        for lot in lots_due_to_expire(now=now).iterator():
            lots += 1
            credits += lot.remaining
            self.stdout.write(
                f"lot {lot.pk}  account {lot.account_id}  {lot.category}  "
                f"{lot.remaining:,.2f} of {lot.amount:,.2f} left  "
                f"expires {lot.expires_at.isoformat()}"
            )
        self.stdout.write(
            f"expire_credits --dry-run as of {now.isoformat()}: {plural(holds, 'hold')} and "
            f"{plural(lots, 'lot')} due ({credits:,.2f} credits left in them); nothing was written"
        )
