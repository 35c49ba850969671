"""`python manage.py check_credits`: what needs attention, for cron and alerting.

Exit 0 when nothing does, 1 when anything does; `--format json` for machines. The same facts
as GET /api/admin/billing/health.
"""

import json

from django.core.management.base import BaseCommand, CommandError

from ops.health import credits_health


class Command(BaseCommand):
    help = (
        "Check the ledger, spends, webhooks and the migration; exit 1 if anything needs attention."
    )

    def add_arguments(self, parser):
        parser.add_argument("--format", choices=["text", "json"], default="text")

    def handle(self, *args, format, **options):
        health = credits_health()
        if format == "json":
            self.stdout.write(json.dumps(health, indent=2, sort_keys=True, default=str))
        else:
            for name, check in health["checks"].items():
                mark = "ATTENTION" if check["needs_attention"] else "ok"
                self.stdout.write(f"{mark:<9} {name:<27} {check['count']:>6}  {check['meaning']}")
                if check["needs_attention"]:
                    for example in check["examples"]:
                        details = ", ".join(f"{key} {value}" for key, value in example.items())
                        self.stdout.write(f"            {details}")
            verdict = "needs attention" if health["needs_attention"] else "all clear"
            self.stdout.write(f"check_credits: {verdict}")
        if health["needs_attention"]:
            raise CommandError("something needs attention (see above)", returncode=1)
