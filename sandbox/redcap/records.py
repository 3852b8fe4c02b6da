"""Record export (``content=record`` without ``data``) as REDCap 15.x does it (REDCAP_API.md §2).

The HTTP layer parses the POST form into an :class:`ExportRequest` and renders what
:func:`export_rows` returns as JSON, CSV or XML. Rows are flat: one per record-event (and per
repeating instance) that has data, ordered by record (natural order), event, then instance;
every value a string except ``redcap_repeat_instance`` on repeating rows.

Where the reference is silent, this module decides: record names sort naturally and
case-insensitively (the reference projects' ClinicalData is in numeric order: 2 before 10);
``fields`` takes base names and ``<form>_complete``, not ``f___code`` columns; ``events`` is
ignored on classic projects; an event holding any data has a base row (REDCap keeps a record-id
row per event). filterLogic is applied row by row through :mod:`filtering`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from sandbox.redcap.errors import ApiError
from sandbox.redcap.filtering import FieldFacts, matches, parse_filter
from sandbox.redcap.model import Project, Slot, StoredRecord, checkbox_code_column

# With only dateRangeEnd, REDCap starts the range at this date (REDCAP_API.md §2.1).
RANGE_START = datetime(2004, 8, 1)
STATUS_LABELS = {"0": "Incomplete", "1": "Unverified", "2": "Complete"}


@dataclass
class ExportRequest:
    """What one record export asks for, as the HTTP layer parsed it (REDCAP_API.md §2.1)."""

    records: list[str] = field(default_factory=list)  # empty = all; unknown ids dropped silently
    fields: list[str] = field(default_factory=list)  # validated: 400 listing unknown names
    forms: list[str] = field(default_factory=list)  # validated; adds the form's fields
    events: list[str] = field(default_factory=list)  # longitudinal only; validated
    raw_or_label: str = "raw"  # "raw" | "label"
    filter_logic: str = ""
    date_begin: datetime | None = None  # server-local naive, inclusive
    date_end: datetime | None = None
    export_blank_for_gray: bool = False
    export_checkbox_label: bool = False


def event_label(project: Project, event: str) -> str:
    """``"Event 1"``, or ``"Event 1 (Arm 1: Drug A)"`` when the project has several arms."""
    item = project.event(event)
    if item is None:
        return event
    if len(project.arms) < 2:
        return item.name
    arm = next((a.name for a in project.arms if a.num == item.arm_num), "")
    return f"{item.name} (Arm {item.arm_num}: {arm})"


def natural_key(name: str) -> list[tuple[int, int, str]]:
    """Sort key for record names in REDCap's natural, case-insensitive order (2 before 10)."""
    return [
        (0, int(part), "") if part.isdecimal() else (1, 0, part.lower())
        for part in re.split(r"(\d+)", name)
        if part
    ]


def export_rows(
    project: Project, request: ExportRequest, now: datetime
) -> list[dict[str, str | int]]:
    """The rows REDCap would export for ``request``; raises ApiError(400) on bad parameters."""
    with project.lock:
        layout = _Layout(project, _data_columns(project, request))
        events = _events(project, request.events)
        logic = parse_filter(project, request.filter_logic)
        facts = FieldFacts(project)
        rows: list[dict[str, str | int]] = []
        evaluated = 0
        for stored in _records(project, request, now):
            for slot in _slots(project, layout, stored, events):
                evaluated += 1
                if logic is not None and not matches(project, logic, stored, slot, now, facts):
                    continue
                rows.append(_render(project, layout, request, stored, slot))
        project.filter_work.add(evaluated)
        return rows


# -- parameters -----------------------------------------------------------------------------
def _invalid(parameter: str, names: list[str]) -> ApiError:
    quoted = ", ".join(f"'{name}'" for name in names)
    message = f'The following values in the parameter "{parameter}" are not valid: {quoted}'
    return ApiError(400, message)


def _data_columns(project: Project, request: ExportRequest) -> list[str]:
    """Exported field columns in dictionary order, record id first (§2.1, §2.2)."""
    statuses = {form.complete_field for form in project.forms}
    names = {item.field_name for item in project.fields} | statuses
    unknown = [name for name in request.fields if name not in names]
    if unknown:
        raise _invalid("fields", unknown)
    unknown = [name for name in request.forms if project.form(name) is None]
    if unknown:
        raise _invalid("forms", unknown)
    chosen = set(request.fields)
    for name in request.forms:
        chosen |= {item.field_name for item in project.form_fields(name)}
        chosen.add(f"{name}_complete")
    if not chosen:
        chosen = names
    # Descriptive fields are dropped silently, unless nothing else was asked for.
    chosen = {name for name in chosen if name in statuses or _holds_data(project, name)}
    if not chosen:
        raise ApiError(
            400,
            'The variables provided in the parameter "fields" are not valid fields that contain '
            "data. Descriptive fields hold no data and cannot be exported.",
        )
    chosen.add(project.record_id_field)
    columns: list[str] = []
    for form in project.forms:
        for item in project.form_fields(form.name):
            if item.field_name in chosen and item.field_name != project.record_id_field:
                columns.extend(item.export_columns())
        if form.complete_field in chosen:
            columns.append(form.complete_field)
    return [project.record_id_field, *columns]


