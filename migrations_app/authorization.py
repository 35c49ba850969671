"""Who may do what with the migration: one permission per operation, checked by the services
(`migrations_app.services`), so the API, the admin and any other caller share one rule.

`actor=None` is an operator at a shell (`migrate_credits`): whoever can run the command can
already read and write the database, so the command is allowed and its runs record
`triggered_by=None`. Every staff door passes its user, and `is_staff` alone opens nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from migrations_app.exceptions import MigrationPermissionDenied

RUN_PERMISSION = "migrations_app.run_migration"
PREVIEW_PERMISSION = "migrations_app.preview_migration"
VIEW_PERMISSION = "migrations_app.view_migrationrun"
ROLLBACK_PERMISSION = "migrations_app.rollback_migration"
RETRY_PERMISSION = "migrations_app.retry_migration"
# Forcing a rollback (taking back credits already spent) and rates above
# CREDITS_MIGRATION_RATE_MAX: the billing super admin's permission.
UNLIMITED_PERMISSION = "credits.adjust_unlimited"


def is_allowed(actor, permission: str) -> bool:
    """Whether `actor` (None: an operator at the shell) holds `permission`."""
    if actor is None:
        return True
    return bool(actor.is_active and actor.has_perm(permission))


def migration_permission_check(actor, permission: str) -> None:
    """Refuse (MigrationPermissionDenied, 403) unless `actor` holds `permission`."""
    if not is_allowed(actor, permission):
        raise MigrationPermissionDenied(permission=permission)


@dataclass(frozen=True)
class RollbackAuthority:
    """The checked right of `actor` to roll back migrations, and to force them when `force`.

    Made only by passing the checks (in `__post_init__`), so the engine's rollback, which takes
    one of these instead of an actor and a flag, cannot be reached with `force` by anyone
    without `credits.adjust_unlimited`, whichever door they come through.
    """

    actor: Any
    force: bool = False

    def __post_init__(self) -> None:
        migration_permission_check(self.actor, ROLLBACK_PERMISSION)
        if self.force:
            migration_permission_check(self.actor, UNLIMITED_PERMISSION)
