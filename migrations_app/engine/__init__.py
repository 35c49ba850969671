"""The migration engine: plan (dry run), analyze, execute, verify, rollback and status.

The command, the API and the Celery tasks are thin layers over these functions.
"""

from migrations_app.engine.execute import Selection, execute, migrate_batch, plan_users
from migrations_app.engine.report import Outcome, Report, UserOutcome
from migrations_app.engine.rollback import rollback
from migrations_app.engine.status import analyze, migration_status
from migrations_app.engine.verify import Verification, verify

__all__ = [
    "Outcome",
    "Report",
    "Selection",
    "UserOutcome",
    "Verification",
    "analyze",
    "execute",
    "migrate_batch",
    "migration_status",
    "plan_users",
    "rollback",
    "verify",
]
