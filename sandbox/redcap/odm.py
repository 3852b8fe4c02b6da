"""Load a REDCap project from REDCap's own "CDISC ODM (XML) with metadata and data" export.

The file holds everything the simulator needs: the data dictionary (``ItemDef`` elements with
``redcap:`` attributes, choices in ``CodeList``), forms, arms and events (``StudyEventDef`` with
their ``FormRef`` designations), the repeating setup, surveys, project attributes, saved reports
and the records (``ClinicalData``, raw codes). REDCap writes ``ClinicalData`` from its flat
export with blank values left out, so each ``FormData`` belongs to one export row: the record's
event row, or one instance of a repeating instrument or event.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

from sandbox.redcap.dictionary import format_choices, modern_validation, synthetic_id
from sandbox.redcap.file_rows import file_error
from sandbox.redcap.model import (
    Arm,
    Event,
    Field,
    Form,
    Project,
    Report,
    Slot,
    StoredRecord,
)
from sandbox.redcap.record_files import PSEUDO_COLUMNS

ODM = "{http://www.cdisc.org/ns/odm/v1.3}"
RC = "{https://projectredcap.org}"
# ODM's redcap:FieldType uses REDCap's back-end names for two types.
FIELD_TYPES = {"textarea": "notes", "select": "dropdown"}
# The optional metadata keys REDCap writes as plain redcap: attributes on an ItemDef.
ITEM_ATTRIBUTES = {
    "section_header": "SectionHeader",
    "field_note": "FieldNote",
    "identifier": "Identifier",
    "branching_logic": "BranchingLogic",
    "custom_alignment": "CustomAlignment",
    "question_number": "QuestionNumber",
    "matrix_group_name": "MatrixGroupName",
    "matrix_ranking": "MatrixRanking",
    "field_annotation": "FieldAnnotation",
}
_ATTRIBUTE_VALUE = re.compile(r'="[^"]*"')


def load_project_xml(path: Path, project_id: int = 1) -> Project:
    """The project in a REDCap ODM export, with its records in the file's order.

    Faithful where the XML allows; what it does not carry is made up or left blank: event and
    report ids (from ``project_id``), slider min/max, the SQL of ``sql`` fields. File-upload
    values are stored as their file names. Data Access Groups and survey timestamps are not
    loaded (the model has no place for them).
    """
    root = _parse(path)
    study = root.find(f"{ODM}Study")
    meta = study.find(f"{ODM}MetaDataVersion") if study is not None else None
    if study is None or meta is None:
        raise file_error(path, "", "not a REDCap ODM export (no Study/MetaDataVersion)")
    variables = study.find(f"{ODM}GlobalVariables")
    settings = variables if variables is not None else ET.Element("GlobalVariables")
    forms, fields = _metadata(path, meta)
    project = Project(
        project_id=project_id,
        title=_text(settings, f"{ODM}StudyName") or meta.get("Name", ""),
        fields=fields,
        forms=forms,
    )
    _load_events(meta, project)
    _load_settings(settings, project)
    clinical = root.find(f"{ODM}ClinicalData")
    if clinical is not None:
        _load_records(path, clinical, project)
    return project


def _parse(path: Path) -> ET.Element:
    """The document root, with line breaks inside attribute values kept.

    REDCap writes multi-line values as literal line breaks in ``Value="..."``, which XML
    parsers must turn into spaces; REDCap's own importer escapes them first, and so do we.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise file_error(path, "", f"cannot be read ({error})") from None
    kept = _ATTRIBUTE_VALUE.sub(
        lambda m: m.group().replace("\r", "&#13;").replace("\n", "&#10;"), text
    )
    try:
        # ElementTree resolves no external entities and expat caps entity expansion.
        return ET.fromstring(kept)  # noqa: S314
    except ET.ParseError:
        pass
    try:
        ET.fromstring(text)  # noqa: S314  (again, unescaped, for a line number that is true)
    except ET.ParseError as error:
        line, column = error.position
        reason = str(error).rsplit(": line", 1)[0]
        where = f"line {line}, column {column + 1}"
        raise file_error(path, where, f"not well-formed XML ({reason})") from None
    raise file_error(path, "", "not well-formed XML")


