from django.db import migrations

from credits.migrations._sql import postgresql_only

forward, reverse = postgresql_only(__file__)


class Migration(migrations.Migration):
    """On PostgreSQL, the functions of the fast path for debits drawn from lots and for the
    capture of a hold (the SQL beside this file); nothing to do on SQLite."""

    dependencies = [("credits", "0010_build_lots_from_ledgers")]

    operations = [migrations.RunPython(forward, reverse, elidable=False)]
