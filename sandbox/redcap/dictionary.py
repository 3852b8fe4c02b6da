"""Build simulated REDCap projects from the CSV files a study team can download from REDCap.

* :func:`load_dictionary`: the data dictionary, as the Online Designer downloads it (label
  headers such as "Variable / Field Name") or with the API's raw metadata names.
* :func:`load_project_from_dictionary`: a whole project from that dictionary plus, optionally,
  the event, arm and instrument-designation CSVs and a raw flat record export (CSV or JSON),
  which :func:`load_records_file` stores.

Study teams point this at their own files, so every problem raises one ``ValueError`` naming the
file, the line (or JSON item), the column and what is wrong.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path

from sandbox.redcap.model import (
    METADATA_KEYS,
    Arm,
    Event,
    Field,
    Form,
    Project,
    Slot,
    StoredRecord,
    parse_choices,
)
from sandbox.redcap.validation import status_error, value_error

# The Online Designer's headers (lower-cased) for the 18 raw metadata keys.
LABEL_HEADERS: dict[str, str] = {
    "variable / field name": "field_name",
    "form name": "form_name",
    "section header": "section_header",
    "field type": "field_type",
    "field label": "field_label",
    "choices, calculations, or slider labels": "select_choices_or_calculations",
    "field note": "field_note",
    "text validation type or show slider number": "text_validation_type_or_show_slider_number",
    "text validation min": "text_validation_min",
    "text validation max": "text_validation_max",
    "identifier?": "identifier",
    "branching logic (show field only if...)": "branching_logic",
    "required field?": "required_field",
    "custom alignment": "custom_alignment",
    "question number (surveys only)": "question_number",
    "matrix group name": "matrix_group_name",
    "matrix ranking?": "matrix_ranking",
    "field annotation": "field_annotation",
}
REQUIRED_KEYS = ("field_name", "form_name", "field_type")
FIELD_TYPES = frozenset(
    {"text", "notes", "dropdown", "radio", "checkbox", "yesno", "truefalse", "calc", "file"}
    | {"slider", "descriptive", "sql"}
)
# Back-end names that ODM files and old dictionaries still carry -> the API's names.
LEGACY_VALIDATION = {
    "int": "integer",
    "float": "number",
    "date": "date_ymd",
    "datetime": "datetime_ymd",
    "datetime_seconds": "datetime_seconds_ymd",
}
FLAG_KEYS = ("identifier", "required_field", "matrix_ranking")
VARIABLE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
# Export columns that are not fields; a records file may carry them and they are not stored.
PSEUDO_COLUMNS = frozenset(
    {
        "redcap_event_name",
        "redcap_repeat_instrument",
        "redcap_repeat_instance",
        "redcap_data_access_group",
        "redcap_survey_identifier",
    }
)
# Field types whose raw values differ from their labels or from what Excel makes of them.
CHECKED_TYPES = frozenset({"checkbox", "radio", "dropdown", "yesno", "truefalse"})


# -- shared helpers (also used by odm.py and demo.py) -----------------------------------------
@dataclass(frozen=True)
class Row:
    """One row of a file: where it is (``line 4``, ``item 2``) and its values by column."""

    where: str
    values: dict[str, str]


def file_error(path: Path, where: str, problem: str) -> ValueError:
    """The one error a bad file raises: ``<file>: <where>: <problem>``."""
    return ValueError(f"{path}: {where}: {problem}" if where else f"{path}: {problem}")


def synthetic_id(project_id: int, number: int) -> int:
    """An id for something the files do not number (events, reports), unique per project."""
    return project_id * 1000 + number


def modern_validation(name: str) -> str:
    """The validation type under the name the API reports (``int`` -> ``integer``)."""
    return LEGACY_VALIDATION.get(name, name)


def format_choices(text: str) -> str:
    """Choices as the API writes them: ``"1, Yes | 2, No"``, whatever the separators' spacing."""
    return " | ".join(f"{code}, {label}" for code, label in parse_choices(text))


def form_label(name: str) -> str:
    """The label REDCap gives a form created from a dictionary: ``my_form`` -> ``My Form``."""
    return " ".join(word[:1].upper() + word[1:] for word in name.split("_"))


def forms_of(fields: list[Field]) -> list[Form]:
    """The forms of ``fields`` in order of first appearance, labelled from their names."""
    names = dict.fromkeys(item.form_name for item in fields)
    return [Form(name=name, label=form_label(name)) for name in names]


