"""Record import (``content=record`` with ``data``) as REDCap 15.x does it (REDCAP_API.md §4).

The HTTP layer decodes the payload into rows and calls :func:`import_rows`. The import is all or
nothing: whole-request errors first (one message), then every changed value is normalised and
validated and the failures are collected into REDCap's ``"rec","field","value","msg"`` lines.
Only when nothing failed are the changes written, and only real changes are logged.

Where the reference gives no wording (record names, duplicate rows, the repeat columns) the
messages are ours. An empty payload is "No data was provided."; a record or event created by
an import gets a base row holding the record id, as REDCap keeps a record-id row per event.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from sandbox.redcap.errors import ApiError
from sandbox.redcap.model import Field, Project, Slot, StoredRecord
from sandbox.redcap.records import event_label
from sandbox.redcap.validation import normalise, status_error, value_error

PSEUDO_COLUMNS = frozenset(
    {
        "redcap_event_name",
        "redcap_data_access_group",
        "redcap_repeat_instrument",
        "redcap_repeat_instance",
        "redcap_survey_identifier",
    }
)
# Types whose values an import skips: calcs are recalculated, files go through content=file.
IGNORED_TYPES = frozenset({"calc", "file"})
MAX_INSTANCE = 32767

NOT_DESIGNATED = (
    "This field ('{field}') exists on an instrument that is not designated for the event named "
    "'{event}'. You are not allowed to import data for this field into this event."
)
# REDCap's own wording for these is not quoted in the reference; these say the same thing.
INSTANCE_MISSING = (
    "redcap_repeat_instance is missing: data on a repeating instrument or event needs an "
    "instance number from 1 to 32767, or 'new'."
)
INSTANCE_INVALID = "redcap_repeat_instance must be an integer from 1 to 32767, or 'new'."
INSTANCE_NOT_REPEATING = (
    "redcap_repeat_instance was given, but this row is not on a repeating instrument or event."
)
INSTRUMENT_NOT_REPEATING = "'{form}' is not a repeating instrument in this event."
INSTRUMENT_ON_REPEATING_EVENT = (
    "This event is a repeating event, so redcap_repeat_instrument must be blank."
)
FIELD_ON_REPEATING_FORM = (
    "This field is on a repeating instrument, so redcap_repeat_instrument and "
    "redcap_repeat_instance must be given."
)
FIELD_OFF_INSTRUMENT = "This field is not on the repeating instrument '{form}' given for this row."


@dataclass
class ImportResult:
    record_ids: list[str]  # distinct record names in payload order (for count / ids)


@dataclass
class _Plan:
    """What an import will change: (record, slot) -> {column: new value, "" to delete}."""

    owner: dict[str, str]  # data column -> its form
    items: dict[str, Field]  # data column -> its field (form status columns have none)
    changes: dict[tuple[str, Slot], dict[str, str]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    next_instance: dict[tuple[str, str, str], int] = field(default_factory=dict)


def import_rows(
    project: Project,
    rows: list[dict[str, object]],
    *,
    overwrite: bool,
    date_format: str,
    now: datetime,
) -> ImportResult:
    """Validate ``rows`` (flat, one per record-event-instance) and store them, or raise 400."""
    texts = [{column: _text(value) for column, value in row.items()} for row in rows]
    if not texts:
        raise ApiError(400, "No data was provided.")
    with project.lock:
        _check_request(project, texts)
        plan = _Plan(
            owner=project.column_form(),
            items={c: item for item in project.fields for c in item.export_columns()},
        )
        for row in texts:
            _plan_row(project, plan, row, overwrite=overwrite, date_format=date_format, now=now)
        if plan.errors:
            raise ApiError(400, "\n".join(plan.errors))
        _apply(project, plan, now)
    return ImportResult(
        record_ids=list(dict.fromkeys(row[project.record_id_field] for row in texts))
    )


def _text(value: object) -> str:
    """A JSON value as the text PHP would see: numbers as written, null blank."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else ""
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, str):
        return value
    raise ApiError(400, "The data being imported is not formatted correctly")


