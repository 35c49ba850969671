"""With LEGACY_DATABASE_URL set, the legacy billing tables live in a second database.

Reads and writes of the `Legacy*` models go to the "legacy" alias; everything else stays on
"default". Their links to users carry no database constraint (billing/models/legacy.py), so a
relation across the two is allowed. `migrate --database legacy` creates the legacy tables
there, for a test or a copy; a real legacy database already has them and is not migrated.
"""

LEGACY_ALIAS = "legacy"


def is_legacy(model) -> bool:
    return model._meta.app_label == "billing" and model.__name__.startswith("Legacy")


class LegacyRouter:
    def db_for_read(self, model, **hints):
        return LEGACY_ALIAS if is_legacy(model) else None

    db_for_write = db_for_read

    def allow_relation(self, first, second, **hints):
        if is_legacy(type(first)) or is_legacy(type(second)):
            return True
        return None

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        if app_label != "billing" or model_name is None:
            return db != LEGACY_ALIAS
        return (db == LEGACY_ALIAS) == model_name.startswith("legacy")
