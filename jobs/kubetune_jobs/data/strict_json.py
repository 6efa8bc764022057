"""What a row's JSON may hold, and the parser that enforces it: a bad value drops one row, never prepare.

Python's json module accepts more than JSON (NaN, Infinity, numbers that overflow to inf), builds
strings with lone surrogates that cannot be written back as UTF-8, and raises RecursionError or
ValueError (not JSONDecodeError) on deep nesting or integers of thousands of digits. Every one of
those used to escape as an exception and end the job. Here each is an `InvalidJSON` with a stable
snake_case reason that prepare counts in stats.json:

    malformed_json       not JSON at all
    invalid_utf8         bytes that are not UTF-8 text
    non_finite_number    NaN, Infinity, or a number too large for a float
    huge_integer         an integer of more than MAX_INT_DIGITS digits
    too_deeply_nested    containers nested more than MAX_DEPTH levels
    lone_surrogate       text holding half of a UTF-16 surrogate pair (not encodable as UTF-8)
    non_string_key       an object key that is not text (rows from Arrow or Python sources)
    unsupported_value    a value JSON has no type for (bytes, dates from Parquet or the Hub)
"""

from __future__ import annotations

import json
import math
import re
from itertools import accumulate
from typing import Any

# Far deeper than any real tool schema or argument (about ten levels), far shallower than Python's
# recursion limit, which the chat template and jsonschema both walk into.
MAX_DEPTH = 64
# No argument a model should learn to copy is longer; int() itself refuses 4300 digits and more.
MAX_INT_DIGITS = 100
_INT_LIMIT = 10**MAX_INT_DIGITS
# Only an escape can put a surrogate into parsed text (decoded UTF-8 holds none).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_BRACKET_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}
_NOT_BRACKETS = bytes(b for b in range(256) if b not in _BRACKET_STEP)


class InvalidJSON(ValueError):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def text_bytes(text: str) -> int:
    """UTF-8 length of `text`; InvalidJSON if it holds a lone surrogate."""
    if text.isascii():
        return len(text)
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise InvalidJSON("lone_surrogate", f"U+{ord(text[exc.start]):04X} at character {exc.start}") from None


def check(value: Any) -> int:
    """Raise InvalidJSON unless `value` is plain, finite, bounded JSON; returns the UTF-8 bytes of its text."""
    size = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            size += text_bytes(item)
        elif isinstance(item, dict | list | tuple):
            if depth > MAX_DEPTH:
                raise InvalidJSON("too_deeply_nested", f"more than {MAX_DEPTH} levels of arrays and objects")
            if isinstance(item, dict):
                for key, child in item.items():
                    if not isinstance(key, str):
                        raise InvalidJSON("non_string_key", f"key {str(key)[:40]!r} is a {type(key).__name__}")
                    size += text_bytes(key)
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)
        elif item is None or isinstance(item, bool):
            pass
        elif isinstance(item, int):
            if not -_INT_LIMIT < item < _INT_LIMIT:
                raise InvalidJSON("huge_integer", f"an integer of more than {MAX_INT_DIGITS} digits")
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise InvalidJSON("non_finite_number", f"{item!r} is not a JSON number")
        else:
            raise InvalidJSON("unsupported_value", f"a {type(item).__name__} is not a JSON value")
    return size


def _int(text: str) -> int:
    if len(text) > MAX_INT_DIGITS + (text[0] == "-"):
        raise InvalidJSON("huge_integer", f"an integer of {len(text)} digits")
    return int(text)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise InvalidJSON("non_finite_number", f"{text[:40]} is too large for a float")
    return value


def _constant(name: str) -> Any:
    raise InvalidJSON("non_finite_number", f"{name} is not a JSON number")


_DECODER = json.JSONDecoder(parse_int=_int, parse_float=_float, parse_constant=_constant)


def _too_deep(text: str) -> bool:
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return False  # the common case, decided without a scan
    brackets = _STRING.sub("", text).encode().translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_BRACKET_STEP.__getitem__, brackets)), default=0) > MAX_DEPTH


def loads(text: str) -> Any:
    """`json.loads` of text that must be plain JSON, as `check` defines it; every failure is an InvalidJSON.

    Equivalent to `check(json.loads(text))` (apart from which problem is named first), but without
    walking every value: numbers are checked as they are parsed, depth and surrogates on the text."""
    try:
        value = _DECODER.decode(text)
    except InvalidJSON:
        raise
    except json.JSONDecodeError as exc:
        raise InvalidJSON("malformed_json", f"{exc.msg} (line {exc.lineno} column {exc.colno})") from None
    except RecursionError:
        raise InvalidJSON("too_deeply_nested", "nested deeper than the parser can follow") from None
    except UnicodeDecodeError as exc:
        raise InvalidJSON("invalid_utf8", f"byte {exc.start} is not UTF-8") from None
    except ValueError as exc:
        raise InvalidJSON("malformed_json", str(exc)[:100]) from None
    if isinstance(value, dict | list) and _too_deep(text):
        raise InvalidJSON("too_deeply_nested", f"more than {MAX_DEPTH} levels of arrays and objects")
    if _SURROGATE_ESCAPE.search(text):
        check(value)  # rare: find out whether the escapes pair up
    return value
