"""Survey links and the survey participant list (REDCAP_API.md §5 ``surveyLink``,
``participantList``).

A link is ``{base}/surveys/?s=<hash>``: the hash is 16 characters from REDCap's URL-safe
alphabet, issued once per record, instrument, event and instance and stable from then on (the
participant list issues the same hashes). The simulator has no survey pages, so a stored form
status of 2 (Complete) stands for a completed response, and any other stored data on the form
for a partial one.
"""

from __future__ import annotations

import hashlib
import re
import secrets

from sandbox.httpserver import Response
from sandbox.redcap import render
from sandbox.redcap.errors import ApiError
from sandbox.redcap.model import Event, Form, Project, Slot, StoredRecord
from sandbox.redcap.params import ApiCall
from sandbox.redcap.records import natural_key

# generateRandomHash's alphabets: URL hashes, and hand-enterable access codes.
HASH_ALPHABET = "abcdefghijkmnopqrstuvwxyzABCDEFGHIJKLMNPQRSTUVWXYZ23456789"
CODE_ALPHABET = "34789ACDEFHJKLMNPRTWXY"
HASH_LENGTH = 16
CODE_LENGTH = 9
_NUMERIC = re.compile(r"^\d+(\.\d+)?$")


# -- surveyLink -------------------------------------------------------------------------------
def export_survey_link(call: ApiCall) -> Response:
    """The plain-text link, checked in REDCap's order: record, instrument, event."""
    project = call.project
    record = call.text("record").strip()
    if record == "":
        raise ApiError(400, "The parameter 'record' is missing")
    if record not in project.records:
        raise ApiError(400, f'The record "{_escape(record)}" does not exist')
    form = _survey_form(project, call.text("instrument").strip())
    event = _event(project, call.text("event").strip())
    if event is not None and form.name not in project.forms_in_event(event.unique_name):
        raise ApiError(
            400,
            f'The instrument "{_escape(form.name)}" has not been designated for the event '
            f'"{_escape(event.unique_name)}"',
        )
    event_name = event.unique_name if event is not None else ""
    instance = _instance(project, call.text("repeat_instance"), form.name, event_name)
    with project.lock:
        if event is not None and not _in_arm(project, project.records[record], event.arm_num):
            raise ApiError(400, "An unknown error occurred")
        link = survey_url(
            call.base_url, survey_hash(project, record, form.name, event_name, instance)
        )
    # REDCap ``print``s the link: no newline, PHP's default Content-Type.
    return Response(200, link, render.PHP_DEFAULT_TYPE)


def survey_url(base_url: str, hash_: str) -> str:
    return f"{base_url}/surveys/?s={hash_}"


def survey_hash(project: Project, record: str, form: str, event: str, instance: int) -> str:
    """The hash for this record's survey, issued on first use; call with ``project.lock``."""
    key = (record, form, event, instance)
    issued = project.survey_hashes.get(key)
    if issued is None:
        # Rebuilding the set of taken hashes per new hash made a first participantList
        # quadratic (no answer within a minute at 20,000 records): keep it alongside instead.
        taken = project.issued_hashes
        if len(taken) != len(project.survey_hashes):  # survey_hashes was filled another way
            taken.clear()
            taken.update(project.survey_hashes.values())
        while issued is None or issued in taken:
            issued = "".join(secrets.choice(HASH_ALPHABET) for _ in range(HASH_LENGTH))
        project.survey_hashes[key] = issued
        taken.add(issued)
    return issued


def _survey_form(project: Project, name: str) -> Form:
    if name == "":
        raise ApiError(400, "The parameter 'instrument' is missing")
    form = project.form(name)
    if form is None:
        raise ApiError(400, "Invalid instrument")
    if not form.is_survey:
        raise ApiError(400, f"The instrument '{name}' has not been enabled as a survey")
    return form


def _event(project: Project, name: str) -> Event | None:
    """The ``event`` parameter on longitudinal projects; None on classic ones."""
    if not project.is_longitudinal:
        return None
    if name == "":
        raise ApiError(400, "The parameter 'event' is missing")
    event = project.event(name)
    if event is None:
        raise ApiError(400, "Invalid event")
    return event


def _instance(project: Project, text: str, form: str, event: str) -> int:
    """``repeat_instance`` when positive and the form or event repeats; otherwise 1."""
    repeats = project.is_repeating_form(event, form) or event in project.repeating_events
    if not repeats or not _NUMERIC.match(text) or float(text) <= 0:
        return 1
    return int(float(text))


def _in_arm(project: Project, stored: StoredRecord, arm: int) -> bool:
    events = {event.unique_name for event in project.events if event.arm_num == arm}
    return any(slot[0] in events for slot in stored.slots)


