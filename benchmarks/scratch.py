"""What every benchmark does around its measurements: require PostgreSQL in DATABASE_URL,
set Django up with the test settings, create a scratch database the way Django's test runner
does, run, and drop it again (after a failure or Ctrl-C too). The database DATABASE_URL names
is never written to.

Exit codes: the run's own, 2 on a usage error, 130 when interrupted.
"""

import os
import sys
from collections.abc import Callable


def run_in_scratch_database(name: str, run: Callable[[str], int]) -> int:
    """Call run(scratch database name) inside a fresh scratch database; return its exit code."""
    if not os.environ.get("DATABASE_URL"):
        print(
            f"{name}: set DATABASE_URL to a PostgreSQL server, e.g. "
            "DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres; the benchmark creates "
            "and drops its own scratch databases there and never writes to the one named.",
            file=sys.stderr,
        )
        return 2
    os.environ["DJANGO_SETTINGS_MODULE"] = "project.settings_test"
    # The legacy tables must be the scratch database's, never those of another server.
    os.environ.pop("LEGACY_DATABASE_URL", None)

    import django

    django.setup()
    from django.conf import settings
    from django.db import OperationalError, connection

    if connection.vendor != "postgresql":
        print(
            f"{name}: DATABASE_URL must point at PostgreSQL, not {connection.vendor}.",
            file=sys.stderr,
        )
        return 2
    # A query log would cost time per statement and grow without end.
    settings.DEBUG = False
    original_name = connection.settings_dict["NAME"]
    test_name = f"{name}_{os.getpid()}"
    connection.settings_dict.setdefault("TEST", {})["NAME"] = test_name
    try:
        try:
            connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
        except OperationalError as error:
            print(f"{name}: cannot create the scratch database: {error}", file=sys.stderr)
            return 2
        return run(test_name)
    except KeyboardInterrupt:
        print(f"{name}: interrupted; the scratch databases are dropped.", file=sys.stderr)
        return 130
    finally:
        # Only ever drop the scratch database: if creating it failed before Django switched
        # NAME over, destroy_test_db would drop the database DATABASE_URL names. (A benchmark
        # that clones it drops its clones itself.)
        if connection.settings_dict["NAME"] == test_name:
            connection.close()
            connection.creation.destroy_test_db(original_name, verbosity=0, keepdb=False)
