"""Set-based writes of a batch of hundreds of rows, for the ledger and the migration engine.

One module for every app (the bottom of the stack): it knows models, never which app owns them.

Django's bulk methods spend most of a migration batch in Python: every value goes through its
field's preparation (hundreds of thousands of calls per batch), and Django's client-side
binding cursor writes PostgreSQL arrays as literals, each element escaped by a regular
expression, the whole statement parsed again for placeholders. On PostgreSQL these helpers
skip both: rows are streamed with COPY, and updates send each column once, as a typed array in
binary through a server-side binding cursor (`UPDATE ... FROM unnest(...)`). Values are taken
as they are, already of their column's Python type (Decimal, int, str, aware datetime); JSON is
serialised with the field's encoder, as Django would. Elsewhere (SQLite, the embedded default)
inserts fall back to Django's bulk_create and updates to one UPDATE per row (executemany).

Rows are given column by column (`copy_columns`, `update_columns`), so a caller need not build
model instances: at hundreds of rows a batch, constructing them is a good part of the cost.
`update_rows` takes instances. A model that declares `APPEND_ONLY = True` (the ledger) is
never updated through here: its rows are changed by nobody.

`insert_for_users` adds one row per user where none exists. On PostgreSQL it is one
`INSERT ... SELECT ... FROM unnest(<user ids>) ON CONFLICT DO NOTHING`: the other columns are the
same for every row, so they travel once instead of once per row, which bulk_create would do
(and prepare in Python, value by value). Elsewhere it is bulk_create(ignore_conflicts=True).
The constant columns come from the model itself (`values`, then each field's default and
pre_save), so the statement follows the model when a field is added.

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


def copy_columns(model: type[models.Model], columns: dict[str, Sequence]) -> None:
    """Insert rows given column by column, `{field name or attname: values}`, every list as
    long as the others. A field left out takes its default (auto_now fields: now) in every
    row; the primary key is left to the database."""
    lengths = {len(values) for values in columns.values()}
    if len(lengths) > 1:
        raise ValueError(f"columns of different lengths: {sorted(lengths)}")
    count = lengths.pop() if lengths else 0
    if not count:
        return
    opts = model._meta
    given = {opts.get_field(name).attname: values for name, values in columns.items()}
    fields = _insert_fields(model)
    unknown = set(given) - {field.attname for field in fields}
    if unknown:
        raise ValueError(f"not insertable fields of {opts.label}: {sorted(unknown)}")
    now = timezone.now()
    for field in fields:
        if field.attname not in given:
            automatic = getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)
            given[field.attname] = (
                [now] * count if automatic else [field.get_default() for _ in range(count)]
            )
    connection = connections[router.db_for_write(model)]
    if connection.vendor != "postgresql":
        objs = [
            model(**{field.attname: given[field.attname][index] for field in fields})
            for index in range(count)
        ]
        model.objects.bulk_create(objs, batch_size=1000)
        return
    values = [_prepare(field, given[field.attname], connection) for field in fields]
    table = connection.ops.quote_name(opts.db_table)
    names = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    connection.ensure_connection()
    with (
        connection.wrap_database_errors,
        psycopg.Cursor(connection.connection) as cursor,
        cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy,
    ):
        for row in zip(*values, strict=True):
            copy.write_row(row)


def update_rows(model: type[models.Model], objs: Sequence[models.Model], fields: list[str]) -> None:
    """Write these fields of existing rows, matched by primary key, in one statement."""
    if not objs:
        return
    opts = model._meta
    target = [opts.get_field(name) for name in dict.fromkeys([*fields, *_auto_now_fields(model)])]
    for field in target:
        _fill_automatic(field, objs)
    update_columns(
        model,
        [obj.pk for obj in objs],
        {field.attname: [getattr(obj, field.attname) for obj in objs] for field in target},
    )


def update_columns(model: type[models.Model], pks: Sequence, columns: dict[str, Sequence]) -> None:
    """Write `{field name or attname: values}` into the rows with these primary keys, the
    n-th value of each column into the n-th row; auto_now fields are set to now."""
    if getattr(model, "APPEND_ONLY", False):
        raise TypeError(f"{model._meta.label} rows are append-only: they are never updated")
    if any(len(values) != len(pks) for values in columns.values()):
        raise ValueError("every column needs one value per primary key")
    if not pks:
        return
    opts = model._meta
    given = {opts.get_field(name).attname: values for name, values in columns.items()}
    now = timezone.now()
    for name in _auto_now_fields(model):
        given.setdefault(opts.get_field(name).attname, [now] * len(pks))
    target = [opts.get_field(attname) for attname in given]
    if any(field.primary_key for field in target):
        raise ValueError("the primary key is what rows are matched by, not a column to write")
    connection = connections[router.db_for_write(model)]
    quote = connection.ops.quote_name
    if connection.vendor != "postgresql":
        # One UPDATE per row through executemany: for SQLite, the embedded default.
        assignments = ", ".join(f"{quote(field.column)} = %s" for field in target)
        prepared = [
            [field.get_db_prep_save(value, connection) for value in given[field.attname]]
            for field in target
        ]
        with connection.cursor() as cursor:
            cursor.executemany(
                f"UPDATE {quote(opts.db_table)} SET {assignments}"
                f" WHERE {quote(opts.pk.column)} = %s",
                [(*row, pk) for *row, pk in zip(*prepared, pks, strict=True)],
            )
        return
    pk = opts.pk
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
    params = [_prepare(pk, list(pks), connection)] + [
        _prepare(field, given[field.attname], connection) for field in target
    ]
    connection.ensure_connection()
    with (
        connection.wrap_database_errors,
        psycopg.Cursor(connection.connection) as cursor,
    ):
        cursor.execute(sql, params)


def insert_for_users(model, user_ids: list[int], **values) -> None:
    """Insert a row for each of these users that has none, the other fields from `values`."""
    if not user_ids:
        return
    connection = connections[router.db_for_write(model)]
    if connection.vendor != "postgresql":
        model.objects.bulk_create(
            [model(user_id=user_id, **values) for user_id in user_ids], ignore_conflicts=True
        )
        return
    template = model(user_id=user_ids[0], **values)
    columns, expressions, params = [], [], []
    for field in model._meta.concrete_fields:
        if field.primary_key:
            continue
        columns.append(connection.ops.quote_name(field.column))
        if field.attname == "user_id":
            expressions.append("unnest(%s::bigint[])")
            params.append(list(user_ids))
        else:
            expressions.append(f"%s::{field.db_type(connection)}")
            params.append(field.get_db_prep_save(field.pre_save(template, True), connection))
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(expressions)}"
            " ON CONFLICT DO NOTHING",
            params,
        )


def _insert_fields(model) -> list:
    return [field for field in model._meta.concrete_fields if not field.primary_key]


def _auto_now_fields(model) -> list[str]:
    return [
        field.name for field in model._meta.concrete_fields if getattr(field, "auto_now", False)
    ]


def _fill_automatic(field, objs) -> None:
    """Set an auto_now timestamp on existing rows, as the ORM's pre_save would on update."""
    if getattr(field, "auto_now", False):
        now = timezone.now()
        for obj in objs:
            setattr(obj, field.attname, now)


def _prepare(field, values: Sequence, connection) -> list:
    """A column's values as psycopg takes them for PostgreSQL."""
    if isinstance(field, models.JSONField):
        return [None if value is None else json.dumps(value, cls=field.encoder) for value in values]
    if isinstance(field, _PLAIN_FIELDS):
        return list(values)
    return [field.get_db_prep_save(value, connection) for value in values]
