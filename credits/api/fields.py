"""Strict decimal and boolean input: one grammar for every amount that enters through the API
or an admin form.

An amount is a string of ASCII digits with an optional sign and at most the column's decimal
places: `^[+-]?(0|[1-9][0-9]{0,k-1})(\\.[0-9]{1,p})?$`, where k = max_digits - decimal_places
(12 for the ledger's columns) and p = decimal_places (2). So "12", "+12", "-0.5", "12.50" are
amounts; "", " 12", "12 ", ".5", "5.", "012", "1_0", "1e3", "NaN", "Infinity", Arabic-Indic and
fullwidth digits (non-ASCII, which Python's Decimal() would take) are not, nor are JSON numbers
(amounts are strings, as the schema says) or booleans. Leading zeros are refused like JSON
refuses them in numbers, so every value has one spelling of its integer part and the digit
bound is the column's range: nothing that parses can overflow the column.

Each field also says which values it takes (non-zero; positive or signed; an upper bound of
10**n), and its OpenAPI pattern is built from the same rule, so the schema admits exactly the
strings the server accepts (tests/test_amount_parser.py holds them to each other).
"""

import re
from decimal import Decimal

from django import forms
from django.core.validators import RegexValidator
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from rest_framework import serializers

from credits.models import AMOUNT_DIGITS, AMOUNT_PLACES


def decimal_grammar(*, integer_digits: int, places: int) -> str:
    """The syntax of a decimal string (sign, digits, places), as a regex without anchors."""
    return rf"[+-]?(?:0|[1-9][0-9]{{0,{integer_digits - 1}}})(?:\.[0-9]{{1,{places}}})?"


def _nonzero_fraction(places: int) -> str:
    # A fraction of 1..places digits with a non-zero digit, without lookahead (schema tools
    # generate strings from the pattern): one branch per position of the first non-zero digit.
    return "|".join(
        f"0{{{zeros}}}[1-9][0-9]{{0,{places - zeros - 1}}}"
        if zeros
        else f"[1-9][0-9]{{0,{places - 1}}}"
        for zeros in range(places)
    )


def value_pattern(*, integer_digits: int, places: int, signed: bool, max_power: int | None) -> str:
    """An anchored pattern of the strings whose value the field takes: non-zero, positive
    unless `signed`, at most 10**`max_power` in magnitude when it is given (10**n included,
    e.g. 100 for percent), else bounded by the digits alone."""
    sign = "[+-]?" if signed else r"\+?"
    fraction = rf"(?:\.[0-9]{{1,{places}}})?"
    top_digits = integer_digits if max_power is None else max_power
    branches = [rf"[1-9][0-9]{{0,{top_digits - 1}}}{fraction}"]
    if max_power is not None:
        branches.append(rf"1{'0' * max_power}(?:\.0{{1,{places}}})?")
    branches.append(rf"0\.(?:{_nonzero_fraction(places)})")
    return f"^{sign}(?:{'|'.join(branches)})$"


class StrictDecimalField(serializers.DecimalField):
    """A non-zero decimal string in the strict grammar above; anything else is a 400 `invalid`.

    `signed` takes negative values; `max_value` may be 10**n (percent's 100) or left to the
    digits. Zero is never a valid amount, rate or percent here."""

    default_error_messages = {
        "invalid": 'Send a decimal string of ASCII digits such as "12.50": an optional sign, '
        "no spaces, no exponent, at most {places} decimal places.",
        "not_a_string": 'Send the number as a string, e.g. "12.50".',
        "zero": "The value must not be zero.",
        "negative": "The value must be greater than zero.",
    }

    def __init__(self, *, signed=False, max_value=None, **kwargs):
        max_digits = kwargs.pop("max_digits", AMOUNT_DIGITS)
        decimal_places = kwargs.pop("decimal_places", AMOUNT_PLACES)
        self.signed = signed
        integer_digits = max_digits - decimal_places
        self.max_power = None
        if max_value is not None:
            max_value = Decimal(max_value)
            power = len(str(int(max_value))) - 1
            if max_value != Decimal(10) ** power or power >= integer_digits:
                raise ValueError("max_value is 10**n below the digit bound, or None")
            self.max_power = power
        self.grammar = re.compile(
            decimal_grammar(integer_digits=integer_digits, places=decimal_places)
        )
        self.pattern = value_pattern(
            integer_digits=integer_digits,
            places=decimal_places,
            signed=signed,
            max_power=self.max_power,
        )
        super().__init__(
            max_digits=max_digits,
            decimal_places=decimal_places,
            max_value=max_value,
            coerce_to_string=True,
            **kwargs,
        )

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, str):
            self.fail("not_a_string")
        if not self.grammar.fullmatch(data):
            self.fail("invalid", places=self.decimal_places)
        value = Decimal(data)
        if value == 0:
            self.fail("zero")
        if value < 0 and not self.signed:
            self.fail("negative")
        return self.quantize(value)


