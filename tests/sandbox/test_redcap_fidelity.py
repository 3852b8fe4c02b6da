"""Fidelity: a REDCap project loaded from its ODM export gives back what REDCap exported.

For every reference project with a ``project.xml`` (real REDCap 14 exports, from REDCapR's test
suite), ``ClinicalData`` is parsed here independently of ``sandbox.redcap.odm``. REDCap writes
it from its own flat export, with blank values left out and never-saved form statuses blank, so
each record/event/repeat group is one export row (REDCAP_API.md §2.2).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest
import redcap

from sandbox.redcap import records, server
from sandbox.redcap.model import Project
from sandbox.redcap.odm import load_project_xml
from tests.reference import REDCAP_PROJECTS, REDCAP_PROJECTS_DIR, redcap_project_xmls

PROJECTS = redcap_project_xmls()
ODM = "{http://www.cdisc.org/ns/odm/v1.3}"
RC = "{https://projectredcap.org}"
NOW = datetime(2030, 1, 1, 12, 0, 0)
ROW_KEYS = ("redcap_event_name", "redcap_repeat_instrument", "redcap_repeat_instance")

RowKey = tuple[str, str, str, int | None]  # record, event, repeating form, instance


@dataclass
class OdmExport:
    """What REDCap's ODM file says its flat export was."""

    id_field: str
    columns: list[str]  # data columns in export order, record id first
    fields: list[str]  # metadata field names in dictionary order
    rows: dict[RowKey, dict[str, str]] = field(default_factory=dict)


def read_odm(path: Path) -> OdmExport:
    text = path.read_text(encoding="utf-8")
    # Line breaks inside Value="..." are data; REDCap's importer escapes them before parsing.
    text = re.sub(r'="[^"]*"', lambda m: m.group().replace("\n", "&#10;"), text)
    root = ET.fromstring(text)  # noqa: S314  (a reference file of ours)
    meta = root.find(f"{ODM}Study/{ODM}MetaDataVersion")
    assert meta is not None
    id_field = meta.get(f"{RC}RecordIdField", "")
    items = {item.get("OID"): item for item in meta.iter(f"{ODM}ItemDef")}
    data_items = [
        ref.get("ItemOID", "")
        for ref in meta.iter(f"{ODM}ItemRef")
        if items[ref.get("ItemOID")].get(f"{RC}FieldType") not in {None, "descriptive"}
    ]
    datetimes = {
        oid
        for oid, item in items.items()
        if item.get(f"{RC}TextValidationType", "").startswith("datetime")
    }
    longitudinal = meta.find(f"{ODM}StudyEventDef") is not None
    repeating_forms = {
        (r.get(f"{RC}UniqueEventName", "") if longitudinal else "", r.get(f"{RC}RepeatInstrument"))
        for r in root.iter(f"{RC}RepeatingInstrument")
    }
    repeating_events = {r.get(f"{RC}UniqueEventName") for r in root.iter(f"{RC}RepeatingEvent")}
    columns = [id_field] + [oid for oid in dict.fromkeys(data_items) if oid != id_field]
    statuses = {f"{form.get(f'{RC}FormName')}_complete" for form in meta.iter(f"{ODM}FormDef")}
    variables = [
        item.get(f"{RC}Variable", "")
        for item in (items[ref.get("ItemOID")] for ref in meta.iter(f"{ODM}ItemRef"))
        if item.get(f"{RC}FieldType") is not None
    ]
    fields = [name for name in dict.fromkeys(variables) if name not in statuses]
    export = OdmExport(id_field, columns, fields)
    for subject in root.iter(f"{ODM}SubjectData"):
        record = subject.get("SubjectKey", "")
        containers = subject.findall(f"{ODM}StudyEventData") if longitudinal else [subject]
        for container in containers:
            event = container.get(f"{RC}UniqueEventName", "")
            for form_data in container.findall(f"{ODM}FormData"):
                form = form_data.get("FormOID", "").removeprefix("Form.")
                key: RowKey = (record, event, "", None)
                if event in repeating_events:
                    key = (record, event, "", int(container.get("StudyEventRepeatKey", "")))
                elif (event, form) in repeating_forms:
                    key = (record, event, form, int(form_data.get("FormRepeatKey", "")))
                values = export.rows.setdefault(key, {})
                for item in form_data.iter(f"{ODM}ItemData"):
                    oid = item.get("ItemOID", "")
                    value = item.get("Value", "")
                    values[oid] = value.replace("T", " ", 1) if oid in datetimes else value
                for item in form_data.iter(f"{ODM}ItemDataBase64Binary"):
                    values[item.get("ItemOID", "")] = item.get(f"{RC}DocName", "")
    return export


