"""Loading REDCap projects from CSV files: data dictionary, events and mapping, record exports.

The reference files are REDCap downloads (``helpers_loaders.py``). Their ``data.csv`` is
REDCapR's, not always a raw export: where it is one (no labels, no munged text) the project
loaded from CSVs must equal the one loaded from XML. Broken files fail with one ValueError naming
the file, line and column. The demo projects, built from a dictionary, are checked here too.
"""

from __future__ import annotations

import csv
import json
import re
from datetime import datetime
from pathlib import Path

import pytest

from sandbox.redcap.demo import (
    FUNNEL_REPORT,
    NEEDS_ATTENTION_REPORT,
    build_demo_longitudinal_project,
    build_demo_project,
    find_report,
)
from sandbox.redcap.dictionary import (
    LABEL_HEADERS,
    load_dictionary,
    load_project_from_dictionary,
)
from sandbox.redcap.model import METADATA_KEYS, Project
from sandbox.redcap.record_files import load_records_file
from tests.sandbox.helpers_loaders import reference, write, xml_project

PIPELINE_CSV = Path(__file__).resolve().parents[2] / "redcap" / "pipeline_instrument.csv"
NOW = datetime(2030, 1, 1, 12, 0, 0)


def slots(project: Project) -> dict[str, dict[tuple[str, str, int | None], dict[str, str]]]:
    return {name: stored.slots for name, stored in project.records.items()}


# -- dictionaries -----------------------------------------------------------------------------
def test_dictionary_with_raw_api_headers_loads_the_same(tmp_path: Path) -> None:
    """The API's raw metadata names work as headers as well as the Online Designer's labels."""
    source = reference("validation-types-1") / "dictionary.csv"
    with source.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert [LABEL_HEADERS[h.lower()] for h in rows[0]] == list(METADATA_KEYS)
    raw = tmp_path / "metadata.csv"
    with raw.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([list(METADATA_KEYS), *rows[1:]])
    assert load_dictionary(raw) == load_dictionary(source)


def test_pipeline_instrument_loads() -> None:
    """redcap/pipeline_instrument.csv is a valid Online Designer dictionary."""
    fields = load_dictionary(PIPELINE_CSV)
    assert {item.form_name for item in fields} == {"pipeline"}
    status = fields[0]
    assert (status.field_name, status.field_type) == ("pipeline_status", "dropdown")
    assert ("needs_review", "Needs review") in status.choices()
    assert fields[1].validation == "datetime_seconds_ymd"


@pytest.mark.parametrize(
    ("name", "events"),
    [
        ("clinical-trial-1", False),
        ("repeating-instruments", False),
        ("arm-single-longitudinal", True),
    ],
)
def test_raw_export_loads_like_the_odm(name: str, events: bool) -> None:
    """A dictionary plus a raw export gives the same records as REDCap's own ODM export."""
    folder = reference(name)
    project = load_project_from_dictionary(
        folder / "dictionary.csv",
        records=folder / "data.csv",
        events=folder / "event.csv" if events else None,
        arms=folder / "arm.csv" if events else None,
    )
    expected = xml_project(name)
    assert slots(project) == slots(expected)
    assert project.repeating_forms == expected.repeating_forms
    assert project.title == name
    assert [e.unique_name for e in project.events] == [e.unique_name for e in expected.events]
    if events:  # event.csv carries REDCap's event ids, unlike the XML
        assert project.events[0].event_id == 12357


def assert_same_records_but_line_breaks(project: Project, expected: Project) -> None:
    """Equal records, except values REDCapR's data.csv flattened (line breaks -> spaces)."""
    assert list(project.records) == list(expected.records)
    for name, stored in expected.records.items():
        got = project.records[name].slots
        assert got.keys() == stored.slots.keys()
        for slot, values in stored.slots.items():
            assert got[slot].keys() == values.keys(), (name, slot)
            kept = {k: v for k, v in values.items() if "\n" not in v}
            assert {k: v for k, v in got[slot].items() if k in kept} == kept, (name, slot)


def test_checkbox_export_loads_like_the_odm() -> None:
    """Checkbox columns of a raw export: 1 is stored, 0 is REDCap's default and is not (§2.2)."""
    folder = reference("checkboxes-1")
    project = load_project_from_dictionary(folder / "dictionary.csv", folder / "data.csv")
    assert_same_records_but_line_breaks(project, xml_project("checkboxes-1"))
    assert project.records["2"].slots[("", "", None)]["check_two___b"] == "1"
    assert "check_two___a" not in project.records["2"].slots[("", "", None)]


