"""The REDCap logic functions the simulator supports, with REDCap's own semantics.

Each follows the PHP function REDCap calls for it (REDCAP_API.md §3 "Functions"). Functions
REDCap has but the simulator does not are a parse error naming them, never a silent match.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from sandbox.redcap.logic_ast import Value
from sandbox.redcap.logic_values import (
    NAN,
    PHP_TRIM,
    is_numeric_string,
    is_numeric_value,
    php_str,
    string_to_float,
    to_number,
)

Clock = Callable[[], datetime]
Impl = Callable[[Sequence[Value], Clock], Value]

# name -> (fewest, most) arguments; None = no upper bound. "if" is evaluated lazily by the
# evaluator, isblankormissingcode sees the raw field value (REDCap strips its chkNull()).
ARITY: dict[str, tuple[int, int | None]] = {
    "if": (3, 3),
    "datediff": (3, 5),
    "contains": (2, 2),
    "not_contain": (2, 2),
    "starts_with": (2, 2),
    "ends_with": (2, 2),
    "isblankormissingcode": (1, 1),
    "sum": (1, None),
    "min": (1, None),
    "max": (1, None),
    "round": (1, 2),
    "abs": (1, 1),
    "length": (1, 1),
    "lower": (1, 1),
    "upper": (1, 1),
    "trim": (1, 1),
}

# On REDCap's allow-list (RC LogicParser::$allowedFunctions) but not simulated.
UNSUPPORTED_FUNCTIONS = frozenset(
    {
        "left", "right", "mid", "find", "concat", "concat_ws", "replace_text", "calcdate",
        "calctext", "year", "month", "day", "roundup", "rounddown", "sqrt", "exponential",
        "mean", "median", "stdev", "mod", "isnumber", "isinteger", "isblanknotmissingcode",
        "hasmissingcode", "ismissingcode", "log",
    }
)  # fmt: skip

_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_ASCII_UPPER = str.maketrans(string.ascii_lowercase, string.ascii_uppercase)
# The date forms datediff() reads: YYYY-MM-DD, optionally with HH:MM or HH:MM:SS.
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?: (\d{2}):(\d{2})(?::(\d{2}))?)?")
_SECONDS_PER_UNIT = {
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "M": 2630016.0,  # 30.44 days
    "y": 31556952.0,  # 365.2425 days
}


def _lower(value: Value) -> str:
    # PHP 8.2's strtolower/stripos only fold ASCII letters.
    return php_str(value).translate(_ASCII_LOWER)


def _contains(args: Sequence[Value], _: Clock) -> Value:
    return _lower(args[1]) in _lower(args[0])


def _not_contain(args: Sequence[Value], _: Clock) -> Value:
    return _lower(args[1]) not in _lower(args[0])


def _starts_with(args: Sequence[Value], _: Clock) -> Value:
    return _lower(args[0]).startswith(_lower(args[1]))


def _ends_with(args: Sequence[Value], _: Clock) -> Value:
    return _lower(args[0]).endswith(_lower(args[1]))


def isblankormissingcode(value: Value) -> bool:
    """Blank test on the raw value. The env does not report the project's missing-data
    codes, so only blanks count (REDCap also counts those codes)."""
    return php_str(value) == ""


def _numbers(args: Sequence[Value]) -> list[float]:
    """The arguments sum/min/max keep: numeric after trimming; blanks and text are skipped."""
    kept = (php_str(arg).strip(PHP_TRIM) for arg in args)
    return [string_to_float(text) for text in kept if is_numeric_string(text)]


def _sum(args: Sequence[Value], _: Clock) -> Value:
    numbers = _numbers(args)
    return math.fsum(numbers) if numbers else NAN


def _min(args: Sequence[Value], _: Clock) -> Value:
    numbers = _numbers(args)
    return min(numbers) if numbers else NAN


def _max(args: Sequence[Value], _: Clock) -> Value:
    numbers = _numbers(args)
    return max(numbers) if numbers else NAN


def _round(args: Sequence[Value], _: Clock) -> Value:
    """REDCap's roundRC(): NaN unless numeric with an integer precision; halves away from 0."""
    number = args[0]
    precision = php_str(args[1]).strip(PHP_TRIM) if len(args) > 1 else "0"
    if not re.fullmatch(r"[-+]?(?:0|[1-9]\d*)", precision) or not is_numeric_value(number):
        return NAN
    value = to_number(number)
    if not math.isfinite(value):
        return value
    places = int(precision)
    try:
        exact = Decimal(repr(value)).scaleb(places).quantize(Decimal(1), ROUND_HALF_UP)
    except InvalidOperation:
        return value  # too many digits to round at this precision: already that precise
    return float(exact.scaleb(-places))