def _text(parent: ET.Element, tag: str) -> str:
    return (parent.findtext(tag) or "").strip()


# -- metadata ---------------------------------------------------------------------------------
def _metadata(path: Path, meta: ET.Element) -> tuple[list[Form], list[Field]]:
    """Forms in order, and their fields in dictionary order (one per checkbox, no statuses)."""
    groups = {group.get("OID"): group for group in meta.iter(f"{ODM}ItemGroupDef")}
    items = {item.get("OID"): item for item in meta.iter(f"{ODM}ItemDef")}
    code_lists = {codes.get("OID"): codes for codes in meta.iter(f"{ODM}CodeList")}
    forms: list[Form] = []
    fields: list[Field] = []
    seen: set[str] = set()
    for form_def in meta.iter(f"{ODM}FormDef"):
        name = form_def.get(f"{RC}FormName") or form_def.get("OID", "").removeprefix("Form.")
        form = Form(name=name, label=form_def.get("Name") or name)
        forms.append(form)
        for group_ref in form_def.iter(f"{ODM}ItemGroupRef"):
            group = groups.get(group_ref.get("ItemGroupOID"))
            if group is None:
                problem = f"form {name!r} refers to a missing ItemGroupDef"
                raise file_error(path, "", f"{problem} {group_ref.get('ItemGroupOID')!r}")
            for item_ref in group.iter(f"{ODM}ItemRef"):
                item = items.get(item_ref.get("ItemOID"))
                if item is None:
                    raise file_error(path, "", f"missing ItemDef {item_ref.get('ItemOID')!r}")
                variable = item.get(f"{RC}Variable") or item.get("OID") or ""
                # Pseudo-fields (DAG, survey timestamps) have no FieldType; statuses are forms'.
                if variable in seen or item.get(f"{RC}FieldType") is None:
                    continue
                if variable == form.complete_field:
                    continue
                seen.add(variable)
                fields.append(_field(item, item_ref, name, variable, code_lists))
    if not fields:
        raise file_error(path, "", "the project has no fields")
    return forms, fields


def _field(
    item: ET.Element,
    item_ref: ET.Element,
    form: str,
    variable: str,
    code_lists: dict[str | None, ET.Element],
) -> Field:
    raw_type = item.get(f"{RC}FieldType", "text")
    field_type = FIELD_TYPES.get(raw_type, raw_type)
    codes_ref = item.find(f"{ODM}CodeListRef")
    codes = code_lists.get(codes_ref.get("CodeListOID")) if codes_ref is not None else None
    required = item.get(f"{RC}RequiredField") == "y" or item_ref.get("Mandatory") == "Yes"
    extra = {key: item.get(f"{RC}{name}", "") for key, name in ITEM_ATTRIBUTES.items()}
    return Field(
        field_name=variable,
        form_name=form,
        field_type=field_type,
        field_label=_label(item.find(f"{ODM}Question")),
        select_choices_or_calculations=_choices(item, field_type, codes),
        text_validation_type_or_show_slider_number=modern_validation(
            item.get(f"{RC}TextValidationType", "")
        ),
        text_validation_min=_range(item, "GE"),
        text_validation_max=_range(item, "LE"),
        required_field="y" if required else "",
        **extra,
    )


def _label(element: ET.Element | None) -> str:
    """A label: REDCap's HTML version when it wrote one, else the plain text."""
    if element is None:
        return ""
    formatted = element.find(f"{RC}FormattedTranslatedText")
    if formatted is not None:
        return formatted.text or ""
    return element.findtext(f"{ODM}TranslatedText") or ""


