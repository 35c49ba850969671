from django.db import migrations

from credits.sql import postgresql_only

forward, reverse = postgresql_only("ledger_append_only")


class Migration(migrations.Migration):
    """On PostgreSQL, refuse UPDATE and DELETE on ledger entries; nothing to do on SQLite."""

    dependencies = [("credits", "0001_initial")]

    operations = [migrations.RunPython(forward, reverse, elidable=False)]
