"""System checks of the lot settings: a category or rank that the write paths cannot use is
reported when the process starts (`manage.py check`, every command), not at the first spend."""

from django.conf import settings
from django.core import checks

from credits.models import LotCategory


@checks.register()
def lot_settings_check(app_configs=None, **kwargs):
    errors = []
    categories = settings.CREDITS_LOT_CATEGORIES
    if not isinstance(categories, dict):
        errors.append(
            checks.Error("CREDITS_LOT_CATEGORIES must be a JSON object.", id="credits.E001")
        )
    else:
        for key, category in categories.items():
            if category not in LotCategory.values:
                errors.append(
                    checks.Error(
                        f"CREDITS_LOT_CATEGORIES[{key!r}] is {category!r}, not a lot category.",
                        hint=f"Use one of {', '.join(LotCategory.values)}.",
                        id="credits.E002",
                    )
                )
    ranks = settings.CREDITS_DRAW_DOWN_RANKS
    if not isinstance(ranks, dict):
        errors.append(
            checks.Error("CREDITS_DRAW_DOWN_RANKS must be a JSON object.", id="credits.E003")
        )
    else:
        for category, rank in ranks.items():
            if (
                category not in LotCategory.values
                or isinstance(rank, bool)
                or not isinstance(rank, int)
            ):
                errors.append(
                    checks.Error(
                        f"CREDITS_DRAW_DOWN_RANKS maps {category!r} to {rank!r}: each key is a lot "
                        "category and each value a whole number.",
                        id="credits.E004",
                    )
                )
    if settings.CREDITS_MONTHLY_ROLLOVER_CAP < 0:
        errors.append(
            checks.Error("CREDITS_MONTHLY_ROLLOVER_CAP must not be negative.", id="credits.E005")
        )
    if not 1 <= settings.CREDITS_HOLD_DEFAULT_TTL <= settings.CREDITS_HOLD_MAX_TTL:
        errors.append(
            checks.Error(
                "CREDITS_HOLD_DEFAULT_TTL must be from 1 to CREDITS_HOLD_MAX_TTL seconds.",
                id="credits.E006",
            )
        )
    return errors
