from django.db import migrations

from credits.migrations._sql import postgresql_only

forward, reverse = postgresql_only(__file__)


class Migration(migrations.Migration):
    """On PostgreSQL, refuse UPDATE and DELETE on ledger entries (the SQL beside this file);
    nothing to do on SQLite."""

    dependencies = [("credits", "0001_initial")]

    operations = [migrations.RunPython(forward, reverse, elidable=False)]
