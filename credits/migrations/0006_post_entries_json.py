from django.db import migrations

from credits.sql import on_postgresql, read_sql

NEW_FORWARD, NEW_REVERSE = read_sql("post_entries_json")
OLD_FORWARD, _ = read_sql("post_entries")


class Migration(migrations.Migration):
    """On PostgreSQL, credits_post_entries takes its entries as one JSON array
    (credits/sql/post_entries_json.sql); undone, the array-taking function of 0005 comes
    back. Nothing to do on SQLite."""

    dependencies = [("credits", "0005_post_entries_function")]

    operations = [
        migrations.RunPython(
            on_postgresql(NEW_FORWARD),
            on_postgresql(NEW_REVERSE, OLD_FORWARD),
            elidable=False,
        )
    ]