def _error_line(record: str, column: str, value: str, message: str) -> str:
    return ",".join(
        '"' + part.replace('"', '""') + '"' for part in (record, column, value, message)
    )


# -- whole-request checks ---------------------------------------------------------------------
def _check_request(project: Project, rows: list[dict[str, str]]) -> None:
    """The single-message 400s of §4.3, in REDCap's order. Trims the record names in place."""
    known = set(PSEUDO_COLUMNS) | set(project.export_columns())
    known |= {f"{form.name}_timestamp" for form in project.forms}
    seen = dict.fromkeys(column for row in rows for column in row)
    unknown = [column for column in seen if column not in known]
    if unknown:
        raise ApiError(
            400,
            "The following fields were not found in the project as real data fields: "
            + ", ".join(unknown),
        )
    id_field = project.record_id_field
    for row in rows:
        row[id_field] = row.get(id_field, "").strip()
        if not row[id_field]:
            raise ApiError(400, f"The record id field ({id_field}) is missing.")
    bad = [r for r in dict.fromkeys(row[id_field] for row in rows) if _bad_record_name(r)]
    if bad:
        raise ApiError(
            400,
            "Record names may not be longer than 100 characters or contain line breaks or the "
            "characters + & # '. These record names are not allowed: " + ", ".join(bad),
        )
    if not project.has_repeating:
        first = project.events[0].unique_name if project.events else ""
        counts = Counter((row[id_field], row.get("redcap_event_name", "") or first) for row in rows)
        twice = [record for (record, _), count in counts.items() if count > 1]
        if twice:
            raise ApiError(
                400,
                "The records listed below occur more than once in the data (the same record "
                "and event in two rows), so nothing was imported: "
                + ", ".join(dict.fromkeys(twice)),
            )
    if project.is_longitudinal:
        names = {event.unique_name for event in project.events}
        given = dict.fromkeys(row.get("redcap_event_name", "") for row in rows)
        invalid = [name for name in given if name and name not in names]
        if invalid:
            raise ApiError(
                400, "The following values of redcap_event_name are invalid: " + ", ".join(invalid)
            )
    groups = [g for g in dict.fromkeys(r.get("redcap_data_access_group", "") for r in rows) if g]
    if groups:  # the simulator has no Data Access Groups, so every group name is unknown
        raise ApiError(
            400,
            "The following Data Access Group are invalid for the redcap_data_access_group "
            "field: " + ", ".join(groups),
        )


def _bad_record_name(name: str) -> bool:
    return len(name) > 100 or bool(re.search(r"[\r\n+&#']", name))


# -- per-row planning -------------------------------------------------------------------------
def _resolve_slot(project: Project, plan: _Plan, row: dict[str, str], event: str) -> Slot | None:
    """The slot a row writes to, or None after recording why the repeat columns are wrong."""
    record = row[project.record_id_field]
    form = row.get("redcap_repeat_instrument", "").strip()
    instance = row.get("redcap_repeat_instance", "").strip()
    repeating_event = event in project.repeating_events
    errors: list[str] = []
    if repeating_event and form:
        errors.append(
            _error_line(record, "redcap_repeat_instrument", form, INSTRUMENT_ON_REPEATING_EVENT)
        )
    elif form and not project.is_repeating_form(event, form):
        message = INSTRUMENT_NOT_REPEATING.format(form=form)
        errors.append(_error_line(record, "redcap_repeat_instrument", form, message))
    if not (repeating_event or form):
        if instance:
            errors.append(
                _error_line(record, "redcap_repeat_instance", instance, INSTANCE_NOT_REPEATING)
            )
        plan.errors.extend(errors)
        return None if errors else (event, "", None)
    if not instance:
        errors.append(_error_line(record, "redcap_repeat_instance", instance, INSTANCE_MISSING))
    elif instance != "new" and not (
        re.fullmatch(r"[0-9]{1,5}", instance) and 1 <= int(instance) <= MAX_INSTANCE
    ):
        errors.append(_error_line(record, "redcap_repeat_instance", instance, INSTANCE_INVALID))
    if errors:
        plan.errors.extend(errors)
        return None
    key = (record, event, form)
    if key not in plan.next_instance:
        stored = project.records.get(record)
        used = [s[2] for s in (stored.slots if stored else {}) if s[:2] == (event, form)]
        plan.next_instance[key] = max((n for n in used if n is not None), default=0) + 1
    number = plan.next_instance[key] if instance == "new" else int(instance)
    plan.next_instance[key] = max(plan.next_instance[key], number + 1)
    return (event, form, number)


