"""Record import of the REDCap simulator, at function level (REDCAP_API.md §4): what it refuses.

Whole-request errors, the per-value checks with REDCap's messages, and how values are normalised
before they are checked. What an accepted import stores is in ``test_redcap_import.py``.
"""

from __future__ import annotations

import pytest

from sandbox.redcap.validation import GENERIC_MESSAGE
from tests.sandbox.helpers_records import (
    classic_project,
    line,
    longitudinal_project,
    refused,
    run,
    slot,
)


# -- whole-request errors ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            [
                {"record_id": "1", "zip": "1", "race": "1", "intro": "x"},
                {"record_id": "2", "b": ""},
            ],
            "The following fields were not found in the project as real data fields: zip, race, "
            "intro, b",
        ),
        ([{"record_id": " ", "age": "3"}], "The record id field (record_id) is missing."),
        ([{"age": "3"}], "The record id field (record_id) is missing."),
        ([], "No data was provided."),
    ],
)
def test_whole_request_errors(rows: list[dict[str, object]], message: str) -> None:
    """Unknown columns (bare checkbox, descriptive), blank record id: one 400 message (§4.3)."""
    assert refused(classic_project(), rows) == message


@pytest.mark.parametrize("name", ["a+b", "a&b", "a#b", "o'neil", "two\nlines", "x" * 101])
def test_bad_record_names(name: str) -> None:
    """Record names over 100 characters, with a line break or + & # ' are refused (§4.3)."""
    message = refused(classic_project(), [{"record_id": name}])
    assert message.startswith("Record names may not")


def test_duplicate_rows_refused() -> None:
    """The same record-event twice in one payload is a 400 (§4.3)."""
    project = longitudinal_project()
    rows: list[dict[str, object]] = [
        {"record_id": "1", "weight": "1"},
        {"record_id": "1", "redcap_event_name": "baseline_arm_1", "weight": "2"},
        {"record_id": "2", "redcap_event_name": "followup_arm_1"},
    ]
    assert refused(project, rows).startswith("The records listed below occur more than once")


def test_invalid_event_names() -> None:
    """Unknown redcap_event_name values get one 400 listing them (§4.1)."""
    rows: list[dict[str, object]] = [
        {"record_id": "1", "redcap_event_name": "week_9_arm_1"},
        {"record_id": "2", "redcap_event_name": "baseline_arm_1"},
        {"record_id": "3", "redcap_event_name": "Baseline"},
    ]
    assert refused(longitudinal_project(), rows) == (
        "The following values of redcap_event_name are invalid: week_9_arm_1, Baseline"
    )


def test_missing_event_name_means_first_event() -> None:
    """In 15.x a missing redcap_event_name means the first event (§4.1)."""
    project = longitudinal_project()
    run(project, [{"record_id": "1", "age": "3"}])
    assert slot(project, "1", ("baseline_arm_1", "", None))["age"] == "3"


def test_unknown_data_access_group() -> None:
    """An unknown redcap_data_access_group is a 400 (the simulator has no DAGs) (§4.3)."""
    message = refused(classic_project(), [{"record_id": "1", "redcap_data_access_group": "x"}])
    assert message.endswith("redcap_data_access_group field: x")


