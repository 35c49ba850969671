"""The `billing.view_customer_summary` permission (GET /api/admin/billing/user/<id>/summary),
given to the "Billing super admins" group.

The group is made by migrations_app's 0003, which billing may not depend on (the dependency
direction is migrations_app -> billing): get_or_create lets either run first. Like that
migration, it uses the installed auth models (see its docstring). Reversing takes the
permission out of the group.
"""

from django.apps import apps as installed_apps
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission
from django.db import migrations

GROUP = "Billing super admins"
CODENAME = "view_customer_summary"


def _permission(db):
    create_permissions(installed_apps.get_app_config("billing"), verbosity=0, using=db)
    return Permission.objects.using(db).get(content_type__app_label="billing", codename=CODENAME)


def give(apps, schema_editor):
    db = schema_editor.connection.alias
    group, _ = Group.objects.using(db).get_or_create(name=GROUP)
    group.permissions.add(_permission(db))


def take_back(apps, schema_editor):
    db = schema_editor.connection.alias
    group = Group.objects.using(db).filter(name=GROUP).first()
    if group is not None:
        group.permissions.remove(
            *Permission.objects.using(db).filter(
                content_type__app_label="billing", codename=CODENAME
            )
        )


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "__latest__"),
        ("contenttypes", "__latest__"),
        ("billing", "0005_monthly_grant_schedule"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="userprofile",
            options={
                "permissions": [
                    ("view_customer_summary", "Can view a customer's billing summary (staff API)")
                ]
            },
        ),
        migrations.RunPython(give, take_back, elidable=False),
    ]
