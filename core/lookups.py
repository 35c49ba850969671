"""`field__any_of=values`: membership in a list sent as one parameter.

Django's `__in` writes one placeholder per value: for a batch of 500 ids each value is prepared
and resolved on its own, the SQL carries 500 placeholders, and psycopg's client-side binding
parses the statement to fill them. On PostgreSQL `any_of` sends the whole list as one typed
array, `column = ANY(%s::bigint[])`, the same plan as `IN` for an index scan. Elsewhere
(SQLite) it is Django's `__in`. Values are plain values of the column's type (ids, strings),
not expressions or querysets; an empty list matches nothing, as `__in` does.

Registered on every field when the core app is ready (`core.apps`), so every app's queries
can use it.
"""

from django.db.models import Field, ForeignObject, Lookup
from django.db.models.lookups import In


class AnyOf(Lookup):
    lookup_name = "any_of"
    prepare_rhs = False

    def get_prep_lookup(self):
        if hasattr(self.rhs, "resolve_expression") or isinstance(self.rhs, str | bytes):
            raise TypeError("any_of takes a list of plain values, not an expression or a string")
        return list(self.rhs)

    def as_sql(self, compiler, connection):
        return compiler.compile(In(self.lhs, self.rhs))

    def as_postgresql(self, compiler, connection):
        lhs, params = self.process_lhs(compiler, connection)
        field = self.lhs.output_field
        values = [field.get_db_prep_value(value, connection, prepared=False) for value in self.rhs]
        return f"{lhs} = ANY(%s::{field.cast_db_type(connection)}[])", [*params, values]


def register() -> None:
    # Relations keep lookups of their own (`user__in`, `user_id__in`): register there too.
    Field.register_lookup(AnyOf)
    ForeignObject.register_lookup(AnyOf)
