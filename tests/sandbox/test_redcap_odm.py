"""Loading REDCap projects from REDCap's own "CDISC ODM (XML) with metadata and data" export.

Metadata under the API's names, events and arms, repeating setup, surveys and record values from
the reference projects (``helpers_loaders.py``), and one ValueError naming the place for a
broken file. The CSV loaders are in ``test_redcap_dictionary.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.redcap.dictionary import load_dictionary
from sandbox.redcap.odm import load_project_xml
from tests.reference import REDCAP_PROJECTS
from tests.sandbox.helpers_loaders import reference, write, xml_project

# What the ODM file does not carry: a slider's min/max, the query of an sql field.
NOT_IN_ODM = {("slider", "text_validation_min"), ("slider", "text_validation_max")}
NOT_IN_ODM |= {("sql", "select_choices_or_calculations")}


# -- ODM: metadata ----------------------------------------------------------------------------
def test_odm_metadata_uses_the_api_names() -> None:
    """ODM's back-end types/validations come back as the API reports them (REDCAP_API.md §5)."""
    project = xml_project("simple")
    field = {item.field_name: item for item in project.fields}
    assert project.title == "REDCapR: simple"
    assert [f.name for f in project.forms] == ["demographics", "health", "race_and_ethnicity"]
    assert field["address"].field_type == "notes"  # ODM says "textarea"
    assert field["sex"].field_type == "radio"
    assert field["sex"].select_choices_or_calculations == "0, Female | 1, Male"
    assert field["race"].field_type == "checkbox"
    assert field["race"].export_columns() == [f"race___{n}" for n in range(1, 7)]
    assert field["race"].select_choices_or_calculations.startswith(
        "1, American Indian/Alaska Native | 2, Asian | 3, "
    )
    assert (field["height"].validation, field["height"].text_validation_min) == ("number", "130")
    assert (field["weight"].validation, field["weight"].text_validation_max) == ("integer", "200")
    assert (
        field["bmi"].select_choices_or_calculations == "round(([weight]*10000)/(([height])^(2)),1)"
    )
    assert (field["interpreter_needed"].field_type, field["mugshot"].field_type) == (
        "truefalse",
        "file",
    )
    assert (field["name_first"].section_header, field["name_first"].identifier) == (
        "Contact Information",
        "y",
    )
    assert "demographics_complete" not in field  # form statuses are not metadata fields
    assert (project.record_autonumbering, project.purpose, project.is_longitudinal) == (
        True,
        4,
        False,
    )
    assert next(iter(project.reports.values())).fields == [
        "record_id",
        "height",
        "health_complete",
        "address",
        "ethnicity",
    ]


@pytest.mark.parametrize(
    "name",
    REDCAP_PROJECTS,
)
def test_odm_metadata_matches_the_data_dictionary(name: str) -> None:
    """The 18 metadata keys rebuilt from ODM equal the Online Designer's dictionary (§5)."""
    from_xml = {item.field_name: item for item in xml_project(name).fields}
    from_csv = load_dictionary(reference(name) / "dictionary.csv")
    # simple/dictionary.csv predates the XML's last field; every other pair is identical.
    assert [n for n in from_xml if n in {f.field_name for f in from_csv}] == [
        f.field_name for f in from_csv
    ]
    for expected in from_csv:
        got = from_xml[expected.field_name].metadata_row()
        for key, value in expected.metadata_row().items():
            if (expected.field_type, key) not in NOT_IN_ODM:
                assert got[key] == value, (expected.field_name, key)


def test_odm_events_arms_and_designations() -> None:
    """Events in REDCap's order with arms, offsets and their forms (StudyEventDef/FormRef)."""
    project = xml_project("longitudinal")
    assert [(arm.num, arm.name) for arm in project.arms] == [(1, "Drug A"), (2, "Drug B")]
    assert len(project.events) == 12
    first_visit = project.event("first_visit_arm_2")
    assert first_visit is not None
    assert (first_visit.name, first_visit.arm_num, first_visit.day_offset) == (
        "First visit",
        2,
        10.0,
    )
    assert (first_visit.offset_min, first_visit.offset_max) == (2.0, 2.0)
    assert project.forms_in_event("dose_1_arm_1") == ["patient_morale_questionnaire"]
    assert project.forms[2].label == "Baseline Data"
    assert len({event.event_id for event in project.events}) == 12


def test_odm_repeating_instruments_on_a_classic_project() -> None:
    """A classic project's hidden event_1_arm_1 is the model's "" (RepeatingInstrument)."""
    project = xml_project("repeating-instruments")
    assert not project.is_longitudinal
    assert project.repeating_forms == {("", "bp")}
    assert project.repeating_labels[("", "bp")] == "[record_id]-[date_bp]"
    record = project.records["1"].slots
    assert record[("", "bp", 2)] == {
        "date_bp": "2019-10-14",
        "bp_systolic": "111",
        "bp_diastolic": "101",
        "bp_complete": "2",
    }
    assert record[("", "", None)]["record_id"] == "1"  # the record-id row, as the importer keeps


def test_odm_surveys_and_designated_email_field() -> None:
    """Survey-enabled forms get their titles; the invitation email field is kept (Surveys)."""
    project = xml_project("survey")
    titles = {form.name: form.survey_title for form in project.forms}
    assert titles["prescreening_survey"] == "Pre-Screening Survey"
    assert titles["participant_info_survey"] == "Follow-Up Survey"
    assert titles["completion_data"] is None
    assert (project.surveys_enabled, project.survey_email_field) == (True, "email")
    stored = project.records["1"].slots[("", "", None)]
    assert "prescreening_survey_timestamp" not in stored  # survey timestamps are not fields


