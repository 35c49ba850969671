"""The set-based helpers of `core.bulk` and the `any_of` lookup, on SQLite and PostgreSQL:
what they write is what the ORM would write, bad input writes nothing."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from core.bulk import copy_columns, update_columns, update_rows
from migrations_app.models import MigrationStatus, UserMigration
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def users():
    return [UserFactory() for _ in range(3)]


def rows():
    return list(
        UserMigration.objects.order_by("user_id").values_list(
            "user_id", "source", "status", "legacy_amount", "rollback_data", "attempts"
        )
    )


# --- any_of -------------------------------------------------------------------------------


def test_any_of_matches_what_in_matches(users):
    ids = [users[0].pk, users[2].pk, 10_000]
    for user in users:
        UserMigration.objects.create(user=user, source="usd_balance")
    by_any = set(UserMigration.objects.filter(user_id__any_of=ids).values_list("pk", flat=True))
    by_in = set(UserMigration.objects.filter(user_id__in=ids).values_list("pk", flat=True))
    assert by_any == by_in and len(by_any) == 2
    assert set(
        UserMigration.objects.filter(source__any_of=["usd_balance", "other"]).values_list(
            "user_id", flat=True
        )
    ) == {user.pk for user in users}
    # A join, a set, and an update or delete through it.
    assert UserMigration.objects.filter(user__username__any_of={users[1].username}).count() == 1
    assert UserMigration.objects.filter(pk__any_of=[]).count() == 0
    assert UserMigration.objects.filter(user_id__any_of=ids).update(attempts=7) == 2
    assert UserMigration.objects.filter(user_id__any_of=[users[1].pk]).delete()[0] == 1


def test_any_of_sends_one_array_parameter_on_postgresql(users):
    queryset = UserMigration.objects.filter(user_id__any_of=[user.pk for user in users])
    sql, params = queryset.query.get_compiler(using="default").as_sql()
    if connection.vendor == "postgresql":
        assert "= ANY(%s::integer[])" in sql
        assert params == ([user.pk for user in users],)
    else:
        assert " IN (%s, %s, %s)" in sql
        assert list(params) == [user.pk for user in users]


@pytest.mark.parametrize("value", ["12", UserMigration.objects.values("user_id")])
def test_any_of_takes_only_a_list_of_values(value):
    with pytest.raises(TypeError):
        list(UserMigration.objects.filter(user_id__any_of=value))


# --- inserts ------------------------------------------------------------------------------


def test_copy_columns_writes_the_values_and_fills_defaults(users):
    before = timezone.now()
    copy_columns(
        UserMigration,
        {
            "user_id": [users[0].pk, users[1].pk],
            "source": ["usd_balance", "rate_limit"],
            "legacy_amount": [Decimal("12.3400"), None],
            "rollback_data": [{"balance_usd": "12.34", "nested": [1, "x"]}, {}],
        },
    )
    assert rows() == [
        (
            users[0].pk,
            "usd_balance",
            MigrationStatus.PENDING,
            Decimal("12.3400"),
            {"balance_usd": "12.34", "nested": [1, "x"]},
            0,
        ),
        (users[1].pk, "rate_limit", MigrationStatus.PENDING, None, {}, 0),
    ]
    for row in UserMigration.objects.all():
        assert row.updated_at >= before - timedelta(seconds=1)
        assert row.legacy_amounts == {} and row.error_message == ""


@pytest.mark.parametrize(
    "columns",
    [
        pytest.param({"user_id": [1, 2], "source": ["a"]}, id="uneven columns"),
        pytest.param({"user_id": [1], "no_such_field": ["a"]}, id="unknown field"),
    ],
)
def test_copy_columns_refuses_bad_columns_and_writes_nothing(users, columns):
    from django.core.exceptions import FieldDoesNotExist

    with pytest.raises((ValueError, FieldDoesNotExist)):
        copy_columns(UserMigration, columns)
    assert rows() == []


def test_copy_columns_raises_the_databases_integrity_error(users):
    UserMigration.objects.create(user=users[0], source="usd_balance")
    with pytest.raises(IntegrityError), transaction.atomic():
        copy_columns(UserMigration, {"user_id": [users[0].pk], "source": ["usd_balance"]})
    assert len(rows()) == 1


# --- updates ------------------------------------------------------------------------------


def test_update_columns_writes_each_row_its_values(users):
    created = [UserMigration.objects.create(user=user, source="usd_balance") for user in users]
    stamp = UserMigration.objects.get(pk=created[2].pk).updated_at
    update_columns(
        UserMigration,
        [created[1].pk, created[0].pk],
        {
            "status": [MigrationStatus.FAILED, MigrationStatus.COMPLETED],
            "legacy_amount": [None, Decimal("1.5000")],
            "rollback_data": [{"b": 2}, {"a": "1"}],
            "run_id": [None, None],
        },
    )
    assert rows() == [
        (users[0].pk, "usd_balance", MigrationStatus.COMPLETED, Decimal("1.5000"), {"a": "1"}, 0),
        (users[1].pk, "usd_balance", MigrationStatus.FAILED, None, {"b": 2}, 0),
        (users[2].pk, "usd_balance", MigrationStatus.PENDING, None, {}, 0),
    ]
    untouched = UserMigration.objects.get(pk=created[2].pk)
    assert untouched.updated_at == stamp
    assert UserMigration.objects.get(pk=created[0].pk).updated_at > stamp


def test_update_rows_writes_the_named_fields_of_instances(users):
    created = [UserMigration.objects.create(user=user, source="usd_balance") for user in users]
    for index, row in enumerate(created):
        row.attempts = index + 1
        row.error_message = "not written"
    update_rows(UserMigration, created, ["attempts"])
    assert [row[5] for row in rows()] == [1, 2, 3]
    assert set(UserMigration.objects.values_list("error_message", flat=True)) == {""}


@pytest.mark.parametrize(
    ("pks", "columns"),
    [
        pytest.param([1, 2], {"attempts": [1]}, id="fewer values than rows"),
        pytest.param([1], {"id": [5]}, id="the primary key"),
    ],
)
def test_update_columns_refuses_bad_columns_and_writes_nothing(users, pks, columns):
    created = UserMigration.objects.create(user=users[0], source="usd_balance")
    pks = [created.pk if pk == 1 else pk for pk in pks]
    with pytest.raises(ValueError):
        update_columns(UserMigration, pks, columns)
    assert rows() == [(users[0].pk, "usd_balance", MigrationStatus.PENDING, None, {}, 0)]


def test_ledger_entries_are_never_updated_through_the_bulk_helpers(users):
    from credits.models import CreditTransaction
    from credits.services import credit_account_open, credit_grant

    account = credit_account_open(user=users[0])
    entry = credit_grant(account=account, amount=Decimal("5"), idempotency_key="k")
    with pytest.raises(TypeError):
        update_columns(CreditTransaction, [entry.pk], {"description": ["edited"]})
    with pytest.raises(TypeError):
        entry.description = "edited"
        update_rows(CreditTransaction, [entry], ["description"])
    assert CreditTransaction.objects.get(pk=entry.pk).description == ""
