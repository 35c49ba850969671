"""A dry run and --analyze (and --status, --verify) write nothing to any table (invariant 7),
nor any backup file."""

from decimal import Decimal

import pytest
from django.apps import apps

from credits.models import CreditTransaction
from migrations_app.engine.selection import in_percent
from migrations_app.models import MigrationRun, UserMigration
from tests.helpers import sources_args, table_contents

pytestmark = pytest.mark.django_db


@pytest.fixture
def half_migrated(migrate, legacy_world):
    """The realistic data with one source already executed for some users, so the migration's
    own tables, the ledger and the profiles hold rows a dry run could disturb."""
    users = [
        arg
        for user in (legacy_world.pro, legacy_world.mixed, legacy_world.overdrawn)
        for arg in ("--user", str(user.pk))
    ]
    migrate("--execute", "--yes", *users, *sources_args("usd_balance"), expect=1)
    assert UserMigration.objects.count() == 3
    assert MigrationRun.objects.count() == 1
    return legacy_world


@pytest.mark.parametrize(
    "args",
    [
        pytest.param((), id="default"),
        pytest.param(("--dry-run", *sources_args()), id="dry-run"),
        pytest.param(("--dry-run", "--verbose", "--format", "json", *sources_args()), id="json"),
        pytest.param(
            ("--dry-run", "--percent", "50", "--rate", "2", "--keep-legacy", *sources_args()),
            id="parameters",
        ),
        pytest.param(("--analyze", *sources_args()), id="analyze"),
        pytest.param(("--analyze", "--format", "json", *sources_args()), id="analyze-json"),
        # the other read-only modes too
        pytest.param(("--status", *sources_args()), id="status"),
        pytest.param(("--verify", "--format", "json", *sources_args()), id="verify"),
    ],
)
def test_writes_nothing_to_any_table(migrate, half_migrated, tmp_path, args):
    # given
    models = apps.get_models(include_auto_created=True)
    assert {"auth.User", "djstripe.Customer", "credits.CreditTransaction"} <= {
        model._meta.label for model in models
    }
    before = table_contents()
    files_before = sorted(tmp_path.iterdir())
    assert CreditTransaction.objects.exists()
    # when: exit 1 where the plan has users that would fail
    read_only = {"--status", "--verify"} & set(args)
    # --percent 50 takes a stable half of the users by id: the users who would fail (negative
    # legacy balances, gold's unknown plan) are in it or not depending on the ids this
    # database gave out.
    failing = (half_migrated.negative, half_migrated.overdrawn, half_migrated.gold)
    fails = "--percent" not in args or any(in_percent(u.pk, Decimal(50)) for u in failing)
    migrate(*args, expect=0 if read_only or not fails else 1)
    # then
    after = table_contents()
    assert after.keys() == before.keys()
    changed = [label for label in before if before[label] != after[label]]
    assert changed == []
    assert sorted(tmp_path.iterdir()) == files_before
