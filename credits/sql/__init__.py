"""Raw SQL kept in .sql files, each with a forward part and, after `-- reverse`, its undo."""

from pathlib import Path

REVERSE_MARKER = "-- reverse"


def read_sql(name: str) -> tuple[str, str]:
    """Return the forward and reverse SQL of `<name>.sql` in this folder."""
    text = (Path(__file__).parent / f"{name}.sql").read_text()
    forward, _, reverse = text.partition(REVERSE_MARKER)
    return forward.strip(), reverse.strip()


def on_postgresql(*statements: str):
    """A RunPython callable that runs these SQL texts in order on PostgreSQL and does nothing
    elsewhere."""

    def apply(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            for sql in statements:
                schema_editor.execute(sql, params=None)

    return apply


def postgresql_only(name: str):
    """RunPython callables that apply a .sql file on PostgreSQL and do nothing elsewhere."""
    forward, reverse = read_sql(name)
    return on_postgresql(forward), on_postgresql(reverse)