# -- per-value validation ----------------------------------------------------------------------
DATE_YMD = (
    "Invalid date format. (NOTE: Dates must be imported here only in Y-M-D format, regardless "
    "of the specific date format designated for this field.)"
)


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("age", "1.0", GENERIC_MESSAGE),
        ("age", "ten", GENERIC_MESSAGE),
        ("age", "12\n", GENERIC_MESSAGE),
        ("weight", "7,5", GENERIC_MESSAGE),
        ("dob", "2020-02-30", DATE_YMD),
        ("dob", "01/31/2000", DATE_YMD),
        ("visit_dt", "2020-01-01", "Invalid datetime format."),
        ("visit_ts", "2020-01-01 25:00:00", "Invalid datetime format."),
        ("email", "not-an-email", "The value must be a valid email address."),
        ("sex", "3", "The value is not a valid category for sex"),
        ("color", "Red", "The value is not a valid category for color"),
        ("consent", "yes", "The value is not a valid category for consent"),
        ("ok", "2", "The value is not a valid category for ok"),
        (
            "race____1",
            "2",
            "race is a checkbox field and thus can only have a value of '1' (checked) or '0' "
            "(unchecked).",
        ),
        ("visit_complete", "3", "The value is not a valid category for visit_complete"),
        ("tm", "24:00", "The value must be a valid time"),
        ("score", "101", "The value for a slider field must be between 0 and 100."),
        ("score", "5.5", "The value for a slider field must be an integer."),
        ("phone", "12345", "The value must be a valid 10-digit"),
    ],
)
def test_invalid_values(column: str, value: str, message: str) -> None:
    """Invalid values get "rec","field","value","msg" lines with §4.3's messages, nothing saved."""
    body = refused(classic_project(), [{"record_id": "7", column: value}])
    assert body.startswith(f'"7","{column}","{value}","{message}')


def test_errors_are_collected_and_quoted() -> None:
    """All errors come back, one CSV line each joined by \\n, with " doubled (§4.3)."""
    project = classic_project()
    rows: list[dict[str, object]] = [
        {"record_id": "1", "age": 'x"y', "name": "ok"},
        {"record_id": "2", "sex": "9", "age": "5"},
    ]
    assert refused(project, rows) == "\n".join(
        [
            '"1","age","x""y","' + GENERIC_MESSAGE + '"',
            line("2", "sex", "9", "The value is not a valid category for sex"),
        ]
    )
    assert "1" not in project.records


def test_valid_values_of_every_type_are_stored() -> None:
    """Valid values of each type are accepted and stored as given (§4.3)."""
    project = classic_project()
    row: dict[str, object] = {
        "record_id": "1",
        "age": "-4",
        "weight": "1.5e3",
        "dob": "2020-02-29",
        "email": "a.b@example.org",
        "sex": "2",
        "race____1": "1",
        "consent": "0",
        "visit_dt": "2020-01-01 09:30",
        "visit_ts": "2020-01-01 09:30:15",
        "color": "g",
        "score": "100",
        "ok": "1",
        "tm": "23:59",
        "notes": "any\ntext",
        "visit_complete": "2",
    }
    run(project, [row])
    stored = slot(project, "1")
    assert {k: stored[k] for k in row} == {k: str(v) for k, v in row.items()}


# -- normalisation ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("column", "given", "date_format", "stored"),
    [
        ("dob", "2020-1-5", "YMD", "2020-01-05"),
        ("dob", "1/5/2020", "MDY", "2020-01-05"),
        ("dob", "5/1/2020", "DMY", "2020-01-05"),
        ("dob", "2020-01-05", "MDY", "2020-01-05"),
        ("dob", "12/31/99", "MDY", "1999-12-31"),
        ("visit_dt", "2020-01-05T09:30", "YMD", "2020-01-05 09:30"),
        ("visit_dt", "2020-01-05 09:30:59", "YMD", "2020-01-05 09:30"),
        ("visit_dt", "1/5/2020 9:30", "MDY", "2020-01-05 09:30"),
        ("visit_ts", "2020-01-05 09:30", "YMD", "2020-01-05 09:30:00"),
        ("visit_ts", "2020-1-5T09:30:07", "YMD", "2020-01-05 09:30:07"),
        ("tm", "9:05", "YMD", "09:05"),
        ("phone", "615.555.0100", "YMD", "(615) 555-0100"),
    ],
)
def test_values_are_normalised_before_validation(
    column: str, given: str, date_format: str, stored: str
) -> None:
    """Dates padded and reordered, T -> space, seconds fitted to the type (§4.3)."""
    project = classic_project()
    run(project, [{"record_id": "1", column: given}], date_format=date_format)
    assert slot(project, "1")[column] == stored


def test_mdy_date_message() -> None:
    """With dateFormat MDY, a bad date names the M/D/Y format (§4.3)."""
    body = refused(classic_project(), [{"record_id": "1", "dob": "13/31/2020"}], date_format="MDY")
    assert "only in M/D/Y format" in body
