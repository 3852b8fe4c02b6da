"""Record export of the REDCap simulator, at function level (REDCAP_API.md §2): the shape.

Which columns come in which order, the values and defaults on each row, one row per event and
per repeating instance, and rawOrLabel=label. Which records and rows an export keeps (dateRange,
filterLogic) is in ``test_redcap_record_filters.py``; the small projects are in
``helpers_records.py``.
"""

from __future__ import annotations

import pytest

from sandbox.redcap.errors import ApiError
from sandbox.redcap.model import Arm
from sandbox.redcap.records import event_label
from tests.sandbox.helpers_records import (
    classic_project,
    export,
    longitudinal_project,
    put,
    repeating_project,
)


# -- columns ----------------------------------------------------------------------------------
def test_all_columns_in_dictionary_order() -> None:
    """Record id, dictionary order, checkbox f___code, _complete after its form (§2.2)."""
    project = classic_project()
    put(project, "1", ("", "", None), name="Ann")
    assert list(export(project)[0]) == [
        "record_id",
        "name",
        "age",
        "dob",
        "email",
        "sex",
        "race___1",
        "race___2",
        "race____1",
        "consent",
        "bmi",
        "photo",
        "demographics_complete",
        "visit_dt",
        "visit_ts",
        "weight",
        "color",
        "score",
        "ok",
        "tm",
        "phone",
        "notes",
        "visit_complete",
    ]


def test_requested_fields_come_in_dictionary_order_with_record_id() -> None:
    """Field order of the request does not matter; the record id is always included (§2.2)."""
    project = classic_project()
    put(project, "1", ("", "", None), name="Ann")
    rows = export(project, fields=["visit_complete", "weight", "race", "name"])
    assert list(rows[0]) == [
        "record_id",
        "name",
        "race___1",
        "race___2",
        "race____1",
        "weight",
        "visit_complete",
    ]


def test_forms_add_their_fields_and_status() -> None:
    """``forms`` adds the form's fields and its _complete (§2.1)."""
    project = classic_project()
    put(project, "1", ("", "", None), weight="70")
    rows = export(project, forms=["visit"], fields=["age"])
    visit_columns = project.export_columns()[13:]
    assert visit_columns[0] == "visit_dt"
    assert list(rows[0]) == ["record_id", "age", *visit_columns]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"fields": ["nope", "age", "zip"]},
            "The following values in the parameter \"fields\" are not valid: 'nope', 'zip'",
        ),
        (
            {"fields": ["redcap_event_name"]},
            "The following values in the parameter \"fields\" are not valid: 'redcap_event_name'",
        ),
        (
            {"fields": ["race___1"]},
            "The following values in the parameter \"fields\" are not valid: 'race___1'",
        ),
        (
            {"forms": ["visit", "labs"]},
            "The following values in the parameter \"forms\" are not valid: 'labs'",
        ),
    ],
)
def test_unknown_fields_and_forms_get_400(options: dict[str, list[str]], message: str) -> None:
    """Unknown or pseudo field names and unknown forms get 400 listing them (§2.1)."""
    with pytest.raises(ApiError) as caught:
        export(classic_project(), **options)
    assert (caught.value.status, caught.value.message) == (400, message)


def test_descriptive_fields_are_dropped_or_rejected_alone() -> None:
    """Descriptive fields are removed; asking only for them is a 400 (§2.1)."""
    project = classic_project()
    put(project, "1", ("", "", None), name="Ann")
    assert list(export(project, fields=["intro", "name"])[0]) == ["record_id", "name"]
    with pytest.raises(ApiError) as caught:
        export(project, fields=["intro"])
    assert caught.value.status == 400
    assert caught.value.message.startswith(
        'The variables provided in the parameter "fields" are not valid fields that contain data.'
    )


# -- values -----------------------------------------------------------------------------------
def test_values_are_strings_with_defaults_for_unsaved_forms() -> None:
    """Values are strings, blanks "", checkboxes "0", never-saved form status "0" (§2.2)."""
    project = classic_project()
    put(project, "1", ("", "", None), age="34", race___2="1", demographics_complete="2")
    row = export(project)[0]
    assert row["record_id"] == "1"
    assert (row["age"], row["name"], row["race___1"], row["race___2"]) == ("34", "", "0", "1")
    assert (row["demographics_complete"], row["visit_complete"]) == ("2", "0")
    assert all(isinstance(value, str) for value in row.values())


def test_blank_for_gray_form_status() -> None:
    """exportBlankForGrayFormStatus exports "" for a status never saved (§2.1)."""
    project = classic_project()
    put(project, "1", ("", "", None), demographics_complete="1")
    row = export(project, export_blank_for_gray=True)[0]
    assert (row["demographics_complete"], row["visit_complete"]) == ("1", "")


def test_records_filter_drops_unknown_ids_silently() -> None:
    """Unknown record names are dropped silently; none existing gives [] (§2.1)."""
    project = classic_project()
    for record in ("1", "2", "3"):
        put(project, record, ("", "", None), name=record)
    assert [r["record_id"] for r in export(project, records=["3", "9", "1"])] == ["1", "3"]
    assert export(project, records=["9"]) == []


def test_records_come_in_natural_order() -> None:
    """Records come in natural, case-insensitive order, as in the reference ClinicalData (§2.2)."""
    project = classic_project()
    for record in ("10", "b", "2", "A", "1", "1a"):
        put(project, record, ("", "", None), name=record)
    assert [r["record_id"] for r in export(project)] == ["1", "1a", "2", "10", "A", "b"]


