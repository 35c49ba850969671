"""One user's failure, even at the database, fails that user alone (invariant 6)."""

from decimal import Decimal

import pytest

from billing.models import UserProfile
from credits.models import CreditAccount, CreditTransaction
from credits.selectors import ledger_sum
from migrations_app.models import MigrationRun, MigrationStatus, RunStatus, UserMigration
from tests.factories import LegacyAccountFactory, LegacyCreditTransactionFactory
from tests.helpers import sources_args

WRITE_REFUSED = "the database refused this user's migration: "

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("batch_size", ["500", "2"])
def test_a_write_failing_at_the_database_fails_only_that_user(migrate, batch_size):
    # given: one batch; two legacy accounts name one Stripe customer, and the profile's
    # stripe_customer_id is unique, so the second user's write fails at the database
    before = [LegacyAccountFactory(credits_balance=Decimal("1.00")) for _ in range(2)]
    holder = LegacyAccountFactory(credits_balance=Decimal("10.00"), stripe_customer_id="cus_x")
    clash = LegacyAccountFactory(credits_balance=Decimal("20.00"), stripe_customer_id="cus_x")
    LegacyCreditTransactionFactory(user=clash.user, delta=Decimal("20.00"))
    after = [LegacyAccountFactory(credits_balance=Decimal("3.00")) for _ in range(2)]
    # when
    _, out = migrate(
        "--execute", "--yes", "--batch-size", batch_size, *sources_args("user_fields"), expect=1
    )
    # then
    row = UserMigration.objects.get(user_id=clash.user_id)
    assert row.status == MigrationStatus.FAILED
    assert row.error_message.startswith(WRITE_REFUSED)
    assert "stripe_customer_id" in row.error_message
    assert row.attempts == 1
    assert f"user {clash.user_id} {clash.user.email} [user_fields]: {WRITE_REFUSED}" in out
    # nothing of the failed user's migration stayed: no entries, no history, no profile sync
    assert not CreditTransaction.objects.filter(account__user_id=clash.user_id).exists()
    assert not UserProfile.objects.filter(user_id=clash.user_id, stripe_customer_id="cus_x")
    for legacy, credits in (
        [(holder, "10.00")] + [(x, "1.00") for x in before] + [(x, "3.00") for x in after]
    ):
        migration = UserMigration.objects.get(user_id=legacy.user_id)
        assert migration.status == MigrationStatus.COMPLETED
        assert migration.attempts == 1
        account = CreditAccount.objects.get(user_id=legacy.user_id)
        assert account.balance == Decimal(credits) == ledger_sum(account=account)
    assert UserProfile.objects.get(user_id=holder.user_id).stripe_customer_id == "cus_x"
    run = MigrationRun.objects.get()
    assert run.status == RunStatus.COMPLETED_WITH_ERRORS
    assert run.processed == 6
    migrate("--verify", *sources_args("user_fields"))