def read_csv_rows(path: Path) -> tuple[list[str], list[Row]]:
    """The header and the non-empty rows of a UTF-8 CSV file (a BOM is allowed)."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            header = [column.strip() for column in next(reader, [])]
            rows: list[Row] = []
            start = reader.line_num + 1
            for cells in reader:
                where, start = f"line {start}", reader.line_num + 1
                if not any(cell.strip() for cell in cells):
                    continue  # spreadsheet programs leave blank lines at the end
                if len(cells) != len(header):
                    problem = f"{len(cells)} values, but the header has {len(header)} columns"
                    raise file_error(path, where, problem)
                rows.append(Row(where, dict(zip(header, cells, strict=True))))
    except UnicodeDecodeError as error:
        raise file_error(path, "", f"not UTF-8 text (byte {error.start})") from None
    except csv.Error as error:
        raise file_error(path, "", f"not valid CSV ({error})") from None
    except OSError as error:
        raise file_error(path, "", f"cannot be read ({error.strerror})") from None
    if not header or not any(header):
        raise file_error(path, "", "the file is empty")
    twice = [column for column in dict.fromkeys(header) if header.count(column) > 1]
    if twice:
        raise file_error(path, f'header, column "{twice[0]}"', "this column appears twice")
    return header, rows


# -- the data dictionary ----------------------------------------------------------------------
def load_dictionary(path: Path) -> list[Field]:
    """The fields of a data dictionary CSV, in file order, with the 18 raw metadata keys."""
    header, rows = read_csv_rows(path)
    keys = _dictionary_keys(path, header)
    headers = {key: column for column, key in keys.items()}
    fields: list[Field] = []
    for row in rows:
        values = {keys[column]: value.strip() for column, value in row.values.items()}
        fields.append(_dictionary_field(path, row, values, headers))
    if not fields:
        raise file_error(path, "", "the data dictionary has no fields")
    _check_dictionary(path, fields, rows)
    return fields


def _dictionary_keys(path: Path, header: list[str]) -> dict[str, str]:
    """Header text -> raw metadata key; unknown or missing headers are errors."""
    keys: dict[str, str] = {}
    for column in header:
        key = column if column in METADATA_KEYS else LABEL_HEADERS.get(column.lower())
        if key is None:
            raise file_error(path, f'header, column "{column}"', "not a data dictionary column")
        keys[column] = key
    missing = [key for key in REQUIRED_KEYS if key not in keys.values()]
    if missing:
        raise file_error(path, "header", f"missing the column(s) {', '.join(missing)}")
    return keys


def _dictionary_field(
    path: Path, row: Row, values: dict[str, str], headers: dict[str, str]
) -> Field:
    """One dictionary row as a Field, after the checks REDCap's upload would make."""

    def fail(key: str, problem: str) -> ValueError:
        return file_error(path, f'{row.where}, column "{headers.get(key, key)}"', problem)

    for key in ("field_name", "form_name"):
        if not VARIABLE_NAME.match(values[key]):
            problem = "is not a valid name (a-z, 0-9 and _, starting with a letter)"
            raise fail(key, f"{values[key]!r} {problem}")
    kind = values["field_type"]
    if kind not in FIELD_TYPES:
        raise fail("field_type", f"{kind!r} is not a field type ({', '.join(sorted(FIELD_TYPES))})")
    for key in FLAG_KEYS:
        values[key] = values.get(key, "").lower()
        if values[key] not in {"", "y"}:
            raise fail(key, f"must be y or blank, not {values[key]!r}")
    if kind in {"dropdown", "radio", "checkbox"}:
        key = "select_choices_or_calculations"
        parts = [part.strip() for part in values.get(key, "").split("|") if part.strip()]
        bad = [part for part in parts if "," not in part or not part.partition(",")[0].strip()]
        if not parts or bad:
            problem = f"choice {bad[0]!r} has no code" if bad else "a choice field needs choices"
            raise fail(key, f'{problem}; write them like "1, Yes | 0, No"')
        values[key] = format_choices(values[key])
    key = "text_validation_type_or_show_slider_number"
    values[key] = modern_validation(values.get(key, ""))
    return Field(**values)


def _check_dictionary(path: Path, fields: list[Field], rows: list[Row]) -> None:
    """Rules across rows: unique names, each form's fields together, no clash with statuses."""
    seen: set[str] = set()
    finished: set[str] = set()
    statuses = {f"{item.form_name}_complete" for item in fields}
    for index, (item, row) in enumerate(zip(fields, rows, strict=True)):
        where = f'{row.where}, field "{item.field_name}"'
        if item.field_name in seen:
            raise file_error(path, where, "this field name is used twice")
        if item.field_name in statuses:
            raise file_error(path, where, "this name is taken by a form's status field")
        if index and fields[index - 1].form_name != item.form_name:
            finished.add(fields[index - 1].form_name)
        if item.form_name in finished:
            problem = f"form {item.form_name!r} is split: REDCap needs a form's fields together"
            raise file_error(path, where, problem)
        seen.add(item.field_name)


