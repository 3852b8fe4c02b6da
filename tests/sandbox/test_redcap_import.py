"""Record import of the REDCap simulator, at function level (REDCAP_API.md §4)."""

from __future__ import annotations

import copy
from datetime import datetime

import pytest

from sandbox.redcap.errors import ApiError
from sandbox.redcap.importer import ImportResult, import_rows
from sandbox.redcap.model import Project, StoredRecord
from sandbox.redcap.validation import GENERIC_MESSAGE
from tests.sandbox.test_redcap_records import (
    NOW,
    classic_project,
    longitudinal_project,
    put,
    repeating_project,
)

BASE = ("", "", None)


def run(
    project: Project,
    rows: list[dict[str, object]],
    *,
    overwrite: bool = False,
    date_format: str = "YMD",
    now: datetime = NOW,
) -> ImportResult:
    return import_rows(project, rows, overwrite=overwrite, date_format=date_format, now=now)


def refused(project: Project, rows: list[dict[str, object]], **options: object) -> str:
    """The 400 message of an import that must fail and leave the project as it was."""
    before = copy.deepcopy(project.records)
    with pytest.raises(ApiError) as caught:
        run(project, rows, **options)  # type: ignore[arg-type]
    assert caught.value.status == 400
    assert project.records == before  # all or nothing
    return caught.value.message


def line(record: str, field: str, value: str, message: str) -> str:
    return f'"{record}","{field}","{value}","{message}"'


def slot(
    project: Project, record: str, where: tuple[str, str, int | None] = BASE
) -> dict[str, str]:
    return project.records[record].slots[where]


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


# -- normal vs overwrite, JSON values, ignored types --------------------------------------------
def test_normal_keeps_and_overwrite_deletes_on_blank() -> None:
    """normal ignores blanks; overwrite deletes, and a blank checkbox becomes unchecked (§4.1)."""
    project = classic_project()
    run(project, [{"record_id": "1", "age": "3", "name": "Ann", "race___1": "1"}])
    run(project, [{"record_id": "1", "age": "", "name": None, "race___1": ""}])
    assert slot(project, "1")["age"] == "3"
    run(project, [{"record_id": "1", "age": "", "race___1": ""}], overwrite=True)
    stored = slot(project, "1")
    assert ("age" not in stored, "race___1" not in stored, stored["name"]) == (True, True, "Ann")


def test_json_numbers_and_null() -> None:
    """JSON numbers are accepted as values, null means blank (§4.1)."""
    project = classic_project()
    result = run(project, [{"record_id": 3, "age": 42, "weight": 70.5, "sex": 1, "name": None}])
    assert result.record_ids == ["3"]
    stored = slot(project, "3")
    assert (stored["age"], stored["weight"], stored["sex"], "name" in stored) == (
        "42",
        "70.5",
        "1",
        False,
    )


def test_calc_and_file_fields_are_ignored() -> None:
    """Calculated and file fields in the payload are ignored, not errors (§4.4)."""
    project = classic_project()
    run(project, [{"record_id": "1", "bmi": "not a number", "photo": "x.png", "age": "1"}])
    assert "bmi" not in slot(project, "1") and "photo" not in slot(project, "1")


# -- keep, logging, creation, form status -------------------------------------------------------
def test_identical_values_are_kept_unvalidated_and_unlogged() -> None:
    """Values equal to the stored ones are "keep": not validated and not logged (§4.5)."""
    project = classic_project()
    put(project, "1", BASE, age="not-an-integer")
    project.records["1"].changed_at = []
    result = run(project, [{"record_id": "1", "age": "not-an-integer"}])
    assert result.record_ids == ["1"]
    assert project.records["1"].changed_at == []


def test_real_changes_log_once_per_record() -> None:
    """Only real changes append the import time to the record's change log (§4.5)."""
    project = longitudinal_project()
    later = datetime(2024, 6, 1)
    run(project, [{"record_id": "1", "age": "1"}])
    rows: list[dict[str, object]] = [
        {"record_id": "1", "redcap_event_name": "baseline_arm_1", "age": "2"},
        {"record_id": "1", "redcap_event_name": "followup_arm_1", "weight": "9"},
    ]
    result = run(project, rows, now=later)
    assert result.record_ids == ["1"]
    assert project.records["1"].changed_at == [NOW, later]


