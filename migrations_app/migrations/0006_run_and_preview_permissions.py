"""Two permissions for starting runs, `run_migration` (execute) and `preview_migration` (a dry
run), given to "Billing super admins" (0003_staff_groups). Reversing takes them from the group
(the permissions stay: they belong to their model). Installed auth models, as in 0003."""

from django.apps import apps as installed_apps
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission
from django.db import migrations

GROUP = "Billing super admins"
CODENAMES = ("run_migration", "preview_migration")


def _permissions(db):
    create_permissions(installed_apps.get_app_config("migrations_app"), verbosity=0, using=db)
    return Permission.objects.using(db).filter(
        content_type__app_label="migrations_app", codename__in=CODENAMES
    )


def grant(apps, schema_editor):
    db = schema_editor.connection.alias
    group, _ = Group.objects.using(db).get_or_create(name=GROUP)
    group.permissions.add(*_permissions(db))


def revoke(apps, schema_editor):
    db = schema_editor.connection.alias
    group = Group.objects.using(db).filter(name=GROUP).first()
    if group is not None:
        group.permissions.remove(*_permissions(db))


class Migration(migrations.Migration):
    dependencies = [
        ("migrations_app", "0005_legacy_currency_fits_longer_codes"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="migrationrun",
            options={
                "ordering": ["-id"],
                "permissions": [
                    ("run_migration", "Can start a credit migration run that writes"),
                    ("preview_migration", "Can start a dry run of the credit migration"),
                ],
            },
        ),
        migrations.RunPython(grant, revoke, elidable=False),
    ]