def _plan_row(
    project: Project,
    plan: _Plan,
    row: dict[str, str],
    *,
    overwrite: bool,
    date_format: str,
    now: datetime,
) -> None:
    """Add the row's real changes to ``plan`` and its invalid values to ``plan.errors``."""
    record = row[project.record_id_field]
    event = ""
    if project.is_longitudinal:
        event = row.get("redcap_event_name", "") or project.events[0].unique_name
    slot = _resolve_slot(project, plan, row, event)
    if slot is None:
        return
    stored_record = project.records.get(record)
    stored = stored_record.slots.get(slot, {}) if stored_record else {}
    pending = plan.changes.setdefault((record, slot), {})
    for column, raw in row.items():
        form = plan.owner.get(column)
        item = plan.items.get(column)
        if form is None or column == project.record_id_field:
            continue  # pseudo-columns, timestamps and the record name itself
        if item is not None and item.field_type in IGNORED_TYPES:
            continue
        is_checkbox = item is not None and item.field_type == "checkbox"
        if raw == "" and not overwrite:
            continue  # "normal" keeps what is stored when the payload is blank
        value = normalise(item, raw, date_format, now) if item is not None else raw
        if is_checkbox and value == "":
            value = "0"
        current = pending.get(column, stored.get(column, ""))
        if is_checkbox:
            current = current or "0"
        if value == current:
            continue  # "keep": REDCap neither validates nor logs an unchanged value
        message = _value_message(project, slot, column, form, item, value, date_format)
        if message is not None:
            plan.errors.append(_error_line(record, column, raw, message))
        else:
            pending[column] = "" if (is_checkbox and value == "0") else value


def _value_message(
    project: Project,
    slot: Slot,
    column: str,
    form: str,
    item: Field | None,
    value: str,
    date_format: str,
) -> str | None:
    """Why a changed value may not be imported into ``slot``, or None."""
    event, row_form, instance = slot
    if form not in project.forms_in_event(event):
        return NOT_DESIGNATED.format(field=column, event=event_label(project, event))
    if row_form and form != row_form:
        return FIELD_OFF_INSTRUMENT.format(form=row_form)
    if instance is None and project.is_repeating_form(event, form):
        return FIELD_ON_REPEATING_FORM
    if value == "":
        return None  # deleting with "overwrite" is always allowed
    if item is None:
        return status_error(column, value)
    return value_error(item, value, date_format)


# -- writing --------------------------------------------------------------------------------
def _apply(project: Project, plan: _Plan, now: datetime) -> None:
    """Store the planned changes; log each record that really changed once, at ``now``."""
    id_field = project.record_id_field
    changed: dict[str, StoredRecord] = {}
    for (record, slot), values in plan.changes.items():
        stored = project.records.get(record)
        if stored is None:
            stored = project.records[record] = StoredRecord(record_id=record)
            changed[record] = stored
        # A record-event row carries the record name, as REDCap keeps a record id row per event.
        base = slot if not slot[1] else (slot[0], "", None)
        if not stored.slots.get(base) and (values or slot == base):
            stored.slots[base] = {id_field: record}
            changed[record] = stored
        if not values:
            continue
        data = stored.slots.setdefault(slot, {})
        for column, value in values.items():
            if value:
                data[column] = value
            else:
                data.pop(column, None)
        for form in {plan.owner[column] for column, value in values.items() if value}:
            data.setdefault(f"{form}_complete", "0")  # saving a form's data marks it Incomplete
        if not data:
            del stored.slots[slot]
        changed[record] = stored
    for stored in changed.values():
        stored.changed_at.append(now)
