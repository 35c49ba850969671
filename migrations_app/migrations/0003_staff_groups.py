"""The two staff roles as groups: "Credit admins" and "Billing super admins".

Credit admins grant and adjust up to CREDITS_ADMIN_LIMIT per action and read the ledger. Billing
super admins also refund, go above the limit, approve requests above CREDITS_APPROVAL_THRESHOLD
(with a second person), and roll back or retry users' migrations. The limits themselves are
enforced in `credits.services.staff`; the groups only hand out the permissions.

It lives in migrations_app because it names permissions of all three apps, and only
migrations_app may depend on the others. Permissions are created by a post_migrate signal,
after every migration, so this creates the ones it needs first. It uses the installed auth
models rather than historical ones: where auth's tables are created from its models (the test
settings do that), the historical Permission has no content type to look permissions up by.
Reversing deletes the groups (the permissions stay: they belong to their models).
"""

from django.apps import apps as installed_apps
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission
from django.db import migrations

VIEW_LEDGER = [
    ("credits", "view_creditaccount"),
    ("credits", "view_credittransaction"),
    ("credits", "view_creditapprovalrequest"),
    ("billing", "view_userprofile"),
]
GROUPS = {
    "Credit admins": [
        *VIEW_LEDGER,
        ("credits", "grant_credits"),
        ("credits", "adjust_credits"),
    ],
    "Billing super admins": [
        *VIEW_LEDGER,
        ("credits", "grant_credits"),
        ("credits", "adjust_credits"),
        ("credits", "refund_credits"),
        ("credits", "adjust_unlimited"),
        ("migrations_app", "view_usermigration"),
        ("migrations_app", "view_migrationrun"),
        ("migrations_app", "rollback_migration"),
        ("migrations_app", "retry_migration"),
    ],
}


def create_groups(apps, schema_editor):
    db = schema_editor.connection.alias
    for label in ("credits", "billing", "migrations_app"):
        create_permissions(installed_apps.get_app_config(label), verbosity=0, using=db)
    for name, codenames in GROUPS.items():
        group, _ = Group.objects.using(db).get_or_create(name=name)
        for app_label, codename in codenames:
            permission = Permission.objects.using(db).get(
                content_type__app_label=app_label, codename=codename
            )
            group.permissions.add(permission)


def delete_groups(apps, schema_editor):
    Group.objects.using(schema_editor.connection.alias).filter(name__in=GROUPS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "__latest__"),
        ("contenttypes", "__latest__"),
        ("credits", "0003_staff_approvals_and_permissions"),
        ("billing", "0003_profiles_for_existing_users"),
        ("migrations_app", "0002_retry_permission"),
    ]

    operations = [migrations.RunPython(create_groups, delete_groups, elidable=False)]