def _holds_data(project: Project, name: str) -> bool:
    item = project.field(name)
    return item is not None and bool(item.export_columns())


def _events(project: Project, names: list[str]) -> list[str]:
    """Unique event names to export, in project order; ``[""]`` on classic projects."""
    if not project.is_longitudinal:
        return [""]  # events[] means nothing without events, so it is not checked either
    known = [event.unique_name for event in project.events]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise _invalid("events", unknown)
    return [name for name in known if not names or name in names]


def _records(project: Project, request: ExportRequest, now: datetime) -> list[StoredRecord]:
    """The records asked for and changed within the date range, in natural order."""
    wanted = set(request.records)
    chosen = [s for name, s in project.records.items() if not wanted or name in wanted]
    if request.date_begin is not None or request.date_end is not None:
        begin = request.date_begin or RANGE_START
        end = request.date_end or now
        chosen = [s for s in chosen if any(begin <= t <= end for t in s.changed_at)]
    return sorted(chosen, key=lambda stored: natural_key(stored.record_id))


# -- rows -------------------------------------------------------------------------------------
class _Layout:
    """Per-export lookups: the columns and, for each, its form and checkbox choice."""

    def __init__(self, project: Project, columns: list[str]) -> None:
        self.columns = columns
        self.owner = project.column_form()
        self.statuses = {form.complete_field for form in project.forms}
        self.forms = {self.owner[column] for column in columns[1:]}
        self.form_order = {form.name: index for index, form in enumerate(project.forms)}
        self.checkboxes = {
            checkbox_code_column(item.field_name, code): (code, label)
            for item in project.fields
            if item.field_type == "checkbox"
            for code, label in item.choices()
        }


def _slots(
    project: Project, layout: _Layout, stored: StoredRecord, events: list[str]
) -> Iterator[Slot]:
    """The record's rows: per event with data, the base row, then repeating instances."""
    for event in events:
        present = [slot for slot, data in stored.slots.items() if slot[0] == event and data]
        if not present:
            continue
        if event not in project.repeating_events:
            # REDCap keeps a record-id row per event, so an event with data always has a base row.
            yield (event, "", None)
        repeats = [slot for slot in present if slot[2] is not None]
        for slot in sorted(repeats, key=lambda s: (layout.form_order.get(s[1], -1), s[2] or 0)):
            # An instrument's instances are left out when none of its columns is exported.
            if not slot[1] or slot[1] in layout.forms:
                yield slot


def _row_forms(project: Project, slot: Slot) -> set[str]:
    """The forms whose values a row shows: others export blank on it (§2.2)."""
    event, form, instance = slot
    if form:
        return {form}
    designated = project.forms_in_event(event)
    if instance is not None:
        return set(designated)
    return {name for name in designated if not project.is_repeating_form(event, name)}


def _render(
    project: Project,
    layout: _Layout,
    request: ExportRequest,
    stored: StoredRecord,
    slot: Slot,
) -> dict[str, str | int]:
    event, form, instance = slot
    labels = request.raw_or_label == "label"
    row: dict[str, str | int] = {project.record_id_field: stored.record_id}
    if project.is_longitudinal:
        row["redcap_event_name"] = event_label(project, event) if labels else event
    if project.has_repeating:
        form_item = project.form(form)
        row["redcap_repeat_instrument"] = form_item.label if labels and form_item else form
        row["redcap_repeat_instance"] = "" if instance is None else instance
    data = stored.slots.get(slot, {})
    shown = _row_forms(project, slot)
    for column in layout.columns[1:]:
        value = ""
        if layout.owner[column] in shown:
            value = data.get(column, "")
            if column in layout.checkboxes:
                value = value or "0"
            elif column in layout.statuses:
                value = value or ("" if request.export_blank_for_gray else "0")
        row[column] = _label(project, layout, request, column, value) if labels else value
    return row


def _label(
    project: Project, layout: _Layout, request: ExportRequest, column: str, value: str
) -> str:
    """``value`` as rawOrLabel=label shows it (§2.1)."""
    if value == "":
        return ""
    if column in layout.checkboxes:
        if request.export_checkbox_label:
            return layout.checkboxes[column][1] if value == "1" else ""
        return "Checked" if value == "1" else "Unchecked"
    if column in layout.statuses:
        return STATUS_LABELS.get(value, value)
    item = project.field(column)
    return dict(item.choices()).get(value, value) if item is not None else value