def _escape(text: str) -> str:
    """RCView::escape (htmlspecialchars) on names echoed back in messages."""
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        .replace('"', "&quot;").replace("'", "&#039;")
    )  # fmt: skip


# -- participantList --------------------------------------------------------------------------
def export_participant_list(call: ApiCall) -> Response:
    """One row per record (per instance on repeating surveys) in the event's arm (§5)."""
    project = call.project
    form = _survey_form(project, call.text("instrument"))
    event = _event(project, call.text("event"))
    event_name = event.unique_name if event is not None else ""
    repeating = project.is_repeating_form(event_name, form.name) or (
        event_name in project.repeating_events
    )
    with project.lock:
        rows = [
            participant_row(call.base_url, project, stored, form.name, event_name, instance)
            for stored, instance in _participants(project, form.name, event, repeating)
        ]
    if not repeating:
        for row in rows:
            del row["repeat_instance"]
    header = list(rows[0]) if rows else _header(repeating)
    if call.format == "json":
        body = render.php_json(rows)
    elif call.format == "csv":
        body = render.csv_table(header, rows)
    elif call.format == "xml":
        items = "".join(render.xml_item(row, "participant") + "\n" for row in rows)
        body = f"{render.XML_DECLARATION}\n<participants>\n{items}</participants>"
    else:
        body = ""
    return render.ok(body, call.format)


def _header(repeating: bool) -> list[str]:
    header = ["email", "email_occurrence", "identifier", "record"]
    header += ["repeat_instance"] if repeating else []
    return [
        *header,
        "invitation_sent_status",
        "invitation_send_time",
        "response_status",
        "survey_access_code",
        "survey_link",
    ]


def _participants(
    project: Project, form: str, event: Event | None, repeating: bool
) -> list[tuple[StoredRecord, int]]:
    """(record, instance) pairs, sorted as REDCap does: by email, then record, naturally."""
    pairs: list[tuple[StoredRecord, int]] = []
    for stored in project.records.values():
        if event is not None and not _in_arm(project, stored, event.arm_num):
            continue
        event_name = event.unique_name if event is not None else ""
        instances = sorted(
            slot[2]
            for slot in stored.slots
            if slot[0] == event_name and slot[2] is not None and slot[1] in ("", form)
        )
        for instance in (dict.fromkeys(instances) or [1]) if repeating else [1]:
            pairs.append((stored, instance))
    return sorted(
        pairs,
        key=lambda pair: (
            _email(project, pair[0]).lower(),
            natural_key(pair[0].record_id.lower()),
            pair[1],
        ),
    )


def participant_row(
    base_url: str, project: Project, stored: StoredRecord, form: str, event: str, instance: int
) -> dict[str, str | int]:
    """One participant, in REDCap's column order (``repeat_instance`` dropped by the caller)."""
    status = response_status(project, stored, form, event, instance)
    hash_ = survey_hash(project, stored.record_id, form, event, instance)
    email = _email(project, stored)
    done = status == 2
    return {
        "email": email,
        "email_occurrence": 1,
        "identifier": "",
        # REDCap shows the record only when the email came from the designated email field.
        "record": stored.record_id if email else "",
        "repeat_instance": instance,
        "invitation_sent_status": 0,
        "invitation_send_time": "",
        "response_status": status,
        "survey_access_code": "" if done else access_code(hash_),
        "survey_link": "" if done else survey_url(base_url, hash_),
    }


def response_status(
    project: Project, stored: StoredRecord, form: str, event: str, instance: int
) -> int:
    """2 when the form's status is Complete, 1 when it holds other data, else 0."""
    slot: Slot = (event, "", instance if event in project.repeating_events else None)
    if project.is_repeating_form(event, form):
        slot = (event, form, instance)
    values = stored.slots.get(slot, {})
    if values.get(f"{form}_complete") == "2":
        return 2
    columns = {c for item in project.form_fields(form) for c in item.export_columns()}
    columns.discard(project.record_id_field)
    return 1 if any(values.get(column) for column in columns) else 0


def access_code(hash_: str) -> str:
    """A stable 9-character survey access code for a participant's hash."""
    digest = hashlib.sha256(hash_.encode("ascii")).digest()
    return "".join(CODE_ALPHABET[byte % len(CODE_ALPHABET)] for byte in digest[:CODE_LENGTH])


def _email(project: Project, stored: StoredRecord) -> str:
    """The record's value in the designated survey email field, if the project has one."""
    if not project.survey_email_field:
        return ""
    for values in stored.slots.values():
        if values.get(project.survey_email_field):
            return values[project.survey_email_field]
    return ""
