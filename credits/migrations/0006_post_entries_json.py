from django.db import migrations

from credits.migrations._sql import postgresql_only

forward, reverse = postgresql_only(__file__)


class Migration(migrations.Migration):
    """On PostgreSQL, credits_post_entries takes its entries as one JSON array (the SQL beside
    this file); undone, the array-taking function of 0005 comes back. Nothing to do on
    SQLite."""

    dependencies = [("credits", "0005_post_entries_function")]

    operations = [migrations.RunPython(forward, reverse, elidable=False)]
