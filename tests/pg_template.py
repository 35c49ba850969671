"""PostgreSQL test databases cloned from one migrated template.

Under pytest-xdist each worker has its own test database (pytest-django appends _gw0, _gw1,
...). Migrating each from zero costs every worker the whole migration graph; instead the first
worker to arrive migrates `<test name>_template_<hash>` once, under an advisory lock, and every
worker creates its database with `CREATE DATABASE ... TEMPLATE`, which copies files and takes a
second. The hash covers what decides the migrated schema: the migration files (and the SQL
they install) of the migrated apps, the settings, and the installed versions of the apps whose
tables are created from their models. A changed input gives a new name; older templates of
the same test database are dropped when the new one is built.
"""

import functools
import hashlib
import importlib.metadata
import re
from pathlib import Path

import psycopg
from django.apps import apps
from django.conf import settings
from django.db import connection
from django.db.backends.base.creation import TEST_DATABASE_PREFIX

ROOT = Path(__file__).resolve().parents[1]
SETTINGS_FILES = ("project/settings.py", "project/settings_test.py")


def template_inputs_hash() -> str:
    digest = hashlib.sha256()
    unmigrated = set(settings.MIGRATION_MODULES)
    for config in sorted(apps.get_app_configs(), key=lambda config: config.label):
        digest.update(f"app {config.name}\n".encode())
        if config.label in unmigrated:
            digest.update(f"version {distribution_version(config.name)}\n".encode())
            continue
        folder = Path(config.path)
        for path in sorted([*folder.glob("migrations/**/*"), *folder.glob("sql/**/*")]):
            if path.is_file() and path.suffix in (".py", ".sql"):
                digest.update(f"file {path.relative_to(folder)}\n".encode())
                digest.update(path.read_bytes())
    for name in SETTINGS_FILES:
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()[:12]


@functools.cache
def distributions() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def distribution_version(module: str) -> str:
    names = distributions().get(module.split(".", 1)[0], [])
    return ",".join(sorted(f"{name}=={importlib.metadata.version(name)}" for name in names))


def server_connection():
    """Autocommit on the server's maintenance database: CREATE/DROP DATABASE run outside
    transactions and never from a connection to the database they copy or drop."""
    params = connection.settings_dict
    return psycopg.connect(
        dbname="postgres",
        host=params["HOST"] or "127.0.0.1",
        port=params["PORT"] or 5432,
        user=params["USER"],
        password=params["PASSWORD"] or None,
        autocommit=True,
    )


def quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def worker_database_name() -> str:
    """This worker's test database, as Django's test runner names it."""
    params = connection.settings_dict
    return params["TEST"].get("NAME") or TEST_DATABASE_PREFIX + params["NAME"]


def base_test_name() -> str:
    """The test database name without the xdist worker suffix."""
    return re.sub(r"_gw\d+$", "", worker_database_name())


def build_template(server, name: str, *, verbosity: int) -> None:
    """Migrate a database the way Django's test runner does, then rename it to `name`; the
    rename is atomic, so a template that exists is complete."""
    building = f"{name}_building"
    server.execute(f"DROP DATABASE IF EXISTS {quoted(building)} WITH (FORCE)")
    original, test_settings = connection.settings_dict["NAME"], connection.settings_dict["TEST"]
    test_name = test_settings.get("NAME")
    test_settings["NAME"] = building
    try:
        connection.creation.create_test_db(verbosity=verbosity, autoclobber=True, serialize=False)
    finally:
        connection.close()
        connection.settings_dict["NAME"] = original
        test_settings["NAME"] = test_name
    server.execute(f"ALTER DATABASE {quoted(building)} RENAME TO {quoted(name)}")


def create_from_template(*, rebuild: bool, verbosity: int) -> str:
    """Create this worker's test database from the current template (built first if missing,
    or if `rebuild`); point the connection at it and return its name."""
    name, base = worker_database_name(), base_test_name()
    template = f"{base}_template_{template_inputs_hash()}"
    with server_connection() as server:
        # One build at a time per test database name; the other workers wait for it.
        server.execute("SELECT pg_advisory_lock(hashtext(%s))", [base])
        try:
            existing = {
                row[0]
                for row in server.execute(
                    "SELECT datname FROM pg_database WHERE datname LIKE %s",
                    [base.replace("_", r"\_") + r"\_template\_%"],
                )
            }
            if rebuild and template in existing:
                server.execute(f"DROP DATABASE {quoted(template)} WITH (FORCE)")
                existing.discard(template)
            if template not in existing:
                for stale in sorted(existing):
                    server.execute(f"DROP DATABASE IF EXISTS {quoted(stale)} WITH (FORCE)")
                build_template(server, template, verbosity=verbosity)
            server.execute(f"DROP DATABASE IF EXISTS {quoted(name)} WITH (FORCE)")
            server.execute(f"CREATE DATABASE {quoted(name)} TEMPLATE {quoted(template)}")
        finally:
            server.execute("SELECT pg_advisory_unlock(hashtext(%s))", [base])
    connection.close()
    connection.settings_dict["NAME"] = name
    return name


def drop(name: str) -> None:
    connection.close()
    with server_connection() as server:
        server.execute(f"DROP DATABASE IF EXISTS {quoted(name)} WITH (FORCE)")
