"""Lot settings that the write paths cannot use are reported by Django's system checks."""

from decimal import Decimal

import pytest

from credits.checks import lot_settings_check


def error_ids():
    return [error.id for error in lot_settings_check()]


def test_the_default_settings_pass():
    assert lot_settings_check() == []


@pytest.mark.parametrize(
    ("name", "value", "error_id"),
    [
        ("CREDITS_LOT_CATEGORIES", ["paid"], "credits.E001"),
        ("CREDITS_LOT_CATEGORIES", {"purchase": "gold"}, "credits.E002"),
        ("CREDITS_DRAW_DOWN_RANKS", "paid", "credits.E003"),
        ("CREDITS_DRAW_DOWN_RANKS", {"paid": "first"}, "credits.E004"),
        ("CREDITS_DRAW_DOWN_RANKS", {"paid'; drop table x; --": 1}, "credits.E004"),
        ("CREDITS_DRAW_DOWN_RANKS", {"paid": True}, "credits.E004"),
        ("CREDITS_MONTHLY_ROLLOVER_CAP", Decimal("-1"), "credits.E005"),
        ("CREDITS_HOLD_DEFAULT_TTL", 0, "credits.E006"),
    ],
)
def test_a_setting_the_write_paths_cannot_use_is_an_error(settings, name, value, error_id):
    # given
    setattr(settings, name, value)

    # then
    assert error_ids() == [error_id]