def test_odm_record_values_are_kept_as_exported() -> None:
    """Values are raw; line breaks survive; files are their names; unchecked boxes not stored."""
    project = xml_project("simple")
    base = ("", "", None)
    record_4 = project.records["4"].slots[base]
    assert "\n\nSo call up Trudy" in record_4["comments"]  # the README's test of line breaks
    assert project.records["1"].slots[base]["mugshot"] == "mugshot-1.jpg"
    race = {k: v for k, v in project.records["1"].slots[base].items() if k.startswith("race___")}
    assert race == {"race___5": "1"}
    assert list(xml_project("clinical-trial-1").records)[:3] == ["1", "2", "3"]


ODM_HEAD = """<?xml version="1.0" encoding="UTF-8" ?>
<ODM xmlns="http://www.cdisc.org/ns/odm/v1.3" xmlns:redcap="https://projectredcap.org">
<Study OID="Project.T"><GlobalVariables><StudyName>T</StudyName>
<redcap:RepeatingInstrumentsAndEvents>
<redcap:RepeatingEvent redcap:UniqueEventName="visit_arm_1"/>
</redcap:RepeatingInstrumentsAndEvents></GlobalVariables>
<MetaDataVersion OID="M" Name="T" redcap:RecordIdField="record_id">
<StudyEventDef OID="Event.visit_arm_1" Name="Visit" redcap:EventName="Visit"
 redcap:UniqueEventName="visit_arm_1" redcap:ArmNum="1" redcap:ArmName="Arm 1">
<FormRef FormOID="Form.visit" redcap:FormName="visit"/></StudyEventDef>
<FormDef OID="Form.visit" Name="Visit" redcap:FormName="visit">
<ItemGroupRef ItemGroupOID="visit.record_id"/></FormDef>
<ItemGroupDef OID="visit.record_id" Name="visit">
<ItemRef ItemOID="record_id" Mandatory="No" redcap:Variable="record_id"/>
<ItemRef ItemOID="seen_at" Mandatory="Yes" redcap:Variable="seen_at"/>
<ItemRef ItemOID="visit_complete" Mandatory="No" redcap:Variable="visit_complete"/>
</ItemGroupDef>
<ItemDef OID="record_id" Name="record_id" redcap:Variable="record_id" redcap:FieldType="text">
<Question><TranslatedText>ID</TranslatedText></Question></ItemDef>
<ItemDef OID="seen_at" Name="seen_at" redcap:Variable="seen_at" redcap:FieldType="text"
 redcap:TextValidationType="datetime_seconds_ymd" redcap:FieldAnnotation="@NOW">
<Question><TranslatedText>Seen</TranslatedText>
<redcap:FormattedTranslatedText>&lt;b&gt;Seen&lt;/b&gt;</redcap:FormattedTranslatedText>
</Question></ItemDef>
<ItemDef OID="visit_complete" Name="visit_complete" redcap:Variable="visit_complete"
 redcap:FieldType="select"><Question><TranslatedText>Complete?</TranslatedText></Question>
</ItemDef>
</MetaDataVersion></Study>
"""
ODM_DATA = """<ClinicalData><SubjectData SubjectKey="7">
<StudyEventData StudyEventOID="Event.visit_arm_1" StudyEventRepeatKey="2"
 redcap:UniqueEventName="visit_arm_1"><FormData FormOID="Form.visit" FormRepeatKey="1">
<ItemGroupData><ItemData ItemOID="record_id" Value="7"/>
<ItemData ItemOID="{item}" Value="2024-05-01T09:30:00"/>
<ItemData ItemOID="visit_complete" Value="1"/></ItemGroupData></FormData>
</StudyEventData></SubjectData></ClinicalData></ODM>
"""


def test_odm_repeating_event_datetime_and_labels(tmp_path: Path) -> None:
    """Repeating events key on StudyEventRepeatKey; ODM's "T" in datetimes becomes a space."""
    path = write(tmp_path / "project.xml", ODM_HEAD + ODM_DATA.format(item="seen_at"))
    project = load_project_xml(path, project_id=3)
    seen_at = project.fields[1]
    assert (seen_at.required_field, seen_at.field_annotation) == ("y", "@NOW")
    assert seen_at.field_label == "<b>Seen</b>"  # REDCap's HTML label wins over plain text
    assert project.repeating_events == {"visit_arm_1"}
    assert project.events[0].event_id == 3001
    assert project.records["7"].slots == {
        ("visit_arm_1", "", 2): {
            "record_id": "7",
            "seen_at": "2024-05-01 09:30:00",
            "visit_complete": "1",
        }
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (ODM_HEAD + "<ClinicalData>", "project.xml: line 29, column 15: not well-formed XML"),
        ("<ODM/>", "project.xml: not a REDCap ODM export"),
        (ODM_HEAD + ODM_DATA.format(item="weight"), "record '7': 'weight' is not a field"),
    ],
)
def test_odm_errors_name_the_file_and_place(tmp_path: Path, text: str, expected: str) -> None:
    """A broken ODM file fails with one ValueError naming the file and where it is broken."""
    with pytest.raises(ValueError, match=r"project\.xml: ") as caught:
        load_project_xml(write(tmp_path / "project.xml", text))
    assert expected in str(caught.value)
