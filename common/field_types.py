"""Which REDCap field definitions can hold what redcap-relay writes, and how to write to them.

Coordinators build the pipeline fields by uploading ``redcap/pipeline_instrument.csv`` or by
hand in the Online Designer, and REDCap stores our values the same way in many definitions: a
Text Box or a Notes Box, a dropdown or radio buttons, any date-time validation or none. We accept
every definition that stores what we write and refuse only one that would really fail (REDCap
would reject our value on import), naming the field and the fix.

Times: REDCap's API takes date-times as Y-M-D whatever the field's display format (``_mdy``,
``_dmy``), with seconds only for the ``datetime_seconds_*`` validations; an unvalidated field gets
seconds too. A field without seconds keeps minute precision (the time is truncated).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

WITH_SECONDS = "%Y-%m-%d %H:%M:%S"
WITHOUT_SECONDS = "%Y-%m-%d %H:%M"

_FREE_TEXT = ("text", "notes")
_CHOICES = ("dropdown", "radio")
_DATETIME = ("datetime_ymd", "datetime_mdy", "datetime_dmy")
_DATETIME_SECONDS = ("datetime_seconds_ymd", "datetime_seconds_mdy", "datetime_seconds_dmy")
# "int" and "float" are the names older REDCap versions stored for integer and number.
_WHOLE_NUMBER = ("integer", "int", "number", "float")

_TYPE_NAMES = {"text": "Text Box", "notes": "Notes Box", "dropdown": "dropdown", "radio": "radio"}


class Kind(StrEnum):
    """What a pipeline field holds."""

    CHOICE = "choice"  # one of our status codes
    TIME = "time"  # a date and time in TIMEZONE
    COUNT = "count"  # a whole number >= 0
    TEXT = "text"  # free text: SIDs, numbers in E.164, codes, messages


def field_type(row: Mapping[str, str]) -> str:
    return row.get("field_type", "")


def validation(row: Mapping[str, str]) -> str:
    return row.get("text_validation_type_or_show_slider_number", "")


def choice_codes(row: Mapping[str, str]) -> set[str]:
    """The raw codes of a dropdown or radio field (``"a, Label | b, Label"``)."""
    return {
        part.split(",", 1)[0].strip()
        for part in row.get("select_choices_or_calculations", "").split("|")
        if part.strip()
    }


def problem(name: str, kind: Kind, row: Mapping[str, str], codes: Collection[str] = ()) -> str:
    """Why ``row`` cannot hold what we write as ``kind`` (with the fix), or "" if it can.

    ``codes`` are the status codes a CHOICE field must offer.
    """
    ftype, check = field_type(row), validation(row)
    if kind is Kind.CHOICE:
        if ftype not in _CHOICES:
            return f"{name} is a {_type_name(ftype)}; make it a dropdown (or radio) with our codes"
        lacking = [code for code in codes if code not in choice_codes(row)]
        if lacking:
            return f"{name} lacks the code(s) {', '.join(lacking)}; add them to its choices"
        return ""
    if ftype not in _FREE_TEXT:
        return f"{name} is a {_type_name(ftype)}; make it a Text Box"
    if ftype == "notes" or not check:
        return ""
    if kind is Kind.TIME and check in _DATETIME + _DATETIME_SECONDS:
        return ""
    if kind is Kind.COUNT and check in _WHOLE_NUMBER:
        return ""
    wanted = {
        Kind.TIME: "a date-time validation (e.g. datetime_seconds_ymd) or none",
        Kind.COUNT: "integer, number or no validation",
        Kind.TEXT: "no validation",
    }[kind]
    return f"{name} is validated as {check}, which refuses what we write; give it {wanted}"


def time_pattern(row: Mapping[str, str]) -> str:
    """The ``strftime`` pattern REDCap's API accepts for this field's date-time validation."""
    return WITHOUT_SECONDS if validation(row) in _DATETIME else WITH_SECONDS


def format_time(row: Mapping[str, str], moment: datetime, tz: ZoneInfo) -> str:
    """``moment`` as this field stores it: Y-M-D in the study's zone, seconds if it keeps them."""
    return moment.astimezone(tz).strftime(time_pattern(row))


def _type_name(ftype: str) -> str:
    return _TYPE_NAMES.get(ftype, f"{ftype or 'typeless'} field")


def parse_time(text: str, tz: ZoneInfo, *, earliest: bool = False) -> datetime | None:
    """A stored date-time (Y-M-D, with or without seconds, study zone) as an aware time; None if
    blank or bad.

    Stored times carry no offset, so in the hour a daylight-saving change repeats (fall back)
    one text names two instants. Read it as the **later** one by default, which is what every
    age and delay wants: a claim never looks older than it is, a delay never ends early. A
    search for what happened since that time wants the **earlier** one (``earliest``), so it
    misses nothing. Outside that hour both are the same instant. The instant comes back in UTC:
    Python subtracts two times of one zone as wall-clock times, fold and all ignored.
    """
    text = text.strip()
    for pattern in (WITH_SECONDS, WITHOUT_SECONDS):
        try:
            naive = datetime.strptime(text, pattern)
        except ValueError:
            continue
        return naive.replace(tzinfo=tz, fold=0 if earliest else 1).astimezone(UTC)
    return None