def test_longitudinal_export_with_mapping_loads_like_the_odm(tmp_path: Path) -> None:
    """Events, arms and an instrument-designation CSV place each value in its event."""
    folder = reference("longitudinal")
    expected = xml_project("longitudinal")
    mapping = tmp_path / "mapping.csv"
    with mapping.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["arm_num", "unique_event_name", "form"])
        for event in expected.events:
            for form in expected.form_events[event.unique_name]:
                writer.writerow([event.arm_num, event.unique_name, form])
    project = load_project_from_dictionary(
        folder / "dictionary.csv",
        folder / "data.csv",
        folder / "event.csv",
        folder / "arm.csv",
        mapping,
    )
    assert project.form_events == expected.form_events
    assert [a.name for a in project.arms] == ["Drug A", "Drug B"]
    assert_same_records_but_line_breaks(project, expected)


def test_events_without_mapping_designate_every_form() -> None:
    """Without a mapping file every form is designated for every event (documented choice)."""
    folder = reference("longitudinal")
    project = load_project_from_dictionary(folder / "dictionary.csv", events=folder / "event.csv")
    every = [form.name for form in project.forms]
    assert all(project.forms_in_event(e.unique_name) == every for e in project.events)
    assert [a.name for a in project.arms] == ["Arm 1", "Arm 2"]  # no arm.csv: REDCap's default


def test_label_values_are_refused() -> None:
    """REDCapR's simple/data.csv has TRUE/FALSE for a radio: refused, not stored (raw only)."""
    folder = reference("simple")
    with pytest.raises(ValueError, match="rawOrLabel=raw") as caught:
        load_project_from_dictionary(folder / "dictionary.csv", folder / "data.csv")
    assert str(caught.value).startswith(f"{folder / 'data.csv'}: line 2, column \"sex\": 'FALSE'")


def test_json_export_and_defaults(tmp_path: Path) -> None:
    """JSON exports load (integer instances too); default 0s of unsaved forms are not stored."""
    folder = reference("repeating-instruments")
    rows = [
        {"record_id": "9", "redcap_repeat_instrument": "", "redcap_repeat_instance": "",
         "first_name": "Ann", "race": "", "demographics_complete": "", "bp_complete": ""},
        {"record_id": "9", "redcap_repeat_instrument": "bp", "redcap_repeat_instance": 2,
         "bp_systolic": "120", "demographics_complete": "0", "bp_complete": "0"},
        {"record_id": "10", "redcap_repeat_instrument": "", "redcap_repeat_instance": "",
         "demographics_complete": "0", "bp_complete": ""},
    ]  # fmt: skip
    data = write(tmp_path / "records.json", json.dumps(rows))
    project = load_project_from_dictionary(folder / "dictionary.csv", data)
    assert slots(project) == {
        "9": {
            ("", "", None): {"record_id": "9", "first_name": "Ann", "demographics_complete": "0"},
            ("", "bp", 2): {"bp_systolic": "120", "bp_complete": "0"},
        },
        "10": {("", "", None): {"record_id": "10", "demographics_complete": "0"}},
    }


DICTIONARY = (
    '"Variable / Field Name","Form Name","Field Type","Field Label",'
    '"Choices, Calculations, OR Slider Labels","Text Validation Type OR Show Slider Number"\n'
    "record_id,intake,text,ID,,\n"
    'sex,intake,radio,Sex,"1, Male | 2, Female",\n'
    "seen,visit,text,Seen,,date_ymd\n"
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Variable,Form Name,Field Type\nx,f,text\n", 'header, column "Variable": not a data'),
        ('"Variable / Field Name","Form Name"\nx,f\n', "header: missing the column(s) field_type"),
        (
            DICTIONARY + "age,visit,txt,Age,,\n",
            "line 5, column \"Field Type\": 'txt' is not a field",
        ),
        (DICTIONARY + "Age,visit,text,Age,,\n", "line 5, column \"Variable / Field Name\": 'Age'"),
        (
            DICTIONARY + "sex,visit,text,Sex,,\n",
            'line 5, field "sex": this field name is used twice',
        ),
        (DICTIONARY + "age,intake,text,Age,,\n", "form 'intake' is split"),
        (DICTIONARY + "visit_complete,visit,text,X,,\n", "taken by a form's status field"),
        (DICTIONARY + 'q,visit,dropdown,Q,"Yes | 2, No",\n', "choice 'Yes' has no code"),
        (DICTIONARY + "q,visit,text,Q\n", "line 5: 4 values, but the header has 6 columns"),
        (DICTIONARY + 'n,visit,notes,"Note\nacross lines",,\nbad,visit,x,X,,\n', "line 7, column"),
        ("", "dictionary.csv: the file is empty"),
    ],
)
def test_dictionary_errors_name_file_line_and_column(
    tmp_path: Path, text: str, expected: str
) -> None:
    """A broken dictionary fails with one ValueError: file, line, column and the problem."""
    path = write(tmp_path / "dictionary.csv", text)
    with pytest.raises(ValueError, match=re.escape(f"{path}: ")) as caught:
        load_dictionary(path)
    assert expected in str(caught.value)


