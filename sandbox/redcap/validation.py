"""Value rules of REDCap's record import: how a value is normalised, then whether it is valid.

REDCap rewrites some values before it checks them (REDCAP_API.md §4.3 "Normalisation before
validation"): dates get leading zeros and, with ``dateFormat`` MDY/DMY, are reordered to Y-M-D;
datetimes lose a ``T`` and gain or lose seconds to fit their type; times and phone numbers are
reformatted. Only then does it test the value against the field's type, choices and validation,
answering with the messages of the §4.3 table. The same module says which fields REDCap logic
treats as numbers (§3), since that too is a property of a field's type and choices.
"""

from __future__ import annotations

import re
from datetime import date, datetime

from sandbox.redcap.model import Field, parse_choices

# 15.7.6 answers integer and number failures (and any other regex-only type) with this.
GENERIC_MESSAGE = (
    "The value you provided could not be validated because it does not follow the expected "
    "format. Please try again."
)
_DATETIME_SHAPES = {"YMD": "Y-M-D", "MDY": "M/D/Y", "DMY": "D/M/Y"}

TIME_MESSAGE = "The value must be a valid time in HH:MM format (00:00 to 23:59)."
EMAIL_MESSAGE = "The value must be a valid email address."
PHONE_MESSAGE = "The value must be a valid 10-digit North American phone number."
ZIPCODE_MESSAGE = "The value must be a valid U.S. zipcode (5 or 9 digits)."
SLIDER_INTEGER_MESSAGE = "The value for a slider field must be an integer."
CATEGORY_MESSAGE = "The value is not a valid category for {field}"
CHECKBOX_MESSAGE = (
    "{field} is a checkbox field and thus can only have a value of '1' (checked) or '0' "
    "(unchecked)."
)

_INTEGER = re.compile(r"[-+]?\d+", re.ASCII)
_NUMBER = re.compile(r"[-+]?[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?", re.ASCII)
_NUMBER_DP = re.compile(r"number_(\d)dp", re.ASCII)
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})", re.ASCII)
_TIME = re.compile(r"([01]\d|2[0-3]):[0-5]\d", re.ASCII)
_SECONDS = re.compile(r"([01]\d|2[0-3]):[0-5]\d:[0-5]\d", re.ASCII)
_EMAIL = re.compile(r"[^\s@\"(),:;<>\[\]\\]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+", re.ASCII)
_ZIPCODE = re.compile(r"\d{5}(-\d{4})?", re.ASCII)
_LOOSE_DATE = re.compile(r"(\d{1,4})[-/](\d{1,2})[-/](\d{1,4})", re.ASCII)
_LOOSE_TIME = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?", re.ASCII)
_NUMERIC_CODE = re.compile(r"-?\d+(\.\d+)?", re.ASCII)
_NUMERIC_VALIDATION = re.compile(r"(integer|number|int|float|number_\w+)", re.ASCII)


# -- which fields REDCap logic compares as numbers ------------------------------------------
def is_numeric_field(item: Field, missing_data_codes: str = "") -> bool:
    """True when REDCap wraps the field in ``chkNull()`` in logic (REDCAP_API.md §3)."""
    if item.field_type in {"calc", "slider", "yesno", "truefalse", "file"}:
        return True
    if item.field_type == "text":
        return bool(_NUMERIC_VALIDATION.fullmatch(item.validation))
    if item.field_type in {"radio", "dropdown", "checkbox"}:
        codes = [code for code, _ in item.choices()]
        codes += [code for code, _ in parse_choices(missing_data_codes)]
        return bool(codes) and all(_NUMERIC_CODE.fullmatch(code) for code in codes)
    return False


# -- normalisation ---------------------------------------------------------------------------
def _expand_year(year: str, now: datetime) -> str:
    """Two-digit years: this century up to this year, the last one after it (REDCap warns)."""
    if len(year) != 2:
        return year
    short = int(year)
    century = now.year // 100 * 100
    return str(century + short if short <= now.year % 100 else century - 100 + short)


def normalise_date(text: str, date_format: str, now: datetime) -> str:
    """``1/5/2020`` (MDY) -> ``2020-01-05``; ``2020-1-5`` -> ``2020-01-05``; others unchanged."""
    match = _LOOSE_DATE.fullmatch(text)
    if match is None:
        return text
    first, second, third = match.groups()
    if "/" in text and date_format in {"MDY", "DMY"}:
        if "-" in text:
            return text  # a mix of separators is not a date in any format
        month, day = (first, second) if date_format == "MDY" else (second, first)
        year = _expand_year(third, now)
    elif "/" in text and date_format == "YMD" and len(first) != 4:
        return text  # REDCap does not reorder slashed dates under YMD: it fails validation
    else:
        year, month, day = first, second, third
    if len(year) != 4:
        return text
    return f"{year}-{int(month):02d}-{int(day):02d}"


def _normalise_time(text: str, *, seconds: bool | None) -> str:
    """``9:05`` -> ``09:05``; seconds dropped (False) or added (True); None keeps them as given."""
    match = _LOOSE_TIME.fullmatch(text)
    if match is None:
        return text
    hours, minutes, secs = match.groups()
    base = f"{int(hours):02d}:{minutes}"
    if seconds is None:
        return base if secs is None else f"{base}:{secs}"
    return f"{base}:{secs or '00'}" if seconds else base