def _choices(item: ET.Element, field_type: str, codes: ET.Element | None) -> str:
    """``select_choices_or_calculations`` as the API reports it."""
    if field_type == "calc":
        return item.get(f"{RC}Calculation", "")
    if field_type == "slider":
        return item.get(f"{RC}SliderLabels", "")
    if field_type == "text":
        return item.get(f"{RC}OntologySearch", "")
    if codes is None or field_type not in {"checkbox", "dropdown", "radio"}:
        return ""  # yes/no and true/false have fixed choices; an sql field's query is not kept
    if field_type == "checkbox":
        return format_choices(codes.get(f"{RC}CheckboxChoices", ""))
    return " | ".join(
        f"{entry.get('CodedValue', '')}, {_label(entry.find(f'{ODM}Decode'))}"
        for entry in codes.iter(f"{ODM}CodeListItem")
    )


def _range(item: ET.Element, comparator: str) -> str:
    for check in item.iter(f"{ODM}RangeCheck"):
        if check.get("Comparator") == comparator:
            return _text(check, f"{ODM}CheckValue")
    return ""


# -- events and project settings --------------------------------------------------------------
def _load_events(meta: ET.Element, project: Project) -> None:
    """Arms, events in REDCap's order, and each event's designated forms."""
    arms: dict[int, str] = {}
    for number, event_def in enumerate(meta.iter(f"{ODM}StudyEventDef"), 1):
        unique = event_def.get(f"{RC}UniqueEventName") or event_def.get("OID", "")[6:]
        arm = int(event_def.get(f"{RC}ArmNum") or 1)
        arms.setdefault(arm, event_def.get(f"{RC}ArmName") or f"Arm {arm}")
        project.events.append(
            Event(
                unique_name=unique,
                name=event_def.get(f"{RC}EventName") or event_def.get("Name") or unique,
                arm_num=arm,
                event_id=synthetic_id(project.project_id, number),
                custom_label=event_def.get(f"{RC}CustomEventLabel", ""),
                day_offset=float(event_def.get(f"{RC}DayOffset") or 0),
                offset_min=float(event_def.get(f"{RC}OffsetMin") or 0),
                offset_max=float(event_def.get(f"{RC}OffsetMax") or 0),
            )
        )
        project.form_events[unique] = [
            ref.get(f"{RC}FormName") or ref.get("FormOID", "").removeprefix("Form.")
            for ref in event_def.iter(f"{ODM}FormRef")
        ]
    project.arms = [Arm(num, name) for num, name in sorted(arms.items())]


def _load_settings(settings: ET.Element, project: Project) -> None:
    """Project attributes, the repeating setup, surveys and saved reports."""
    flag = _text(settings, f"{RC}RecordAutonumberingEnabled")
    project.record_autonumbering = flag == "1"
    project.custom_record_label = _text(settings, f"{RC}CustomRecordLabel")
    project.secondary_unique_field = _text(settings, f"{RC}SecondaryUniqueField")
    purpose = _text(settings, f"{RC}Purpose")
    project.purpose = int(purpose) if purpose.isdigit() else 0
    project.purpose_other = _text(settings, f"{RC}PurposeOther")
    project.project_notes = _text(settings, f"{RC}ProjectNotes")
    project.missing_data_codes = _text(settings, f"{RC}MissingDataCodes")
    project.survey_email_field = _text(settings, f"{RC}SurveyInvitationEmailField")
    for repeating in settings.iter(f"{RC}RepeatingInstrument"):
        # Classic projects have one hidden event (event_1_arm_1); the model calls it "".
        event = repeating.get(f"{RC}UniqueEventName", "") if project.is_longitudinal else ""
        form = repeating.get(f"{RC}RepeatInstrument", "")
        project.repeating_forms.add((event, form))
        project.repeating_labels[(event, form)] = repeating.get(f"{RC}CustomLabel", "")
    for repeating in settings.iter(f"{RC}RepeatingEvent"):
        project.repeating_events.add(repeating.get(f"{RC}UniqueEventName", ""))
    if _text(settings, f"{RC}SurveysEnabled") != "0":
        for survey in settings.iter(f"{RC}Surveys"):
            surveyed = project.form(survey.get("form_name", ""))
            if surveyed is not None:
                surveyed.survey_title = survey.get("title", "")
    for number, report in enumerate(settings.iter(f"{RC}Reports"), 1):
        report_id = synthetic_id(project.project_id, number)
        project.reports[report_id] = Report(
            report_id=report_id,
            title=report.get("title", ""),
            fields=[name for name in report.get("redcap_reports_fields", "").split(",") if name],
            filter_logic=report.get("advanced_logic", ""),
        )


