"""Give every existing user a UserProfile and an empty CreditAccount.

Profile fields (plan, subscription, Stripe ids, preferences, usage stats) are copied from
`legacy_accounts` where the user has a row there. No credits move here: that is
`migrate_credits`, and these users never get the signup grant. A Stripe customer id that
another user already holds is left empty (reported by `migrate_credits --analyze` later).

Reversing removes the accounts that still have no ledger entries and the profiles of their
users; anything with entries stays, because the ledger is never deleted from.
"""

from django.conf import settings
from django.db import migrations, router

CHUNK = 2000
COPIED = (
    "plan",
    "subscription_status",
    "subscription_started_at",
    "subscription_ends_at",
    "stripe_price_id",
    "preferences",
    "usage_stats",
)


def create_profiles_and_accounts(apps, schema_editor):
    db = schema_editor.connection.alias
    User = apps.get_model("auth", "User")
    UserProfile = apps.get_model("billing", "UserProfile")
    LegacyAccount = apps.get_model("billing", "LegacyAccount")
    CreditAccount = apps.get_model("credits", "CreditAccount")
    # The legacy tables may live in their own database (LEGACY_DATABASE_URL).
    legacy_db = router.db_for_read(LegacyAccount) or db
    taken = set(
        UserProfile.objects.using(db)
        .exclude(stripe_customer_id=None)
        .values_list("stripe_customer_id", flat=True)
    )
    last = 0
    while True:
        user_ids = list(
            User.objects.using(db)
            .filter(pk__gt=last)
            .order_by("pk")
            .values_list("pk", flat=True)[:CHUNK]
        )
        if not user_ids:
            break
        last = user_ids[-1]
        legacy = {
            row.user_id: row
            for row in LegacyAccount.objects.using(legacy_db).filter(user_id__in=user_ids)
        }
        profiles = []
        for user_id in user_ids:
            profile = UserProfile(user_id=user_id)
            row = legacy.get(user_id)
            if row is not None:
                for name in COPIED:
                    setattr(profile, name, getattr(row, name))
                if row.stripe_customer_id and row.stripe_customer_id not in taken:
                    profile.stripe_customer_id = row.stripe_customer_id
                    taken.add(row.stripe_customer_id)
            profiles.append(profile)
        UserProfile.objects.using(db).bulk_create(profiles, ignore_conflicts=True)
        CreditAccount.objects.using(db).bulk_create(
            [CreditAccount(user_id=user_id) for user_id in user_ids], ignore_conflicts=True
        )


def remove_empty_accounts_and_their_profiles(apps, schema_editor):
    db = schema_editor.connection.alias
    UserProfile = apps.get_model("billing", "UserProfile")
    CreditAccount = apps.get_model("credits", "CreditAccount")
    empty = CreditAccount.objects.using(db).filter(entries__isnull=True)
    user_ids = list(empty.values_list("user_id", flat=True))
    for start in range(0, len(user_ids), CHUNK):
        chunk = user_ids[start : start + CHUNK]
        UserProfile.objects.using(db).filter(user_id__in=chunk).delete()
        CreditAccount.objects.using(db).filter(user_id__in=chunk, entries__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0002_legacy_models"),
        ("credits", "0002_ledger_append_only_trigger"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RunPython(create_profiles_and_accounts, remove_empty_accounts_and_their_profiles)
    ]