def normalise(item: Field, value: str, date_format: str, now: datetime) -> str:
    """The value REDCap would check and store for ``value`` imported into ``item``."""
    if item.field_type != "text" or value == "":
        return value
    kind = item.validation
    if kind.startswith("date_"):
        return normalise_date(value, date_format, now)
    if kind.startswith("datetime_"):
        date_part, sep, time_part = value.replace("T", " ", 1).partition(" ")
        if not sep:
            return value
        with_seconds = kind.startswith("datetime_seconds_")
        return (
            f"{normalise_date(date_part, date_format, now)} "
            f"{_normalise_time(time_part.strip(), seconds=with_seconds)}"
        )
    if kind == "time":
        return _normalise_time(value, seconds=None)
    if kind == "phone":
        digits = re.sub(r"[\s().-]", "", value)
        if re.fullmatch(r"[0-9]{10}", digits):
            return f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"
    return value


# -- validation ------------------------------------------------------------------------------
def _is_real_date(text: str) -> bool:
    match = _DATE.fullmatch(text)
    if match is None:
        return False
    try:
        date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        return False
    return True


def date_message(date_format: str) -> str:
    """The date message for ``dateFormat`` (YMD is quoted in §4.3; MDY/DMY follow its pattern)."""
    shape = _DATETIME_SHAPES.get(date_format, "Y-M-D")
    return (
        f"Invalid date format. (NOTE: Dates must be imported here only in {shape} format, "
        "regardless of the specific date format designated for this field.)"
    )


def _datetime_message(date_format: str, *, seconds: bool) -> str:
    shape = _DATETIME_SHAPES.get(date_format, "Y-M-D") + (" H:M:S" if seconds else " H:M")
    return (
        f"Invalid datetime format. (NOTE: Datetimes must be imported here only in {shape} "
        "format, regardless of the specific datetime format designated for this field.)"
    )


def _text_error(kind: str, value: str, date_format: str) -> str | None:
    """The §4.3 message for a text field whose validation ``kind`` rejects ``value``."""
    if kind in {"integer", "int"}:
        return None if _INTEGER.fullmatch(value) else GENERIC_MESSAGE
    if kind in {"number", "float"}:
        return None if _NUMBER.fullmatch(value) else GENERIC_MESSAGE
    places = _NUMBER_DP.fullmatch(kind)
    if places:
        pattern = rf"[-+]?[0-9]+\.[0-9]{{{places.group(1)}}}"
        return None if re.fullmatch(pattern, value) else GENERIC_MESSAGE
    if kind.startswith("date_"):
        return None if _is_real_date(value) else date_message(date_format)
    if kind.startswith("datetime_"):
        seconds = kind.startswith("datetime_seconds_")
        date_part, _, time_part = value.partition(" ")
        clock = _SECONDS if seconds else _TIME
        if _is_real_date(date_part) and clock.match(time_part):
            return None
        return _datetime_message(date_format, seconds=seconds)
    if kind == "time":
        return None if _TIME.fullmatch(value) else TIME_MESSAGE
    if kind == "email":
        return None if _EMAIL.fullmatch(value) else EMAIL_MESSAGE
    if kind == "phone":
        return None if re.fullmatch(r"\([0-9]{3}\) [0-9]{3}-[0-9]{4}", value) else PHONE_MESSAGE
    if kind == "zipcode":
        return None if _ZIPCODE.fullmatch(value) else ZIPCODE_MESSAGE
    return None  # other validation types are not simulated: accept the value


def _slider_error(item: Field, value: str) -> str | None:
    if not _INTEGER.fullmatch(value):
        return SLIDER_INTEGER_MESSAGE
    low = int(item.text_validation_min) if _INTEGER.fullmatch(item.text_validation_min) else 0
    high = int(item.text_validation_max) if _INTEGER.fullmatch(item.text_validation_max) else 100
    if not low <= int(value) <= high:
        return f"The value for a slider field must be between {low} and {high}."
    return None


def status_error(column: str, value: str) -> str | None:
    """Why REDCap refuses ``value`` for the form status ``column`` (0, 1 or 2), or None."""
    return None if value in {"0", "1", "2"} else CATEGORY_MESSAGE.format(field=column)


def value_error(item: Field, value: str, date_format: str) -> str | None:
    """Why REDCap refuses non-blank, normalised ``value`` for ``item``, or None (§4.3)."""
    kind = item.field_type
    if kind == "checkbox":
        return None if value in {"0", "1"} else CHECKBOX_MESSAGE.format(field=item.field_name)
    if kind in {"radio", "dropdown", "yesno", "truefalse"}:
        codes = {code for code, _ in item.choices()}
        return None if value in codes else CATEGORY_MESSAGE.format(field=item.field_name)
    if kind == "slider":
        return _slider_error(item, value)
    if kind == "text":
        return _text_error(item.validation, value, date_format)
    return None
