"""Simulated participants: registrations arriving in the REDCap simulator over time.

Used by ``python -m sandbox --simulate N`` and by ``make demo``. A participant "completes the
registration form" the way REDCap records it: one import of their answers, through the
simulator's own import rules. :class:`Registration` says which fields that import fills: the
demo's, or the ones a study's settings name (``python -m sandbox --env-file .env``).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

from sandbox.clock import SimClock
from sandbox.redcap.importer import import_rows
from sandbox.redcap.model import Project

FIRST_NAMES = ("Ada", "Ben", "Chloe", "Dev", "Esi", "Farah", "Gus", "Hana", "Ivo", "Jun")


@dataclass(frozen=True)
class Participant:
    record_id: str
    phone: str
    first_name: str


@dataclass(frozen=True)
class Registration:
    """The fields one simulated registration fills, and the event it is stored in."""

    complete_field: str = "registration_complete"
    complete_value: str = "2"
    phone_field: str = "phone_number"
    event: str | None = None  # longitudinal projects: None means the first event
    demo_fields: bool = True  # also first_name and email where the project has them
    email_field: str = ""  # where an address goes (the first of EMAIL_FIELDS), if anywhere

    def row(self, project: Project, person: Participant) -> dict[str, object]:
        """The import row for ``person``: only the fields named here, nothing else."""
        row: dict[str, object] = {
            project.record_id_field: person.record_id,
            self.complete_field: self.complete_value,
        }
        if self.phone_field:
            row[self.phone_field] = _phone_as_stored(project, self.phone_field, person.phone)
        address = f"participant{person.record_id}@example.org"
        if self.email_field:
            row[self.email_field] = address
        if self.demo_fields and project.field("first_name") is not None:
            row["first_name"] = person.first_name
        if self.demo_fields and project.field("email") is not None:
            row["email"] = address
        if project.is_longitudinal:
            row["redcap_event_name"] = self.event or project.events[0].unique_name
        return row


def demo_cohort(count: int, start: int = 1) -> list[Participant]:
    """``count`` participants with numbers in the reserved 555-01xx range (delivered in the
    Twilio simulator), phones written the many ways people type them."""
    styles = ("(617) 555-{:04d}", "617-555-{:04d}", "+1 617 555 {:04d}", "617.555.{:04d}")
    people = []
    for i in range(count):
        n = start + i
        phone = styles[i % len(styles)].format(100 + n % 100)
        people.append(Participant(str(n), phone, FIRST_NAMES[i % len(FIRST_NAMES)]))
    return people


def register(
    project: Project,
    clock: SimClock,
    person: Participant,
    *,
    phone_field: str = "phone_number",
    complete_field: str = "registration_complete",
    event: str | None = None,
) -> None:
    """Store one completed registration (form status Complete) in the simulated project."""
    registration = Registration(complete_field, "2", phone_field, event)
    store(project, clock, [person], registration)


def store(
    project: Project, clock: SimClock, people: list[Participant], registration: Registration
) -> None:
    """Store ``people``'s registrations in one import; the simulator's ApiError if refused."""
    rows = [registration.row(project, person) for person in people]
    import_rows(project, rows, overwrite=False, date_format="YMD", now=clock.local_naive())


def simulate(
    project: Project,
    clock: SimClock,
    people: list[Participant],
    interval: float,
    stop: threading.Event,
    registration: Registration | None = None,
) -> threading.Thread:
    """Register ``people`` one every ``interval`` seconds in a background thread."""
    plan = registration or Registration()

    def run() -> None:
        for person in people:
            if stop.wait(interval):
                return
            store(project, clock, [person], plan)

    thread = threading.Thread(target=run, name="simulated-participants", daemon=True)
    thread.start()
    return thread


def _phone_as_stored(project: Project, field_name: str, phone: str) -> str:
    """A field validated as a phone takes only REDCap's (xxx) xxx-xxxx; others take it as typed."""
    item = project.field(field_name)
    if item is None or item.text_validation_type_or_show_slider_number != "phone":
        return phone
    digits = re.sub(r"\D", "", phone)[-10:]
    return f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"


def add_records(
    project: Project, clock: SimClock, numbers: range, status: str, phone_prefix: str = "617555"
) -> None:
    """Records ``numbers`` in bulk, as a bench or a large-project test needs them: registration
    complete, a demo phone (``phone_prefix`` + the number's last digits) and e-mail, and
    ``pipeline_status`` set (a ``delivered`` record also gets a Twilio-shaped SID)."""
    digits = 10 - len(phone_prefix)
    rows: list[dict[str, object]] = []
    for n in numbers:
        row: dict[str, object] = {
            "record_id": str(n),
            "phone_number": f"{phone_prefix}{n % 10**digits:0{digits}d}",
            "email": f"p{n}@example.org",
            "registration_complete": "2",
            "pipeline_status": status,
        }
        if status == "delivered":
            row["pipeline_sms_sid"] = f"SM{n:032x}"
        rows.append(row)
    import_rows(project, rows, overwrite=False, date_format="YMD", now=clock.local_naive())
