"""Build simulated REDCap projects from the CSV files a study team can download from REDCap.

* :func:`load_dictionary`: the data dictionary, as the Online Designer downloads it (label
  headers such as "Variable / Field Name") or with the API's raw metadata names.
* :func:`load_events` and :func:`load_mapping`: the event, arm and instrument-designation CSVs.
* :func:`load_project_from_dictionary`: a whole project from that dictionary plus, optionally,
  those CSVs and a raw flat record export (CSV or JSON), which
  :func:`record_files.load_records_file` stores.

Study teams point this at their own files, so every problem raises one ``ValueError`` naming the
file, the line, the column and what is wrong (:func:`file_rows.file_error`).
"""

from __future__ import annotations

import re
from pathlib import Path

from sandbox.redcap.file_rows import Row, file_error, read_csv_rows
from sandbox.redcap.model import (
    METADATA_KEYS,
    Arm,
    Event,
    Field,
    Form,
    Project,
    parse_choices,
)
from sandbox.redcap.record_files import load_records_file

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


# -- shared helpers (also used by odm.py and demo.py) -----------------------------------------
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
