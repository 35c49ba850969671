"""Set-based writes of a batch of hundreds of rows, for the ledger and the migration engine.

Django's bulk methods spend most of a migration batch in Python: every value goes through its
field's preparation (hundreds of thousands of calls per batch), and Django's client-side
binding cursor writes PostgreSQL arrays as literals, each element escaped by a regular
expression, the whole statement parsed again for placeholders. On PostgreSQL these helpers
skip both: rows are streamed with COPY, and updates send each column once, as a typed array in
binary through a server-side binding cursor (`UPDATE ... FROM unnest(...)`). Values are taken
from the instances as they are, already of their column's Python type (Decimal, int, str,
aware datetime); JSON is serialised with the field's encoder, as Django would. Elsewhere
(SQLite, the embedded default) they fall back to Django's bulk methods.

The helpers run in the caller's transaction and raise Django's database errors
(IntegrityError for a broken constraint), like the ORM.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import psycopg
from django.db import connections, models, router
from django.utils import timezone

# Fields whose attribute value PostgreSQL takes as it is; others go through the field's
# get_db_prep_save, as the ORM would.
_PLAIN_FIELDS = (
    models.AutoField,
    models.BigAutoField,
    models.IntegerField,
    models.BigIntegerField,
    models.PositiveIntegerField,
    models.CharField,
    models.TextField,
    models.DecimalField,
    models.BooleanField,
    models.DateTimeField,
    models.ForeignKey,
)


def copy_rows(model: type[models.Model], objs: Sequence[models.Model]) -> None:
    """Insert these new instances (primary keys left to the database, not read back)."""
    if not objs:
        return
    connection = connections[router.db_for_write(model)]
    if connection.vendor != "postgresql":
        model.objects.bulk_create(objs, batch_size=1000)
        return
    fields = [field for field in model._meta.concrete_fields if not field.primary_key]
    for field in fields:
        _fill_automatic(field, objs, add=True)
    columns = [_column(field, objs, connection) for field in fields]
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    connection.ensure_connection()
    with (
        connection.wrap_database_errors,
        psycopg.Cursor(connection.connection) as cursor,
        cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy,
    ):
        for row in zip(*columns, strict=True):
            copy.write_row(row)


def update_rows(model: type[models.Model], objs: Sequence[models.Model], fields: list[str]) -> None:
    """Write these fields of existing rows, matched by primary key, in one statement."""
    if not objs:
        return
    opts = model._meta
    names = list(dict.fromkeys([*fields, *_auto_now_fields(model)]))
    connection = connections[router.db_for_write(model)]
    if connection.vendor != "postgresql":
        # INSERT ... ON CONFLICT (pk) DO UPDATE, which every row hits: Django's bulk_update
        # builds a CASE per row and field, slow to compile for a big batch.
        model.objects.bulk_create(
            objs, update_conflicts=True, unique_fields=["pk"], update_fields=names
        )
        return
    target = [opts.get_field(name) for name in names]
    for field in target:
        _fill_automatic(field, objs, add=False)
    pk = opts.pk
    quote = connection.ops.quote_name
    aliases = [f"v{index}" for index in range(len(target))]
    arrays = ", ".join(f"%b::{field.db_type(connection)}[]" for field in [pk, *target])
    assignments = ", ".join(
        f"{quote(field.column)} = v.{alias}" for field, alias in zip(target, aliases, strict=True)
    )
    sql = (
        f"UPDATE {quote(opts.db_table)} SET {assignments}"
        f" FROM unnest({arrays}) AS v(pk, {', '.join(aliases)})"
        f" WHERE {quote(opts.db_table)}.{quote(pk.column)} = v.pk"
    )
    params = [_column(pk, objs, connection)] + [
        _column(field, objs, connection) for field in target
    ]
    connection.ensure_connection()
    with (
        connection.wrap_database_errors,
        psycopg.Cursor(connection.connection) as cursor,
    ):
        cursor.execute(sql, params)


def _auto_now_fields(model) -> list[str]:
    return [
        field.name for field in model._meta.concrete_fields if getattr(field, "auto_now", False)
    ]


def _fill_automatic(field, objs, *, add: bool) -> None:
    """Set auto_now / auto_now_add timestamps as the ORM's pre_save would."""
    if getattr(field, "auto_now", False) or (add and getattr(field, "auto_now_add", False)):
        now = timezone.now()
        for obj in objs:
            setattr(obj, field.attname, now)


def _column(field, objs, connection) -> list:
    attname = field.attname
    values = [getattr(obj, attname) for obj in objs]
    if isinstance(field, models.JSONField):
        return [None if value is None else json.dumps(value, cls=field.encoder) for value in values]
    if isinstance(field, _PLAIN_FIELDS):
        return values
    return [field.get_db_prep_save(value, connection) for value in values]
