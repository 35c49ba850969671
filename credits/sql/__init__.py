"""Raw SQL kept in .sql files, each with a forward part and, after `-- reverse`, its undo."""

from pathlib import Path

REVERSE_MARKER = "-- reverse"


def read_sql(name: str) -> tuple[str, str]:
    """Return the forward and reverse SQL of `<name>.sql` in this folder."""
    text = (Path(__file__).parent / f"{name}.sql").read_text()
    forward, _, reverse = text.partition(REVERSE_MARKER)
    return forward.strip(), reverse.strip()


def postgresql_only(name: str):
    """RunPython callables that apply a .sql file on PostgreSQL and do nothing elsewhere."""
    forward, reverse = read_sql(name)

    def run(sql):
        def apply(apps, schema_editor):
            if schema_editor.connection.vendor == "postgresql":
                schema_editor.execute(sql, params=None)

        return apply

    return run(forward), run(reverse)
