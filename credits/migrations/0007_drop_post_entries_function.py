from django.db import migrations

from credits.migrations._sql import postgresql_only

forward, reverse = postgresql_only(__file__)


class Migration(migrations.Migration):
    """On PostgreSQL, drop credits_post_entries: the entries of concurrent threads are no
    longer combined into shared calls (credits.services.posting). Undone, 0006's function
    comes back (the SQL beside this file). Nothing to do on SQLite."""

    dependencies = [("credits", "0006_post_entries_json")]

    operations = [migrations.RunPython(forward, reverse, elidable=False)]
