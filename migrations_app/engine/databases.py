"""The transaction of one unit of migration work, over one database or two.

With the legacy tables in their own database (LEGACY_DATABASE_URL), a batch is a transaction on
each, nested so that the ledger's commits first: if the legacy commit then failed, the users
would hold their credits and their UserMigration rows (with the old legacy values in
rollback_data) while the legacy rows still hold their balances, which `--verify` reports and a
rerun does not grant twice. The other order could zero legacy balances with no record of them.
Two databases cannot commit atomically together; this order keeps every value recoverable.
"""

from contextlib import contextmanager

from django.db import DEFAULT_DB_ALIAS, router, transaction

from billing.models import LegacyBilling


def legacy_alias() -> str:
    return router.db_for_write(LegacyBilling) or DEFAULT_DB_ALIAS


@contextmanager
def unit_of_work():
    """A durable transaction on the default database, and on the legacy one when separate."""
    legacy = legacy_alias()
    if legacy == DEFAULT_DB_ALIAS:
        with transaction.atomic(durable=True):
            yield
    else:
        with transaction.atomic(using=legacy, durable=True), transaction.atomic(durable=True):
            yield
