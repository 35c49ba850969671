from django.db import migrations

from credits.migrations._sql import postgresql_only

forward, reverse = postgresql_only(__file__)


class Migration(migrations.Migration):
    """On PostgreSQL, the function that writes several debits of one account in one call (the
    SQL beside this file); nothing to do on SQLite."""

    dependencies = [("credits", "0014_release_hold_permission_for_staff_groups")]

    operations = [migrations.RunPython(forward, reverse, elidable=False)]
