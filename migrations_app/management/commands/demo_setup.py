"""Prepare the embedded default for a first look: a staff login, demo customers, an API token.

Safe to run again: existing demo users are kept (their ledgers are keyed, so nothing is
granted twice) and the staff password is reset and printed each time.
"""

import secrets
from datetime import timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone
from rest_framework.authtoken.models import Token

from billing.models import LegacyAccount, LegacyBilling
from billing.services import user_signup
from core.keys import demo_bonus_key, demo_hold_key, demo_spend_key
from credits.models import LotCategory
from credits.selectors import credit_account_for_user
from credits.services import credit_grant, credit_hold_create, credit_spend

DEMO_CUSTOMERS = [
    ("ada@example.com", [Decimal("3.50"), Decimal("1.25")]),
    ("grace@example.com", [Decimal("12")]),
    ("linus@example.com", []),
]


BONUS = Decimal("10.00")
BONUS_DAYS = 14
HOLD = Decimal("2.00")


class Command(BaseCommand):
    help = "Create a staff login and demo customers for the embedded default, and print them."

    def add_arguments(self, parser):
        parser.add_argument("--staff-username", default="admin")
        parser.add_argument("--address", default="http://127.0.0.1:8000")
        parser.add_argument(
            "--legacy-users", type=int, default=200, help="Legacy users to seed (0: none)."
        )

    def handle(self, *args, staff_username, address, legacy_users, **options):
        user_model = get_user_model()
        password = secrets.token_urlsafe(12)
        staff, _ = user_model.objects.get_or_create(
            username=staff_username, defaults={"email": f"{staff_username}@example.com"}
        )
        staff.is_staff = staff.is_superuser = True
        staff.set_password(password)
        staff.save()

        for email, spends in DEMO_CUSTOMERS:
            customer = user_model.objects.filter(username=email).first()
            if customer is None:
                customer = user_signup(email=email, password=secrets.token_urlsafe(12))
            account = credit_account_for_user(user=customer)
            with transaction.atomic():
                for index, amount in enumerate(spends):
                    credit_spend(
                        account=account,
                        amount=amount,
                        idempotency_key=demo_spend_key(user_id=customer.pk, index=index),
                        description="Demo usage",
                        source="demo",
                    )
        self._lots_and_holds(user_model.objects.get(username=DEMO_CUSTOMERS[0][0]))
        has_legacy = LegacyBilling.objects.exists() or LegacyAccount.objects.exists()
        if legacy_users and not has_legacy:
            call_command("seed_legacy", users=legacy_users, seed=1, stdout=self.stdout)
        api_user = user_model.objects.get(username=DEMO_CUSTOMERS[0][0])
        token, _ = Token.objects.get_or_create(user=api_user)

        self.stdout.write(self.style.SUCCESS("Demo data is ready."))
        self.stdout.write(f"  Admin:     {address}/admin/")
        self.stdout.write(f"  Login:     {staff_username}")
        self.stdout.write(f"  Password:  {password}")
        self.stdout.write(
            f"  API:       curl -H 'Authorization: Token {token.key}' "
            f"{address}/api/credits/balance/   ({api_user.email})"
        )
        self.stdout.write(
            f"  {api_user.email} has a bonus that expires in {BONUS_DAYS} days and a hold."
        )
        self.stdout.write("  Legacy users wait to be migrated; in another terminal try:")
        for mode in ("--analyze", "--dry-run", "--execute", "--verify"):
            self.stdout.write(f"    .venv/bin/python manage.py migrate_credits {mode}")

    def _lots_and_holds(self, customer):
        """An expiring promotional lot and an active hold, so the balance page and the admin
        show available, held and the next expiry."""
        account = credit_account_for_user(user=customer)
        credit_grant(
            account=account,
            amount=BONUS,
            idempotency_key=demo_bonus_key(user_id=customer.pk),
            category=LotCategory.PROMOTIONAL,
            expires_at=timezone.now() + timedelta(days=BONUS_DAYS),
            source="demo",
            description="Welcome bonus",
        )
        credit_hold_create(
            account=account,
            amount=HOLD,
            idempotency_key=demo_hold_key(user_id=customer.pk),
            ttl_seconds=24 * 3600,
            description="Demo report being generated",
        )