def test_dictionary_that_is_not_utf8(tmp_path: Path) -> None:
    """A dictionary saved in another encoding is refused with the file named."""
    path = tmp_path / "dictionary.csv"
    path.write_bytes(DICTIONARY.replace("Sex", "S\xe9x").encode("latin-1"))
    with pytest.raises(ValueError, match="not UTF-8 text"):
        load_dictionary(path)


EVENTS = "event_name,arm_num,unique_event_name\nIntake,1,intake_arm_1\nVisit,1,visit_arm_1\n"
MAPPING = "arm_num,unique_event_name,form\n1,intake_arm_1,intake\n1,visit_arm_1,visit\n"
EVENT_ROWS = "record_id,redcap_event_name,sex,seen\n"
REPEAT_ROWS = "record_id,redcap_event_name,redcap_repeat_instrument,redcap_repeat_instance,seen\n"


@pytest.fixture
def two_events(tmp_path: Path) -> Project:
    """A project with forms intake (event intake_arm_1) and visit (event visit_arm_1)."""
    return load_project_from_dictionary(
        write(tmp_path / "dictionary.csv", DICTIONARY),
        events=write(tmp_path / "event.csv", EVENTS),
        mapping=write(tmp_path / "mapping.csv", MAPPING),
    )


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("data.csv", "record_id,sex,age\n1,1,3\n", 'line 2, column "age": not a field'),
        ("data.csv", EVENT_ROWS + "1,week_2,1,\n", "'week_2' is not a unique event name"),
        ("data.csv", EVENT_ROWS + ",intake_arm_1,1,\n", "the record ID is blank"),
        ("data.csv", EVENT_ROWS + "1,intake_arm_1,Male,\n", "line 2, column \"sex\": 'Male' is"),
        ("data.csv", EVENT_ROWS + "1,visit_arm_1,,3/6/2018\n", "'3/6/2018' is not a raw value"),
        ("data.csv", EVENT_ROWS + "1,intake_arm_1,,2018-03-06\n", "form 'visit' has no place"),
        ("data.csv", EVENT_ROWS + "1,intake_arm_1,1,\n1,intake_arm_1,2,\n", "line 3: record '1'"),
        ("data.csv", REPEAT_ROWS + "1,visit_arm_1,visit,0,\n", "'0' is not a positive whole"),
        ("data.csv", REPEAT_ROWS + "1,visit_arm_1,,1,\n1,visit_arm_1,,,\n", "line 3: event 'vis"),
        ("data.json", '[{"record_id": "1",\n "sex": }]', "line 2, column 9: not valid JSON"),
        ("data.json", '[{"record_id": "1", "sex": 1.5}]', 'item 1, column "sex": 1.5 is not'),
        ("data.json", '{"record_id": "1"}', "a REDCap JSON export is a list of records"),
    ],
)
def test_records_file_errors_name_file_line_and_column(
    tmp_path: Path, two_events: Project, name: str, text: str, expected: str
) -> None:
    """A broken records file fails with one ValueError: file, line, column and the problem."""
    path = write(tmp_path / name, text)
    with pytest.raises(ValueError, match=re.escape(f"{path}: ")) as caught:
        load_records_file(two_events, path)
    assert expected in str(caught.value)


