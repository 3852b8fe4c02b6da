"""Record import of the REDCap simulator, at function level (REDCAP_API.md §4): what it stores.

normal vs overwrite, JSON values, ignored field types, "keep" values and the change log, new
records and form statuses, events and repeating instances. What an import refuses is in
``test_redcap_import_validation.py``.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from sandbox.redcap.model import StoredRecord
from tests.sandbox.helpers_records import (
    BASE,
    NOW,
    classic_project,
    line,
    longitudinal_project,
    put,
    refused,
    repeating_project,
    run,
    slot,
)


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
