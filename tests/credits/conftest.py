import pytest


@pytest.fixture(params=["portable", pytest.param("postgresql", marks=pytest.mark.postgres)])
def write_path(request, settings):
    """Each way an entry is written (credits.services.posting): the portable path, on every
    database (on PostgreSQL with the fast path turned off), and PostgreSQL's one-statement
    fast path, marked `postgres`: off PostgreSQL it skips with the reason (a failure under
    CI=true), and it runs in the PostgreSQL pass. A test that uses this fixture holds both
    paths to the same invariants."""
    settings.CREDITS_POSTGRESQL_FAST_PATH = request.param == "postgresql"
    return request.param
