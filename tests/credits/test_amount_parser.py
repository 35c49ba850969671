"""The amount parser accepts exactly the strict decimal grammar, and the schema's pattern of
each field admits exactly the strings the field accepts."""

import re
from decimal import Decimal

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from rest_framework import serializers

from credits.api.fields import StrictBooleanField, StrictDecimalField, parse_amount
from tests.helpers import ARABIC_INDIC_12, FULLWIDTH_12

# Written here independently of the field: ASCII digits, optional sign, no leading zeros, at
# most 12 integer digits (the ledger column's 14 digits less 2 places) and 2 places.
REFERENCE = re.compile(r"[+-]?(0|[1-9][0-9]{0,11})(\.[0-9]{1,2})?", re.ASCII)

NEAR_MISSES = st.one_of(
    st.from_regex(r"\A[ +-]{0,2}[0-9._eE\u0661\uff12 ]{0,16}[ \n]?\Z"),
    st.builds(
        lambda sign, digits, places: f"{sign}{digits}{places}",
        st.sampled_from(["", "+", "-", "--", " ", "+-"]),
        st.from_regex(r"\A[0-9]{0,14}\Z"),
        st.sampled_from(["", ".", ".0", ".5", ".05", ".50", ".123", "e3", "_0", "\x00"]),
    ),
    st.sampled_from(["NaN", "nan", "Infinity", "-inf", "1e3", "1_0", "0x10", "\u00bd"]),
    st.sampled_from([ARABIC_INDIC_12, FULLWIDTH_12]),
)
STRINGS = st.one_of(st.text(), NEAR_MISSES)


def accepted(raw, **kwargs):
    try:
        return parse_amount(raw, **kwargs)
    except serializers.ValidationError:
        return None


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(STRINGS)
@example("12")
@example("-0.05")
@example("999999999999.99")
@example("1000000000000")
@example("")
@example("5.")
@example(".5")
def test_the_signed_parser_accepts_exactly_the_grammar(raw):
    # when
    value = accepted(raw, signed=True)

    # then
    expected = REFERENCE.fullmatch(raw) is not None and Decimal(raw) != 0
    assert (value is not None) == expected, raw
    if expected:
        assert value == Decimal(raw)
        assert value.as_tuple().exponent == -2


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(STRINGS)
@example("0.01")
@example("-1")
@example("+1")
def test_the_positive_parser_accepts_exactly_the_positive_grammar(raw):
    value = accepted(raw)
    expected = REFERENCE.fullmatch(raw) is not None and Decimal(raw) > 0
    assert (value is not None) == expected, raw
    if expected:
        assert value == Decimal(raw)


FIELDS = {
    "amount": StrictDecimalField(),
    "signed amount": StrictDecimalField(signed=True),
    "percent": StrictDecimalField(max_digits=5, decimal_places=2, max_value=Decimal("100")),
    "rate": StrictDecimalField(max_digits=12, decimal_places=6),
}


@pytest.mark.parametrize("name", FIELDS)
@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(raw=STRINGS)
@example(raw="100")
@example(raw="100.00")
@example(raw="100.01")
@example(raw="0.000001")
@example(raw="0")
def test_the_schema_pattern_admits_exactly_what_the_field_accepts(name, raw):
    field = FIELDS[name]
    try:
        field.run_validation(raw)
        taken = True
    except serializers.ValidationError:
        taken = False
    # ECMA-262's `$` (the schema's dialect) does not match before a final newline; Python's does
    assert field.pattern.endswith("$")
    assert taken == (re.search(field.pattern[:-1] + r"\Z", raw) is not None), (name, raw)


@pytest.mark.parametrize(
    "raw",
    [
        ARABIC_INDIC_12,
        FULLWIDTH_12,
        "1_0",
        "",
        " 12",
        "12 ",
        "\t12",
        "NaN",
        "1e3",
        "Infinity",
        "5.",
        ".5",
    ],
)
def test_lenient_spellings_are_refused(raw):
    with pytest.raises(serializers.ValidationError):
        parse_amount(raw)


@pytest.mark.parametrize("value", [12, 12.5, True, None, ["12"], {"a": 1}])
def test_amounts_are_strings_not_json_numbers(value):
    with pytest.raises(serializers.ValidationError):
        parse_amount(value)


@pytest.mark.parametrize("value", [0, 1, "true", "false", "1", None, "yes", [], {}])
def test_the_strict_boolean_takes_only_true_and_false(value):
    field = StrictBooleanField()
    with pytest.raises(serializers.ValidationError):
        field.run_validation(value)
    assert field.run_validation(True) is True
    assert field.run_validation(False) is False