def test_new_record_from_id_only() -> None:
    """A row with only the record id creates the record; ids in payload order (§4.4, §4.2)."""
    project = classic_project()
    result = run(project, [{"record_id": "2"}, {"record_id": "1"}])
    assert result.record_ids == ["2", "1"]
    assert project.records["1"] == StoredRecord("1", {BASE: {"record_id": "1"}}, [NOW])


def test_saving_a_form_marks_it_incomplete() -> None:
    """Saving fields of a form with no stored status stores <form>_complete = 0 (§4.4)."""
    project = classic_project()
    run(project, [{"record_id": "1", "age": "1", "visit_complete": "2"}])
    stored = slot(project, "1")
    assert (stored["demographics_complete"], stored["visit_complete"]) == ("0", "2")
    run(project, [{"record_id": "1", "weight": "70"}])
    assert slot(project, "1")["visit_complete"] == "2"


def test_blank_values_are_never_stored() -> None:
    """Blank and unchecked values are not stored (REDCap keeps no row for them) (§2.2)."""
    project = classic_project()
    run(project, [{"record_id": "1", "name": "", "race___1": "0"}], overwrite=True)
    assert slot(project, "1") == {"record_id": "1"}


# -- longitudinal and repeating ----------------------------------------------------------------
def test_field_not_designated_for_event() -> None:
    """A field whose form is not in the event is refused with the event's label (§4.3)."""
    rows: list[dict[str, object]] = [
        {"record_id": "1", "redcap_event_name": "followup_arm_1", "age": "30"}
    ]
    assert refused(longitudinal_project(), rows) == line(
        "1",
        "age",
        "30",
        "This field ('age') exists on an instrument that is not designated for the event named "
        "'Follow-up'. You are not allowed to import data for this field into this event.",
    )


def test_repeating_instances() -> None:
    """Instances are addressed by number or "new" (next free) and get status 0 (§4.1, §4.4)."""
    project = repeating_project()
    rows: list[dict[str, object]] = [
        {"record_id": "1", "age": "3"},
        {
            "record_id": "1",
            "redcap_repeat_instrument": "visit",
            "redcap_repeat_instance": 2,
            "weight": "72",
        },
        {
            "record_id": "1",
            "redcap_repeat_instrument": "visit",
            "redcap_repeat_instance": "new",
            "weight": "73",
        },
    ]
    run(project, rows)
    assert slot(project, "1", ("", "visit", 2)) == {"weight": "72", "visit_complete": "0"}
    assert slot(project, "1", ("", "visit", 3))["weight"] == "73"
    assert slot(project, "1")["age"] == "3"
    run(
        project,
        [
            {
                "record_id": "1",
                "redcap_repeat_instrument": "visit",
                "redcap_repeat_instance": "new",
                "weight": "74",
            }
        ],
    )
    assert slot(project, "1", ("", "visit", 4))["weight"] == "74"


@pytest.mark.parametrize(
    ("row", "field", "value", "message"),
    [
        ({"weight": "1"}, "weight", "1", "This field is on a repeating instrument"),
        (
            {"redcap_repeat_instrument": "visit", "weight": "1"},
            "redcap_repeat_instance",
            "",
            "redcap_repeat_instance is missing",
        ),
        (
            {"redcap_repeat_instrument": "visit", "redcap_repeat_instance": "0"},
            "redcap_repeat_instance",
            "0",
            "redcap_repeat_instance must be an integer",
        ),
        (
            {"redcap_repeat_instrument": "visit", "redcap_repeat_instance": "32768"},
            "redcap_repeat_instance",
            "32768",
            "redcap_repeat_instance must be an integer",
        ),
        (
            {"redcap_repeat_instrument": "demographics", "redcap_repeat_instance": "1"},
            "redcap_repeat_instrument",
            "demographics",
            "'demographics' is not a repeating",
        ),
        (
            {"redcap_repeat_instance": "1", "age": "3"},
            "redcap_repeat_instance",
            "1",
            "redcap_repeat_instance was given",
        ),
        (
            {"redcap_repeat_instrument": "visit", "redcap_repeat_instance": "1", "age": "3"},
            "age",
            "3",
            "This field is not on the repeating instrument 'visit'",
        ),
    ],
)
def test_repeating_errors(row: dict[str, object], field: str, value: str, message: str) -> None:
    """Missing or invalid repeat instrument/instance and fields off the instrument (§4.3)."""
    body = refused(repeating_project(), [{"record_id": "1", **row}])
    assert body.startswith(f'"1","{field}","{value}","{message}')
