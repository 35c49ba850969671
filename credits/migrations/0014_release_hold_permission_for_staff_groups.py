"""`credits.release_hold` (a staff member frees a customer's active hold, with a reason) and
`credits.view_credithold` (the holds' admin list) for the two staff groups, "Credit admins" and
"Billing super admins": a release moves no credits, it gives the customer back the use of their
own, so front-line support may do it.

The groups are made by migrations_app's 0003, which credits may not depend on (the dependency
direction is migrations_app -> credits): get_or_create lets either run first, as billing's 0006
does. Like those migrations, it uses the installed auth models (see 0003's docstring).
Reversing takes the permission out of the groups.
"""

from django.apps import apps as installed_apps
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission
from django.db import migrations

GROUPS = ("Credit admins", "Billing super admins")
CODENAMES = ("release_hold", "view_credithold")


def _permissions(db):
    return Permission.objects.using(db).filter(
        content_type__app_label="credits", codename__in=CODENAMES
    )


def give(apps, schema_editor):
    db = schema_editor.connection.alias
    create_permissions(installed_apps.get_app_config("credits"), verbosity=0, using=db)
    permissions = [
        Permission.objects.using(db).get(content_type__app_label="credits", codename=codename)
        for codename in CODENAMES
    ]
    for name in GROUPS:
        group, _ = Group.objects.using(db).get_or_create(name=name)
        group.permissions.add(*permissions)


def take_back(apps, schema_editor):
    db = schema_editor.connection.alias
    permissions = list(_permissions(db))
    for group in Group.objects.using(db).filter(name__in=GROUPS):
        group.permissions.remove(*permissions)


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "__latest__"),
        ("contenttypes", "__latest__"),
        ("credits", "0013_approval_lot_terms"),
    ]

    operations = [migrations.RunPython(give, take_back, elidable=False)]