def project_id(path: Path) -> str:
    return path.parent.name


@pytest.fixture(scope="module", params=PROJECTS, ids=project_id)
def loaded(request: pytest.FixtureRequest) -> tuple[Project, OdmExport]:
    path: Path = request.param
    return load_project_xml(path), read_odm(path)


def test_reference_projects_are_there() -> None:
    """The eight REDCapR reference projects ship in the repository, and each is checked."""
    shipped = sorted(p.parent.name for p in REDCAP_PROJECTS_DIR.glob("*/project.xml"))
    assert shipped == sorted(REDCAP_PROJECTS)
    assert all(path.is_file() for path in PROJECTS)


def test_slots_hold_what_clinical_data_holds(loaded: tuple[Project, OdmExport]) -> None:
    """Stored values are ClinicalData's, minus unchecked boxes (REDCap stores checked ones only)."""
    project, odm = loaded
    assert list(project.records) == list(dict.fromkeys(key[0] for key in odm.rows))
    checkboxes = {
        c for f in project.fields if f.field_type == "checkbox" for c in f.export_columns()
    }
    for (record, event, form, instance), values in odm.rows.items():
        stored = project.records[record].slots[(event, form, instance)]
        expected = {
            column: value
            for column, value in values.items()
            if column in odm.columns[1:] and not (column in checkboxes and value == "0")
        }
        got = {column: value for column, value in stored.items() if column != odm.id_field}
        assert got == expected, (record, event, form, instance)


def assert_rows_are_clinical_data(rows: list[dict[str, object]], odm: OdmExport) -> None:
    """Rows in REDCap's order, with exactly the non-blank values ClinicalData holds."""
    keys: list[RowKey] = []
    for row in rows:
        instance = row.get("redcap_repeat_instance", "")
        assert instance == "" or isinstance(instance, int)  # a JSON integer (§2.2)
        keys.append(
            (
                str(row[odm.id_field]),
                str(row.get("redcap_event_name", "")),
                str(row.get("redcap_repeat_instrument", "")),
                instance if isinstance(instance, int) else None,
            )
        )
    assert keys == list(odm.rows)
    for key, row in zip(keys, rows, strict=True):
        values = {c: v for c, v in row.items() if v != "" and c not in ROW_KEYS}
        expected: dict[str, object] = {c: v for c, v in odm.rows[key].items() if c in odm.columns}
        expected[odm.id_field] = key[0]  # ODM only shows it on the record id's own form
        assert values == expected, key


def test_export_gives_back_clinical_data(loaded: tuple[Project, OdmExport]) -> None:
    """Exported rows, their order and their non-blank values are REDCap's (REDCAP_API.md §2.2)."""
    project, odm = loaded
    request = records.ExportRequest(export_blank_for_gray=True)
    assert_rows_are_clinical_data(records.export_rows(project, request, NOW), odm)


def test_pycap_over_http_gets_clinical_data(loaded: tuple[Project, OdmExport]) -> None:
    """Through PyCap over HTTP: REDCap's records (JSON, §2.2) and its field list (§5)."""
    project, odm = loaded
    with server.RedcapSim(project) as sim:
        client = redcap.Project(sim.url, sim.token, timeout=10)
        rows = client.export_records(export_blank_for_gray_form_status=True)
        metadata = client.export_metadata()
    assert_rows_are_clinical_data(rows, odm)
    assert [row["field_name"] for row in metadata] == odm.fields


def test_export_columns_follow_the_dictionary(loaded: tuple[Project, OdmExport]) -> None:
    """Columns: record id, event, repeat columns, then fields in dictionary order (§2.2)."""
    project, odm = loaded
    rows = records.export_rows(project, records.ExportRequest(), NOW)
    assert rows
    expected = odm.columns[:1]
    if project.is_longitudinal:
        expected.append("redcap_event_name")
    if project.has_repeating:
        expected += ["redcap_repeat_instrument", "redcap_repeat_instance"]
    expected += odm.columns[1:]
    assert all(list(row) == expected for row in rows)


def test_unsaved_form_status_exports_zero(loaded: tuple[Project, OdmExport]) -> None:
    """Without exportBlankForGrayFormStatus a never-saved form's status exports "0" (§2.2)."""
    project, _ = loaded
    gray = records.export_rows(project, records.ExportRequest(export_blank_for_gray=True), NOW)
    plain = records.export_rows(project, records.ExportRequest(), NOW)
    statuses = {form.complete_field for form in project.forms}
    for blank_row, row in zip(gray, plain, strict=True):
        for column, value in row.items():
            if column in statuses and blank_row[column] == "" and value != "":
                assert value == "0"
            else:
                assert value == blank_row[column]
