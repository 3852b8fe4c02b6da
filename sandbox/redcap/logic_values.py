"""PHP value semantics for REDCap logic: REDCap evaluates logic as generated PHP 8 code.

Conversions (PHP's string form of numbers, truthiness, numeric strings), loose comparison,
and REDCap's own ``chkNull``/``chkNullCompare``/``is_nan_null`` helpers (REDCAP_API.md §3).
"""

from __future__ import annotations

import math
import re

from sandbox.redcap.logic_ast import Value

NAN = math.nan
PHP_TRIM = " \t\n\r\0\x0b"
_PHP_SPACE = " \t\n\r\v\f"
# PHP 8 numeric strings: surrounding whitespace allowed, "1.", ".5" and "1e3" are numeric.
_NUMERIC = re.compile(r"[ \t\n\r\v\f]*[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?[ \t\n\r\v\f]*")
# REDCap's is_numeric_comma(): a decimal comma, turned into a point by chkNull().
_NUMERIC_COMMA = re.compile(r"[-+]?[0-9]*,?[0-9]+(?:[eE][-+]?[0-9]+)?")


class EvalAbort(Exception):
    """PHP would throw here (TypeError, DivisionByZeroError); REDCap then drops the row."""


def is_numeric_string(text: str) -> bool:
    return _NUMERIC.fullmatch(text) is not None


def is_numeric_value(value: Value) -> bool:
    """PHP ``is_numeric``: numbers (NaN included) and numeric strings, never booleans."""
    if isinstance(value, bool):
        return False
    return isinstance(value, float) or is_numeric_string(value)


def string_to_float(text: str) -> float:
    return float(text.strip(_PHP_SPACE))


def php_str(value: Value) -> str:
    """PHP's string conversion: true -> "1", false -> "", floats with 14 significant digits."""
    if isinstance(value, bool):
        return "1" if value else ""
    if isinstance(value, str):
        return value
    if math.isnan(value):
        return "NAN"
    if math.isinf(value):
        return "INF" if value > 0 else "-INF"
    text = f"{value:.14G}"
    if "E" not in text:
        return text
    mantissa, exponent = text.split("E")
    if "." not in mantissa:
        mantissa += ".0"
    return f"{mantissa}E{exponent[0]}{exponent[1:].lstrip('0') or '0'}"


def truthy(value: Value) -> bool:
    """PHP truthiness: false, 0, "" and "0" are false; NaN is true."""
    if isinstance(value, bool):
        return value
    if isinstance(value, float):
        return value != 0
    return value not in ("", "0")


def to_number(value: Value) -> float:
    """An arithmetic operand; PHP 8 throws a TypeError for a non-numeric string."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, float):
        return value
    if is_numeric_string(value):
        return string_to_float(value)
    raise EvalAbort(f"non-numeric value {value!r} in arithmetic")


def chk_null(raw: str) -> float:
    """REDCap's ``chkNull()`` for numeric fields: blank or non-numeric is NaN."""
    if _NUMERIC_COMMA.fullmatch(raw):
        raw = raw.replace(",", ".")
    if raw == "" or not is_numeric_string(raw):
        return NAN
    return string_to_float(raw)


def is_nan_null(value: Value) -> bool:
    """REDCap's ``is_nan_null()``: what ``= ""`` tests after REDCap rewrites it."""
    if isinstance(value, float):
        return math.isnan(value)
    return isinstance(value, str) and value in ("", "NaN", "NAN")


def _sign(difference: int) -> int:
    return (difference > 0) - (difference < 0)


def _numeric_order(left: float, right: float) -> int | None:
    if math.isnan(left) or math.isnan(right):
        return None
    return (left > right) - (left < right)


def _string_order(left: str, right: str) -> int:
    return (left > right) - (left < right)


def loose_order(left: Value, right: Value) -> int | None:
    """PHP 8 loose comparison: -1, 0 or 1; None when a NaN makes the values unordered.

    Booleans compare as booleans; a number and a numeric string, or two numeric strings,
    compare as numbers; otherwise the number is turned into its string and the strings
    compare byte-wise. A NaN against anything but a boolean is unordered (REDCAP_API.md §3).
    """
    if isinstance(left, bool) or isinstance(right, bool):
        return _sign(int(truthy(left)) - int(truthy(right)))
    if isinstance(left, float):
        if isinstance(right, float):
            return _numeric_order(left, right)
        if is_numeric_string(right):
            return _numeric_order(left, string_to_float(right))
        return None if math.isnan(left) else _string_order(php_str(left), right)
    if isinstance(right, float):
        flipped = loose_order(right, left)
        return None if flipped is None else -flipped
    if is_numeric_string(left) and is_numeric_string(right):
        return _numeric_order(string_to_float(left), string_to_float(right))
    return _string_order(left, right)


def holds(order: int | None, op: str) -> bool:
    """Whether comparison ``op`` holds for an ``order``; unordered is only ``!=``."""
    if order is None:
        return op == "!="
    return {
        "==": order == 0,
        "!=": order != 0,
        "<": order < 0,
        "<=": order <= 0,
        ">": order > 0,
        ">=": order >= 0,
    }[op]


def chk_null_compare(left: float, right: float, op: str) -> bool:
    """REDCap's ``chkNullCompare()``, used when both sides are numeric fields.

    Two numbers compare as numbers. One blank side: only ``!=`` holds. Two blank sides
    compare as ``'' op ''``: ``==``, ``<=`` and ``>=`` hold.
    """
    left_blank, right_blank = math.isnan(left), math.isnan(right)
    if not left_blank and not right_blank:
        return holds(_numeric_order(left, right), op)
    if left_blank and right_blank:
        return op in ("==", "<=", ">=")
    return op == "!="
