"""Runs a migration's frozen SQL: the `<migration>.pg.sql` file beside it, its forward part
and, after a line `-- reverse`, its undo, on PostgreSQL only.

A migration that installs SQL carries its own copy, so a later edit to live code never changes
what an applied migration did. Migrations import this module, so it stays this small and does
not change either.
"""

import re
from pathlib import Path

REVERSE_MARKER = re.compile(r"^-- reverse$", re.MULTILINE)


def postgresql_only(migration_file: str):
    """RunPython callables, forward and reverse, that run the SQL of the `.pg.sql` file beside
    `migration_file` (pass `__file__`) on PostgreSQL and do nothing elsewhere."""
    text = Path(migration_file).with_suffix(".pg.sql").read_text()
    forward, reverse = REVERSE_MARKER.split(text, maxsplit=1)
    return _on_postgresql(forward.strip()), _on_postgresql(reverse.strip())


def _on_postgresql(sql: str):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql, params=None)

    return apply