def parse_amount(raw, *, signed: bool = False) -> Decimal:
    """The ledger amount in `raw`, or serializers.ValidationError: the API's parser, callable."""
    return StrictDecimalField(signed=signed).run_validation(raw)


class StrictDecimalFieldExtension(OpenApiSerializerFieldExtension):
    """The schema of a StrictDecimalField: a string with the field's own value pattern."""

    target_class = "credits.api.fields.StrictDecimalField"
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction):
        field = self.target
        assert isinstance(field, StrictDecimalField)
        if direction == "response":
            return {"type": "string", "format": "decimal"}
        return {"type": "string", "format": "decimal", "pattern": field.pattern}


# Printable ASCII, no space at either end: a key's spelling is what the schema's pattern says.
KEY_PATTERN = r"^[!-~](?:[ -~]*[!-~])?$"


class IdempotencyKeyField(serializers.CharField):
    """A client's idempotency key: printable ASCII, not starting or ending with a space.

    Not trimmed: " k" and "k" are not quietly one key, and the schema's pattern is the rule.
    A JSON number is refused (DRF's CharField would take 12 as "12"): the schema says string."""

    default_error_messages = {"not_a_string": "Send the key as a string."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_a_string")
        return super().to_internal_value(data)

    def __init__(self, **kwargs):
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)
        self.validators.append(
            RegexValidator(
                KEY_PATTERN.replace("$", r"\Z"),
                message="Use printable ASCII characters, no space at either end.",
            )
        )


class StrictBooleanField(serializers.BooleanField):
    """JSON true or false, nothing else ("true", 1, 0, "yes" are refused)."""

    default_error_messages = {"invalid": "Send true or false."}

    def to_internal_value(self, data):
        if isinstance(data, bool):
            return data
        self.fail("invalid")


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer, nothing else ("60", 60.0, true are refused, which DRF's would take)."""

    default_error_messages = {"invalid": "Send a whole number, e.g. 3600."}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class AmountFormField(forms.DecimalField):
    """The admin forms' amount: Django's parsing, bounds and messages, then the API's grammar,
    so what Django alone would take ("1_0", " 5", "1e3", non-ASCII digits) is refused too."""

    grammar = re.compile(decimal_grammar(integer_digits=AMOUNT_DIGITS - AMOUNT_PLACES, places=2))

    def __init__(self, **kwargs):
        kwargs.setdefault("max_digits", AMOUNT_DIGITS)
        kwargs.setdefault("decimal_places", AMOUNT_PLACES)
        super().__init__(**kwargs)

    def clean(self, value):
        amount = super().clean(value)
        if amount is not None and not (isinstance(value, str) and self.grammar.fullmatch(value)):
            raise forms.ValidationError(
                StrictDecimalField.default_error_messages["invalid"].format(places=2),
                code="invalid",
            )
        return amount


class IdempotencyKeyFieldExtension(OpenApiSerializerFieldExtension):
    target_class = "credits.api.fields.IdempotencyKeyField"

    def map_serializer_field(self, auto_schema, direction):
        schema = {"type": "string", "pattern": KEY_PATTERN, "minLength": 1}
        if self.target.max_length is not None:
            schema["maxLength"] = self.target.max_length
        return schema
