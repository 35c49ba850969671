"""Set-based writes of a batch that Django's bulk methods make slow for hundreds of rows.

`insert_for_users` adds one row per user where none exists. On PostgreSQL it is one
`INSERT ... SELECT ... FROM unnest(<user ids>) ON CONFLICT DO NOTHING`: the other columns are the
same for every row, so they travel once instead of once per row, which bulk_create would do
(and prepare in Python, value by value). Elsewhere it is bulk_create(ignore_conflicts=True).
The constant columns come from the model itself (`values`, then each field's default and
pre_save), so the statement follows the model when a field is added.
"""

from django.db import connections, router


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
