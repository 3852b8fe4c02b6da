"""Record deletion (``content=record&action=delete``) as REDCap 15.7.6 does it (REDCAP_API.md §5).

Whole records, or one instrument's or one event's data of them. The request is checked first
and then applied to every record, or to none: REDCap rolls back when any record fails. The
answer is the number of records that lost data, as a bare number.
"""

from __future__ import annotations

from sandbox.httpserver import Response
from sandbox.redcap import render
from sandbox.redcap.errors import ApiError
from sandbox.redcap.model import Project, Slot, StoredRecord
from sandbox.redcap.params import ApiCall

NOT_AN_ARRAY = (
    "Incorrect format for 'records' parameter. It must be passed as an array, even if it only "
    "contains a single record name."
)
EMPTY_ARRAY = (
    "The 'records' parameter is an empty array. The parameter must be an array containing one "
    "or more record names to delete."
)
MISSING_RECORDS = (
    "One or more of the records provided cannot be deleted because they do not exist in the "
    "project. The following records do not exist:"
)
NOT_DELETED = (
    "One or more of the records provided are either do not exist in this project or not valid "
    "with selected params. Note: No records were deleted. Records that do not exist:"
)
BAD_ARM = "The arm provided is not correct for the project."
BAD_INSTANCE = "Repeating instance should be numeric."
BAD_EVENT = "Invalid Unique Event Name."
BAD_INSTRUMENT = "Invalid instrument."
EVENT_REQUIRED = "Event is mandatory for longitudinal project."


def delete_records(call: ApiCall) -> Response:
    """Delete records (or parts of them); all or nothing, like REDCap's transaction."""
    project = call.project
    if not call.is_list("records"):
        raise ApiError(400, EMPTY_ARRAY if call.text("records") == "" else NOT_AN_ARRAY)
    names = call.array("records")
    if not names:
        raise ApiError(400, EMPTY_ARRAY)
    arm = _arm(project, call.text("arm"))
    event, instrument = call.text("event"), call.text("instrument")
    instance_text = call.text("repeat_instance")
    with project.lock:
        missing = [name for name in names if name not in project.records]
        if missing:
            raise ApiError(400, f"{MISSING_RECORDS} {', '.join(missing)}")
        problem = _problem(project, event, instrument, instance_text)
        if problem is not None:
            raise ApiError(400, f"{NOT_DELETED} " + ", ".join(f"{n}: {problem}" for n in names))
        instance = int(float(instance_text)) if instance_text not in ("", "0") else 1
        count = 0
        for name in dict.fromkeys(names):
            stored = project.records[name]
            if event or instrument:
                deleted = _delete_part(project, stored, event, instrument, instance)
            else:
                deleted = _delete_record(project, stored, arm)
            count += int(deleted)
    # REDCap sends the count with the Content-Type of ``format`` (xml when absent).
    return render.ok(str(count), call.format)


def _arm(project: Project, text: str) -> int | None:
    """The ``arm`` parameter, checked only where it matters: several arms."""
    if text == "" or not project.is_longitudinal or len(project.arms) < 2:
        return None
    for arm in project.arms:
        if str(arm.num) == text.strip():
            return arm.num
    raise ApiError(400, BAD_ARM)


def _problem(project: Project, event: str, instrument: str, instance: str) -> str | None:
    """The per-record error REDCap::deleteRecord would give, the same for every record."""
    if instance not in ("", "0"):
        try:
            float(instance)
        except ValueError:
            return BAD_INSTANCE
    if event:
        if project.event(event) is None:
            return BAD_EVENT
        if instrument and project.form(instrument) is None:
            return BAD_INSTRUMENT
    elif instrument and project.is_longitudinal:
        return EVENT_REQUIRED
    return None


def _delete_record(project: Project, stored: StoredRecord, arm: int | None) -> bool:
    if arm is None:
        del project.records[stored.record_id]
        return True
    arm_events = {event.unique_name for event in project.events if event.arm_num == arm}
    doomed = [slot for slot in stored.slots if slot[0] in arm_events]
    for slot in doomed:
        del stored.slots[slot]
    if not stored.slots:
        del project.records[stored.record_id]
    return bool(doomed)


def _delete_part(
    project: Project, stored: StoredRecord, event: str, instrument: str, instance: int
) -> bool:
    """Remove one event's, or one instrument's, data at ``instance``; True if any went."""
    if not instrument:
        doomed = [s for s in stored.slots if s[0] == event and (s[2] or 1) == instance]
        for gone in doomed:
            del stored.slots[gone]
        return bool(doomed)
    if project.is_repeating_form(event, instrument):
        return stored.slots.pop((event, instrument, instance), None) is not None
    slot: Slot = (event, "", instance if event in project.repeating_events else None)
    values = stored.slots.get(slot)
    if values is None:
        return False
    columns = [c for item in project.form_fields(instrument) for c in item.export_columns()]
    columns.append(f"{instrument}_complete")
    columns = [c for c in columns if c != project.record_id_field]
    removed = [c for c in columns if values.pop(c, None) is not None]
    return bool(removed)
