from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from bridge.jsonsafe import without_nul


class SafeJSONParser(JSONParser):
    """DRF's JSON parser, made safe for any body: JSON nested past Python's recursion limit is a
    bad body, and NUL characters (which PostgreSQL cannot store) are dropped."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return without_nul(super().parse(stream, media_type, parser_context))
        except RecursionError:
            raise ParseError("the JSON is nested too deeply") from None
