"""`python manage.py announce_migration`: tell users not yet migrated that it is coming.

Users with legacy data in the chosen sources whose migration is not complete, narrowed by
--percent like the staged rollout (announce the 5% before migrating them). Each user is
announced once per --key (default: once ever); running it again announces only new users.
"""

from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from billing.models import UserProfile
from migrations_app.engine.selection import candidate_batches
from migrations_app.notifications import notifications_announce
from migrations_app.sources import SOURCES, get_source


class Command(BaseCommand):
    help = "Email users not yet migrated that their balance is moving to credits."

    def add_arguments(self, parser):
        parser.add_argument("--source", action="append", dest="sources", metavar="NAME")
        parser.add_argument("--percent", default="100", help="Staged rollout: 0 < P <= 100.")
        parser.add_argument("--key", default="", help="A campaign name: announce again under it.")
        parser.add_argument("--dry-run", action="store_true", help="Count; send nothing.")

    def handle(self, *args, sources, percent, key, dry_run, **options):
        names = sources or list(settings.CREDITS_MIGRATION_SOURCES)
        unknown = [name for name in names if name not in SOURCES]
        if unknown:
            raise CommandError(f"Unknown source {', '.join(unknown)}.", returncode=2)
        try:
            share = Decimal(percent)
        except InvalidOperation:
            raise CommandError(f"--percent {percent}: not a number.", returncode=2) from None
        if not share.is_finite() or not 0 < share <= 100:
            raise CommandError(f"--percent {percent}: above 0 and at most 100.", returncode=2)
        users = set()
        for name in names:
            for user_ids in candidate_batches(get_source(name), batch_size=2000, percent=share):
                users.update(user_ids)
        migrated = set()
        ordered = sorted(users)
        for start in range(0, len(ordered), 2000):
            migrated.update(
                UserProfile.objects.filter(
                    user_id__in=ordered[start : start + 2000], migration_completed_at__isnull=False
                ).values_list("user_id", flat=True)
            )
        to_announce = [user_id for user_id in ordered if user_id not in migrated]
        if dry_run:
            self.stdout.write(f"{len(to_announce)} users not yet migrated; nothing sent (dry run).")
            return
        announced = 0
        for start in range(0, len(to_announce), 500):
            announced += notifications_announce(user_ids=to_announce[start : start + 500], key=key)
        self.stdout.write(
            f"{announced} users announced ({len(to_announce) - announced} had been already)."
        )