# -- records ----------------------------------------------------------------------------------
def _load_records(path: Path, clinical: ET.Element, project: Project) -> None:
    """``ClinicalData`` into slots: raw values, without unchecked boxes, in the file's order."""
    columns = set(project.export_columns())
    checkboxes = {
        c for f in project.fields if f.field_type == "checkbox" for c in f.export_columns()
    }
    datetimes = {
        f.field_name
        for f in project.fields
        if f.field_type == "text" and f.validation.startswith("datetime_")
    }
    skipped = PSEUDO_COLUMNS | {f"{form.name}_timestamp" for form in project.forms}
    id_field = project.record_id_field
    for subject in clinical.iter(f"{ODM}SubjectData"):
        record = subject.get("SubjectKey", "")
        stored = project.records.setdefault(record, StoredRecord(record_id=record))
        for event, event_key, container in _event_data(path, subject, project):
            for form_data in container.iter(f"{ODM}FormData"):
                slot = _slot(path, project, record, event, event_key, form_data)
                values = stored.slots.setdefault(slot, {})
                base = slot if event in project.repeating_events else (event, "", None)
                stored.slots.setdefault(base, {})[id_field] = record  # one id row per event
                for column, value in _items(form_data):
                    if column == id_field or (column not in columns and column in skipped):
                        continue
                    if column not in columns:
                        where = f"record {record!r}"
                        raise file_error(path, where, f"{column!r} is not a field of the project")
                    if value == "" or (value == "0" and column in checkboxes):
                        continue  # REDCap stores only checked boxes
                    # ODM puts a "T" between date and time; exports and imports use a space.
                    values[column] = value.replace("T", " ", 1) if column in datetimes else value


def _items(form_data: ET.Element) -> Iterator[tuple[str, str]]:
    """(column, value) of each ItemData; a file upload's value is its file name."""
    for item in form_data.iter():
        if item.tag == f"{ODM}ItemData":
            yield item.get("ItemOID", ""), item.get("Value", "")
        elif item.tag == f"{ODM}ItemDataBase64Binary":
            yield item.get("ItemOID", ""), item.get(f"{RC}DocName", "")


def _event_data(
    path: Path, subject: ET.Element, project: Project
) -> list[tuple[str, str, ET.Element]]:
    """(event, event repeat key, element holding its FormData) for one record."""
    if not project.is_longitudinal:
        return [("", "1", subject)]
    found: list[tuple[str, str, ET.Element]] = []
    for event_data in subject.iter(f"{ODM}StudyEventData"):
        event = event_data.get(f"{RC}UniqueEventName") or event_data.get("StudyEventOID", "")[6:]
        if project.event(event) is None:
            where = f"record {subject.get('SubjectKey')!r}"
            raise file_error(path, where, f"{event!r} is not an event of the project")
        found.append((event, event_data.get("StudyEventRepeatKey", "1"), event_data))
    return found


def _slot(
    path: Path, project: Project, record: str, event: str, event_key: str, form_data: ET.Element
) -> Slot:
    """The export row a FormData belongs to (REDCap sets both repeat keys to 1 otherwise)."""
    form = form_data.get("FormOID", "").removeprefix("Form.")
    if project.form(form) is None:
        raise file_error(path, f"record {record!r}", f"{form!r} is not a form of the project")
    if event in project.repeating_events:
        return (event, "", _instance(path, record, event_key))
    if project.is_repeating_form(event, form):
        return (event, form, _instance(path, record, form_data.get("FormRepeatKey", "1")))
    return (event, "", None)


def _instance(path: Path, record: str, key: str) -> int:
    if not key.isdigit() or int(key) < 1:
        raise file_error(path, f"record {record!r}", f"repeat key {key!r} is not an instance")
    return int(key)