# -- longitudinal -----------------------------------------------------------------------------
def test_longitudinal_rows_per_event_with_data_in_event_order() -> None:
    """One row per record-event with data, by record then event; undesignated forms "" (§2.2)."""
    project = longitudinal_project()
    put(project, "2", ("followup_arm_1", "", None), weight="71")
    put(project, "2", ("baseline_arm_1", "", None), age="40")
    put(project, "1", ("followup_arm_1", "", None), weight="60")
    rows = export(project)
    assert [(r["record_id"], r["redcap_event_name"]) for r in rows] == [
        ("1", "followup_arm_1"),
        ("2", "baseline_arm_1"),
        ("2", "followup_arm_1"),
    ]
    assert list(rows[0])[:2] == ["record_id", "redcap_event_name"]
    follow = rows[2]
    assert (follow["age"], follow["race___1"], follow["demographics_complete"]) == ("", "", "")
    assert (follow["weight"], follow["visit_complete"]) == ("71", "0")


def test_events_parameter_filters_and_is_validated() -> None:
    """``events`` keeps those events' rows; unknown names get 400 (§2.1)."""
    project = longitudinal_project()
    put(project, "1", ("baseline_arm_1", "", None), age="40")
    put(project, "1", ("followup_arm_1", "", None), weight="71")
    rows = export(project, events=["followup_arm_1"])
    assert [r["redcap_event_name"] for r in rows] == ["followup_arm_1"]
    with pytest.raises(ApiError) as caught:
        export(project, events=["week_9_arm_1"])
    assert caught.value.message == (
        "The following values in the parameter \"events\" are not valid: 'week_9_arm_1'"
    )


def test_event_labels_name_the_arm_only_with_several_arms() -> None:
    """Label mode: "Event 1", or "Event 1 (Arm 1: Drug A)" with several arms (§2.1)."""
    project = longitudinal_project()
    put(project, "1", ("baseline_arm_1", "", None), age="40")
    assert export(project, raw_or_label="label")[0]["redcap_event_name"] == "Baseline"
    project.arms = [Arm(1, "Drug A"), Arm(2, "Drug B")]
    assert event_label(project, "baseline_arm_1") == "Baseline (Arm 1: Drug A)"
    assert (
        export(project, raw_or_label="label")[0]["redcap_event_name"] == "Baseline (Arm 1: Drug A)"
    )


# -- repeating --------------------------------------------------------------------------------
def test_repeating_rows() -> None:
    """Base row with "" repeat columns, then instance rows with an int instance (§2.2)."""
    project = repeating_project()
    put(project, "1", ("", "", None), age="34")
    put(project, "1", ("", "visit", 2), weight="72", visit_complete="2")
    put(project, "1", ("", "visit", 1), weight="71", visit_complete="1")
    rows = export(project)
    assert [(r["redcap_repeat_instrument"], r["redcap_repeat_instance"]) for r in rows] == [
        ("", ""),
        ("visit", 1),
        ("visit", 2),
    ]
    assert list(rows[0])[:3] == ["record_id", "redcap_repeat_instrument", "redcap_repeat_instance"]
    base, first = rows[0], rows[1]
    assert (base["age"], base["weight"], base["visit_complete"]) == ("34", "", "")
    assert (first["age"], first["race___1"], first["demographics_complete"]) == ("", "", "")
    assert (first["weight"], first["visit_complete"]) == ("71", "1")


def test_repeat_columns_absent_without_repeats() -> None:
    """Without repeating instruments or events there are no redcap_repeat_* columns (§2.2)."""
    project = classic_project()
    put(project, "1", ("", "", None), age="34")
    assert "redcap_repeat_instance" not in export(project)[0]


def test_instances_of_unexported_instruments_are_left_out() -> None:
    """Instance rows appear only when their instrument has exported columns (§2.2)."""
    project = repeating_project()
    put(project, "1", ("", "", None), age="34")
    put(project, "1", ("", "visit", 1), weight="71")
    assert len(export(project, fields=["age"])) == 1
    assert len(export(project, fields=["age", "weight"])) == 2


def test_repeating_event_rows() -> None:
    """Repeating events: redcap_repeat_instrument "" and an instance per row (§2.2)."""
    project = longitudinal_project()
    project.repeating_events = {"followup_arm_1"}
    put(project, "1", ("followup_arm_1", "", 2), weight="72")
    put(project, "1", ("followup_arm_1", "", 1), weight="71")
    rows = export(project)
    assert [(r["redcap_repeat_instance"], r["weight"]) for r in rows] == [(1, "71"), (2, "72")]


# -- labels -----------------------------------------------------------------------------------
def test_label_mode() -> None:
    """Labels: choice labels, Checked/Unchecked, status labels, instrument label (§2.1)."""
    project = repeating_project()
    put(
        project, "1", ("", "", None), sex="2", race____1="1", consent="0", demographics_complete="2"
    )
    put(project, "1", ("", "visit", 1), color="g", ok="1")
    base, instance = export(project, raw_or_label="label")
    assert (base["sex"], base["consent"], base["demographics_complete"]) == (
        "Female",
        "No",
        "Complete",
    )
    assert (base["race___1"], base["race____1"]) == ("Unchecked", "Checked")
    assert (instance["color"], instance["ok"], instance["visit_complete"]) == (
        "Green",
        "True",
        "Incomplete",
    )
    assert instance["redcap_repeat_instrument"] == "Visit"
    assert instance["race___1"] == ""


def test_checkbox_label_option() -> None:
    """exportCheckboxLabel: a checked box exports its label, an unchecked one "" (§2.1)."""
    project = classic_project()
    put(project, "1", ("", "", None), race___2="1")
    row = export(project, raw_or_label="label", export_checkbox_label=True)[0]
    assert (row["race___1"], row["race___2"]) == ("", "Black")
    raw = export(project, export_checkbox_label=True)[0]
    assert (raw["race___1"], raw["race___2"]) == ("0", "1")