def test_records_file_is_all_or_nothing(tmp_path: Path) -> None:
    """A bad row anywhere leaves the project as it was: no records, no new repeating setup."""
    project = build_demo_project()
    rows = "record_id,redcap_repeat_instrument,redcap_repeat_instance,consent\n"
    path = write(tmp_path / "data.csv", rows + "1,pipeline,1,\n2,,,Yes\n")
    with pytest.raises(ValueError, match=re.escape(f'{path}: line 3, column "consent"')):
        load_records_file(project, path)
    assert (project.records, project.repeating_forms) == ({}, set())


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("event.csv", "event_name,arm_num,unique_event_name\nIntake,one,intake_arm_1\n", "'one'"),
        ("event.csv", "event_name,arm_num\nIntake,1\n", "missing the column(s) unique_event"),
        ("event.csv", EVENTS + "Again,1,visit_arm_1\n", 'line 4, column "unique_event_name"'),
        ("mapping.csv", "arm_num,unique_event_name,form\n1,intake_arm_1,labs\n", "'labs' is not"),
        ("mapping.csv", "arm_num,unique_event_name,form\n2,intake_arm_1,intake\n", "is in arm 1"),
    ],
)
def test_event_file_errors_name_file_line_and_column(
    tmp_path: Path, name: str, text: str, expected: str
) -> None:
    """A broken events or mapping file fails with one ValueError saying where and why."""
    files = {"event.csv": EVENTS, "mapping.csv": MAPPING, name: text}
    paths = {file: write(tmp_path / file, content) for file, content in files.items()}
    dictionary = write(tmp_path / "dictionary.csv", DICTIONARY)
    with pytest.raises(ValueError, match=re.escape(f"{paths[name]}: ")) as caught:
        load_project_from_dictionary(
            dictionary, events=paths["event.csv"], mapping=paths["mapping.csv"]
        )
    assert expected in str(caught.value)


def test_arms_and_mapping_need_events(tmp_path: Path) -> None:
    """Arms or a mapping without an events file is a mistake, not a classic project."""
    dictionary = write(tmp_path / "dictionary.csv", DICTIONARY)
    mapping = write(tmp_path / "mapping.csv", MAPPING)
    with pytest.raises(ValueError, match="need an events file"):
        load_project_from_dictionary(dictionary, mapping=mapping)


# -- the demo project -------------------------------------------------------------------------
def test_demo_project_shape() -> None:
    """The demo: registration, a survey-enabled interest_form and the pipeline; no records."""
    project = build_demo_project()
    assert [(f.name, f.label) for f in project.forms] == [
        ("registration", "Registration"),
        ("interest_form", "Interest Form"),
        ("pipeline", "Pipeline"),
    ]
    field = {item.field_name: item for item in project.fields}
    assert project.record_id_field == "record_id"
    assert (field["phone_number"].field_type, field["mobile"].field_type) == ("text", "text")
    assert (field["email"].validation, field["consent"].field_type) == ("email", "yesno")
    assert field["interest_level"].field_type == "radio"
    assert field["interest_comments"].field_type == "notes"
    assert [form.name for form in project.forms if form.is_survey] == ["interest_form"]
    assert project.survey_email_field == "email"
    assert project.records == {}
    assert not project.is_longitudinal
    assert project.export_columns()[:13] == [
        "record_id", "first_name", "last_name", "phone_number", "mobile", "email", "consent",
        "language", "visit_datetime", "study_group", "eligible", "study_id",
        "registration_complete",
    ]  # fmt: skip


def test_demo_reports() -> None:
    """The funnel report lists every pipeline field; "Needs attention" filters on the status."""
    project = build_demo_project()
    funnel = find_report(project, FUNNEL_REPORT)
    pipeline = [f.field_name for f in project.fields if f.form_name == "pipeline"]
    assert funnel.fields == ["record_id", *pipeline]
    attention = find_report(project, NEEDS_ATTENTION_REPORT)
    assert "[pipeline_status] = 'needs_review'" in attention.filter_logic
    assert len({r.report_id for r in project.reports.values()}) == 2


def test_demo_needs_attention_filter_selects_failures() -> None:
    """The report's filter is valid REDCap logic that keeps failed, needs_review, undelivered."""
    records = pytest.importorskip("sandbox.redcap.records")
    importer = pytest.importorskip("sandbox.redcap.importer")
    project = build_demo_project()
    statuses = ["registered", "failed", "delivered", "needs_review", "undelivered", "sms_sent"]
    rows: list[dict[str, object]] = [
        {"record_id": str(n), "pipeline_status": status} for n, status in enumerate(statuses, 1)
    ]
    importer.import_rows(project, rows, overwrite=False, date_format="YMD", now=NOW)
    logic = find_report(project, NEEDS_ATTENTION_REPORT).filter_logic
    found = records.export_rows(project, records.ExportRequest(filter_logic=logic), NOW)
    assert [row["record_id"] for row in found] == ["2", "4", "5"]


def test_demo_longitudinal_project() -> None:
    """Two events: enrollment has every form, follow-up only the survey."""
    project = build_demo_longitudinal_project()
    assert project.is_longitudinal
    assert [e.unique_name for e in project.events] == ["enrollment_arm_1", "followup_arm_1"]
    assert project.forms_in_event("enrollment_arm_1") == [
        "registration",
        "interest_form",
        "pipeline",
    ]
    assert project.forms_in_event("followup_arm_1") == ["interest_form"]
    assert [a.num for a in project.arms] == [1]
    assert build_demo_project().events == []  # building one does not change the other