# -- events, arms and the form-event mapping --------------------------------------------------
def load_events(path: Path, arms: Path | None, project_id: int) -> tuple[list[Arm], list[Event]]:
    """Events from an ``event.csv`` (the API's export columns), arms from an ``arm.csv``."""
    header, rows = read_csv_rows(path)
    _require(path, header, ("event_name", "arm_num", "unique_event_name"))
    arm_names: dict[int, str] = {}
    if arms is not None:
        arm_header, arm_rows = read_csv_rows(arms)
        _require(arms, arm_header, ("arm_num", "name"))
        arm_names = {_integer(arms, row, "arm_num"): row.values["name"].strip() for row in arm_rows}
    events: list[Event] = []
    for number, row in enumerate(rows, 1):
        unique = row.values["unique_event_name"].strip()
        where = f'{row.where}, column "unique_event_name"'
        if not VARIABLE_NAME.match(unique):
            raise file_error(path, where, f"{unique!r} is not a valid unique event name")
        if any(event.unique_name == unique for event in events):
            raise file_error(path, where, f"{unique!r} is used twice")
        arm = _integer(path, row, "arm_num")
        if arms is not None and arm not in arm_names:
            raise file_error(path, f'{row.where}, column "arm_num"', f"arm {arm} is not in {arms}")
        arm_names.setdefault(arm, f"Arm {arm}")
        given_id = row.values.get("event_id", "").strip()
        events.append(
            Event(
                unique_name=unique,
                name=row.values["event_name"].strip(),
                arm_num=arm,
                event_id=_integer(path, row, "event_id")
                if given_id
                else synthetic_id(project_id, number),
                custom_label=row.values.get("custom_event_label", "").strip(),
                day_offset=_number(path, row, "days_offset"),
                offset_min=_number(path, row, "offset_min"),
                offset_max=_number(path, row, "offset_max"),
            )
        )
    if not events:
        raise file_error(path, "", "the events file has no events")
    return [Arm(num, name) for num, name in sorted(arm_names.items())], events


def load_mapping(path: Path, project: Project) -> dict[str, list[str]]:
    """Event -> designated forms (in project order), from a formEventMapping CSV."""
    header, rows = read_csv_rows(path)
    _require(path, header, ("unique_event_name", "form"))
    chosen: dict[str, set[str]] = {event.unique_name: set() for event in project.events}
    for row in rows:
        name, form = row.values["unique_event_name"].strip(), row.values["form"].strip()
        event = project.event(name)
        if event is None:
            where = f'{row.where}, column "unique_event_name"'
            raise file_error(path, where, f"{name!r} is not in the events file")
        if project.form(form) is None:
            raise file_error(path, f'{row.where}, column "form"', f"{form!r} is not a form")
        if row.values.get("arm_num", "").strip() not in {"", str(event.arm_num)}:
            where = f'{row.where}, column "arm_num"'
            raise file_error(path, where, f"event {name!r} is in arm {event.arm_num}")
        chosen[name].add(form)
    return {
        name: [f.name for f in project.forms if f.name in forms] for name, forms in chosen.items()
    }


def _require(path: Path, header: list[str], columns: tuple[str, ...]) -> None:
    missing = [column for column in columns if column not in header]
    if missing:
        raise file_error(path, "header", f"missing the column(s) {', '.join(missing)}")


def _integer(path: Path, row: Row, column: str) -> int:
    text = row.values.get(column, "").strip()
    if not text.isdigit():
        raise file_error(path, f'{row.where}, column "{column}"', f"{text!r} is not a whole number")
    return int(text)


def _number(path: Path, row: Row, column: str) -> float:
    text = row.values.get(column, "").strip() or "0"
    try:
        return float(text)
    except ValueError:
        where = f'{row.where}, column "{column}"'
        raise file_error(path, where, f"{text!r} is not a number") from None


