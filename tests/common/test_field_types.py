"""Which REDCap field definitions the pipeline accepts, and how times are written to each."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from common.field_types import Kind, format_time, problem

CODES = ["registered", "sending"]
STATUS_CHOICES = "registered, Registered | sending, Sending | extra, Our own code"


def row(field_type: str, validation: str = "", choices: str = "") -> dict[str, str]:
    return {
        "field_type": field_type,
        "text_validation_type_or_show_slider_number": validation,
        "select_choices_or_calculations": choices,
    }


ACCEPTED = [
    (Kind.CHOICE, row("dropdown", choices=STATUS_CHOICES)),
    (Kind.CHOICE, row("radio", choices=STATUS_CHOICES)),
    *[(Kind.TIME, row("text", v)) for v in ("", "datetime_ymd", "datetime_mdy", "datetime_dmy")],
    *[(Kind.TIME, row("text", f"datetime_seconds_{order}")) for order in ("ymd", "mdy", "dmy")],
    (Kind.TIME, row("notes")),
    *[(Kind.COUNT, row("text", v)) for v in ("", "integer", "number", "int", "float")],
    (Kind.TEXT, row("text")),
    (Kind.TEXT, row("notes")),
]


@pytest.mark.parametrize(("kind", "definition"), ACCEPTED)
def test_definitions_that_store_our_values_are_accepted(
    kind: Kind, definition: dict[str, str]
) -> None:
    """Text or Notes Box, dropdown or radio, any date-time validation or none: all accepted."""
    assert problem("pipeline_x", kind, definition, CODES) == ""


REFUSED = [
    (Kind.CHOICE, row("text"), "make it a dropdown"),
    (Kind.CHOICE, row("checkbox", choices=STATUS_CHOICES), "make it a dropdown"),
    (Kind.CHOICE, row("dropdown", choices="registered, Registered"), "lacks the code(s) sending"),
    (Kind.TIME, row("text", "date_ymd"), "give it a date-time validation"),
    (Kind.TIME, row("text", "time"), "give it a date-time validation"),
    (Kind.TIME, row("calc"), "make it a Text Box"),
    (Kind.COUNT, row("text", "number_2dp"), "integer, number or no validation"),
    (Kind.TEXT, row("text", "phone"), "no validation"),
    (Kind.TEXT, row("text", "integer"), "no validation"),
    (Kind.TEXT, row("dropdown", choices="1, One"), "make it a Text Box"),
    (Kind.TEXT, row("descriptive"), "make it a Text Box"),
]


@pytest.mark.parametrize(("kind", "definition", "fix"), REFUSED)
def test_definitions_that_would_refuse_our_values_are_named_with_the_fix(
    kind: Kind, definition: dict[str, str], fix: str
) -> None:
    """A definition REDCap would reject our value for is refused, naming the field and fix."""
    said = problem("pipeline_x", kind, definition, CODES)
    assert said.startswith("pipeline_x ") and fix in said


MOMENT = datetime(2026, 3, 2, 17, 4, 5, tzinfo=UTC)
BOSTON = ZoneInfo("America/New_York")


@pytest.mark.parametrize(
    ("validation", "written"),
    [
        ("datetime_seconds_ymd", "2026-03-02 12:04:05"),
        ("datetime_seconds_mdy", "2026-03-02 12:04:05"),
        ("datetime_ymd", "2026-03-02 12:04"),
        ("datetime_mdy", "2026-03-02 12:04"),
        ("datetime_dmy", "2026-03-02 12:04"),
        ("", "2026-03-02 12:04:05"),
    ],
)
def test_times_are_written_as_the_api_takes_them_for_each_validation(
    validation: str, written: str
) -> None:
    """Always Y-M-D in TIMEZONE (the API's form); seconds only where the field keeps them."""
    assert format_time(row("text", validation), MOMENT, BOSTON) == written
