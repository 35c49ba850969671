from django.db import migrations

from credits.sql import postgresql_only

forward, reverse = postgresql_only("post_entries")


class Migration(migrations.Migration):
    """On PostgreSQL, the function that writes the entries of several threads in one call
    (credits/sql/post_entries.sql); nothing to do on SQLite."""

    dependencies = [("credits", "0004_merge_approvals_and_spend_refusals")]

    operations = [migrations.RunPython(forward, reverse, elidable=False)]