# -- the whole project ------------------------------------------------------------------------
def load_project_from_dictionary(
    dictionary: Path,
    records: Path | None = None,
    events: Path | None = None,
    arms: Path | None = None,
    mapping: Path | None = None,
    project_id: int = 1,
    title: str = "",
) -> Project:
    """A project from a data dictionary and, optionally, its events and a raw record export.

    Forms come in order of first appearance, labelled from their names. With ``events`` the
    project is longitudinal; **without a ``mapping`` file every form is designated for every
    event**. Event ids missing from ``event.csv`` are made up. Repeating instruments and events
    come from the records file (see :func:`load_records_file`). The title defaults to the name
    of the dictionary's folder.
    """
    fields = load_dictionary(dictionary)
    project = Project(
        project_id=project_id,
        title=title or dictionary.resolve().parent.name,
        fields=fields,
        forms=forms_of(fields),
    )
    if events is not None:
        project.arms, project.events = load_events(events, arms, project_id)
        if mapping is not None:
            project.form_events = load_mapping(mapping, project)
        else:
            every = [form.name for form in project.forms]
            project.form_events = {event.unique_name: list(every) for event in project.events}
    elif arms is not None or mapping is not None:
        raise file_error(arms or mapping or dictionary, "", "arms and mappings need an events file")
    if records is not None:
        load_records_file(project, records)
    return project


# -- records: a raw flat export ---------------------------------------------------------------
def load_records_file(project: Project, path: Path) -> None:
    """Store a raw flat record export (``.json``, else CSV) in ``project``, in file order.

    The file must be what REDCap exports with ``rawOrLabel=raw``: choice codes, 0/1 checkboxes,
    Y-M-D dates. Labels ("Yes", "Checked", ``TRUE``) and re-formatted dates are refused rather
    than stored. A row with an instance and an instrument makes that instrument repeating in its
    event; an instance without one makes the event repeating. Unchecked boxes and the form
    status "0" of a form with no data (REDCap exports both for never-saved forms) are not stored;
    a form with data and no status gets "0", as an import would give it (REDCAP_API.md §4.4).
    """
    rows = _json_rows(path) if path.suffix.lower() == ".json" else read_csv_rows(path)[1]
    known = set(project.export_columns()) | PSEUDO_COLUMNS
    known |= {f"{form.name}_timestamp" for form in project.forms}
    keyed: list[tuple[Row, str, Slot]] = []
    for row in rows:
        unknown = [column for column in row.values if column not in known]
        if unknown:
            problem = "not a field of this project (or not a raw export column)"
            raise file_error(path, f'{row.where}, column "{unknown[0]}"', problem)
        keyed.append((row, *_row_slot(project, path, row)))
    with project.lock:
        before = (set(project.repeating_forms), set(project.repeating_events))
        try:
            planned = _plan_rows(project, path, keyed)
        except ValueError:
            project.repeating_forms, project.repeating_events = before  # all or nothing
            raise
        for record, slot, values in planned:
            stored = project.records.setdefault(record, StoredRecord(record_id=record))
            stored.slots.setdefault(slot, {}).update(values)
            base = slot if slot[0] in project.repeating_events else (slot[0], "", None)
            # REDCap keeps a record-id row per event with data; the importer relies on it too.
            stored.slots.setdefault(base, {})[project.record_id_field] = record


def _plan_rows(
    project: Project, path: Path, keyed: list[tuple[Row, str, Slot]]
) -> list[tuple[str, Slot, dict[str, str]]]:
    """Learn what repeats from the rows, then check every row and work out what to store."""
    for _, _, (event, form, instance) in keyed:
        if instance is not None and form:
            project.repeating_forms.add((event, form))
        elif instance is not None:
            project.repeating_events.add(event)
    planned: list[tuple[str, Slot, dict[str, str]]] = []
    seen: set[tuple[str, Slot]] = set()
    for row, record, slot in keyed:
        _check_repeating(project, path, row, slot)
        if (record, slot) in seen:
            raise file_error(path, row.where, f"record {record!r} has this row twice")
        seen.add((record, slot))
        planned.append((record, slot, _slot_values(project, path, row, slot)))
    return planned


