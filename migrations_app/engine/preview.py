"""What the migration holds for one user, before or after they are migrated: per source, the
user's migration row when there is one, else the dry-run plan (the one planner, `plan_user`),
so staff can find a legacy customer who has no credit account yet and see what migrating them
would give. Reads only; the source's data is loaded unlocked, as the dry run does."""

from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.utils import timezone

from migrations_app.engine.execute import plan_user
from migrations_app.models import MigrationStatus, UserMigration
from migrations_app.sources import Context, get_source
from migrations_app.sources.base import default_rates


@dataclass(frozen=True)
class SourceLine:
    """One source for one user: migrated already (its row), migratable (the plan), failing
    (the plan's error), or nothing to migrate (the user has no legacy data there)."""

    source: str
    status: str  # a MigrationStatus value, or "not migrated" / "nothing to migrate"
    credits: Decimal = Decimal("0.00")
    legacy_amounts: dict = field(default_factory=dict)
    error: str = ""
    note: str = ""

    @property
    def can_migrate(self) -> bool:
        """A dry run would migrate this user from this source now."""
        return self.status == NOT_MIGRATED and not self.error


NOT_MIGRATED = "not migrated"
NOTHING = "nothing to migrate"


def migration_preview_user(*, user_id: int, sources: list[str] | None = None) -> list[SourceLine]:
    """Per source (CREDITS_MIGRATION_SOURCES by default), what migrating this user holds."""
    names = list(sources or settings.CREDITS_MIGRATION_SOURCES)
    rows = {
        row.source: row for row in UserMigration.objects.filter(user_id=user_id, source__in=names)
    }
    context = Context(
        rates=default_rates(),
        now=timezone.now(),
        keep_legacy=False,
        rounding=settings.CREDITS_ROUNDING,
    )
    lines = []
    for name in names:
        row = rows.get(name)
        if row is not None and row.status in (MigrationStatus.COMPLETED, MigrationStatus.FAILED):
            lines.append(
                SourceLine(
                    source=name,
                    status=row.status,
                    credits=row.initial_credits_granted,
                    legacy_amounts=row.legacy_amounts,
                    error=row.error_message,
                )
            )
            continue
        source = get_source(name)
        data = source.load([user_id], lock=False, context=context)
        if user_id not in data:
            lines.append(SourceLine(source=name, status=NOTHING))
            continue
        plan = plan_user(source, user_id, data[user_id], context)
        lines.append(
            SourceLine(
                source=name,
                status=NOT_MIGRATED,
                credits=plan.credits,
                legacy_amounts={key: str(value) for key, value in plan.legacy_amounts.items()},
                error=plan.error,
                note="rolled back before" if row is not None else plan.note,
            )
        )
    return lines
