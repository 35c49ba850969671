from django.db import migrations

from credits.migrations._sql import postgresql_only

forward, reverse = postgresql_only(__file__)


class Migration(migrations.Migration):
    """On PostgreSQL, the function that wrote the entries of several threads in one call (the
    SQL beside this file); nothing to do on SQLite."""

    dependencies = [("credits", "0004_merge_approvals_and_spend_refusals")]

    operations = [migrations.RunPython(forward, reverse, elidable=False)]
