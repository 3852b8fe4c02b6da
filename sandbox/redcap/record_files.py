"""Store a raw flat record export (CSV or JSON) in a simulated project: :func:`load_records_file`.

:func:`dictionary.load_project_from_dictionary` calls it for ``--records``. The file must be a
raw export (codes, 0/1 checkboxes, Y-M-D dates); like the other loaders, every problem raises one
``ValueError`` naming the file, the line (or JSON item), the column and what is wrong.
"""

from __future__ import annotations

import json
from pathlib import Path

from sandbox.redcap.file_rows import Row, file_error, read_csv_rows
from sandbox.redcap.model import Field, Project, Slot, StoredRecord
from sandbox.redcap.validation import status_error, value_error

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
