"""JSON bodies with a nesting limit.

Python's json module recurses once per nested array or object, so a body of 100,000 `[`
raised RecursionError (a 500). Every body here is an object of scalars, lists and one level of
maps; MAX_DEPTH leaves room and refuses anything deeper with a 400 `parse_error`.
"""

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_DEPTH = 16
TOO_DEEP = f"JSON parse error - nested deeper than {MAX_DEPTH} levels."


def _deeper_than(data, limit: int) -> bool:
    level = [data]
    for _ in range(limit + 1):
        level = [
            child
            for value in level
            if isinstance(value, dict | list)
            for child in (value.values() if isinstance(value, dict) else value)
        ]
        if not level:
            return False
    return True


class BoundedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(TOO_DEEP) from None
        if _deeper_than(data, MAX_DEPTH):
            raise ParseError(TOO_DEEP)
        return data