def _abs(args: Sequence[Value], _: Clock) -> Value:
    return abs(to_number(args[0]))


def _length(args: Sequence[Value], _: Clock) -> Value:
    return float(len(php_str(args[0]).encode("utf-8")))  # strlen counts bytes


def _lower_fn(args: Sequence[Value], _: Clock) -> Value:
    return _lower(args[0])


def _upper_fn(args: Sequence[Value], _: Clock) -> Value:
    return php_str(args[0]).translate(_ASCII_UPPER)


def _trim(args: Sequence[Value], _: Clock) -> Value:
    return php_str(args[0]).strip(PHP_TRIM)


def _parse_date(text: str) -> datetime | None:
    match = _DATE.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(part or 0) for part in match.groups())
    try:
        return datetime(year, month, day, hour, minute, second)
    except ValueError:
        return None


def _is_signed(flag: Value) -> bool:
    # PHP: $returnSigned === true || === 'true' || === 1 || === '1'
    return flag is True or flag in ("true", "1") or (type(flag) is float and flag == 1)


def _datediff(args: Sequence[Value], now: Clock) -> Value:
    """|d2 - d1| (or d2 - d1 when signed) in the unit; NaN for a blank or malformed date.

    Dates are YYYY-MM-DD[ HH:MM[:SS]] or 'today'/'now' (the env's clock). Narrower than
    REDCap on purpose: an impossible date such as 2024-13-01 is NaN (PHP's mktime would roll
    it over), time-only values are NaN, and a 'mdy'/'dmy' 4th argument does not convert
    literal dates. Whole dates differ by whole days (UTC arithmetic, as REDCap's), so REDCap's
    rounding of 'd' between two dates changes nothing.
    """
    unit = php_str(args[2])
    flag: Value = args[3] if len(args) > 3 else False
    if php_str(flag).strip().lower() in ("ymd", "mdy", "dmy"):
        # The 4th argument is a date format; returnSigned then comes 5th.
        flag = args[4] if len(args) > 4 else False
    if unit not in _SECONDS_PER_UNIT:
        return NAN
    moments: list[datetime] = []
    for arg in args[:2]:
        text = php_str(arg).strip(PHP_TRIM)
        if text.lower() in ("today", "now"):
            current = now().replace(microsecond=0)
            moment: datetime | None = (
                current
                if text.lower() == "now"
                else datetime(current.year, current.month, current.day)
            )
        else:
            moment = _parse_date(text)
        if moment is None:
            return NAN
        moments.append(moment)
    seconds = (moments[1] - moments[0]).total_seconds()
    if not _is_signed(flag):
        seconds = abs(seconds)
    return seconds / _SECONDS_PER_UNIT[unit]


IMPLS: dict[str, Impl] = {
    "datediff": _datediff,
    "contains": _contains,
    "not_contain": _not_contain,
    "starts_with": _starts_with,
    "ends_with": _ends_with,
    "sum": _sum,
    "min": _min,
    "max": _max,
    "round": _round,
    "abs": _abs,
    "length": _length,
    "lower": _lower_fn,
    "upper": _upper_fn,
    "trim": _trim,
}