def _json_rows(path: Path) -> list[Row]:
    """A JSON export's items as rows; values must be strings (numbers are taken as written)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as error:
        where = f"line {error.lineno}, column {error.colno}"
        raise file_error(path, where, f"not valid JSON ({error.msg})") from None
    except (OSError, UnicodeDecodeError) as error:
        raise file_error(path, "", f"cannot be read ({error})") from None
    if not isinstance(data, list):
        raise file_error(path, "", "a REDCap JSON export is a list of records")
    rows: list[Row] = []
    for number, item in enumerate(data, 1):
        if not isinstance(item, dict):
            raise file_error(path, f"item {number}", "each record must be a JSON object")
        values: dict[str, str] = {}
        for column, value in item.items():
            if isinstance(value, bool) or not isinstance(value, str | int | None):
                where = f'item {number}, column "{column}"'
                raise file_error(path, where, f"{value!r} is not a value REDCap exports")
            values[column] = "" if value is None else str(value)
        rows.append(Row(f"item {number}", values))
    return rows


def _row_slot(project: Project, path: Path, row: Row) -> tuple[str, Slot]:
    """The record name and slot (event, repeating form, instance) of one export row."""

    def fail(column: str, problem: str) -> ValueError:
        return file_error(path, f'{row.where}, column "{column}"', problem)

    id_field = project.record_id_field
    record = row.values.get(id_field, "").strip()
    if not record:
        raise fail(id_field, "the record ID is blank")
    event = row.values.get("redcap_event_name", "").strip()
    if project.is_longitudinal and project.event(event) is None:
        names = ", ".join(e.unique_name for e in project.events)
        raise fail("redcap_event_name", f"{event!r} is not a unique event name ({names})")
    if not project.is_longitudinal and event:
        raise fail("redcap_event_name", "the project has no events, so this must be blank")
    form = row.values.get("redcap_repeat_instrument", "").strip()
    instance = row.values.get("redcap_repeat_instance", "").strip()
    if form and project.form(form) is None:
        raise fail("redcap_repeat_instrument", f"{form!r} is not a form of this project")
    if form and form not in project.forms_in_event(event):
        raise fail("redcap_repeat_instrument", f"{form!r} is not designated for {event!r}")
    if not instance:
        if form:
            raise fail("redcap_repeat_instance", f"blank, but {form!r} is named as repeating")
        return record, (event, "", None)
    if not instance.isdigit() or int(instance) < 1:
        raise fail("redcap_repeat_instance", f"{instance!r} is not a positive whole number")
    if not form and not project.is_longitudinal:
        raise fail("redcap_repeat_instrument", "blank, but only events repeat without one")
    return record, (event, form, int(instance))


def _check_repeating(project: Project, path: Path, row: Row, slot: Slot) -> None:
    """An event repeats as a whole or has repeating instruments, never both (nor base rows)."""
    event, form, instance = slot
    if event not in project.repeating_events:
        return
    if form or instance is None or any(name == event for name, _ in project.repeating_forms):
        problem = f"event {event!r} repeats (other rows give it an instance without instrument)"
        raise file_error(path, row.where, problem + ", so every row of it needs exactly that")


def _slot_values(project: Project, path: Path, row: Row, slot: Slot) -> dict[str, str]:
    """The values to store for one row: raw, on the row's forms, without defaults."""
    event, repeat_form, instance = slot
    if repeat_form:
        shown = {repeat_form}
    else:
        shown = set(project.forms_in_event(event))
        if instance is None:
            shown = {name for name in shown if not project.is_repeating_form(event, name)}
    owner = project.column_form()
    fields = {column: item for item in project.fields for column in item.export_columns()}
    statuses = {form.complete_field for form in project.forms}
    values: dict[str, str] = {}
    with_data: set[str] = set()
    for column, value in row.values.items():
        form = owner.get(column)
        if form is None or value == "" or column == project.record_id_field:
            continue
        item = fields.get(column)
        where = f'{row.where}, column "{column}"'
        message = _raw_error(column, value, item)
        if message is not None:
            problem = f"{value!r} is not a raw value ({message}); export with rawOrLabel=raw"
            raise file_error(path, where, problem)
        is_checkbox = item is not None and item.field_type == "checkbox"
        is_default = value == "0" and (column in statuses or is_checkbox)
        if form not in shown:
            if is_default:
                continue  # other exporters fill these in on rows where REDCap leaves them blank
            raise file_error(
                path, where, f"form {form!r} has no place on this row ({_row_name(slot)})"
            )
        if column not in statuses and not is_default:
            values[column] = value
            with_data.add(form)
    for form in shown:
        status = row.values.get(f"{form}_complete", "")
        # A "0" may be a never-saved form's default; keep it where REDCap saved something: the
        # form's data, or the record id (which REDCap saves with the record's first form).
        saved = form in with_data or (status == "0" and form == project.fields[0].form_name)
        if status not in {"", "0"} or saved:
            values[f"{form}_complete"] = status or "0"
    return values


def _raw_error(column: str, value: str, item: Field | None) -> str | None:
    """Why ``value`` cannot be a raw export value of ``column``, for the types labels change."""
    if item is None:
        return status_error(column, value)
    if item.field_type in CHECKED_TYPES or item.validation.startswith(("date_", "datetime_")):
        return value_error(item, value, "YMD")
    return None


def _row_name(slot: Slot) -> str:
    event, form, instance = slot
    if form:
        return f"an instance of repeating instrument {form!r}"
    if instance is not None:
        return f"instance {instance} of event {event!r}"
    return f"event {event!r}" if event else "the record's main row"
