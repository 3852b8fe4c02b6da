"""Simulated participants: registrations arriving in the REDCap simulator over time.

Used by ``python -m sandbox --simulate N`` and by ``make demo``. A participant "completes the
registration form" the way REDCap records it: one import of their answers, through the
simulator's own import rules. :class:`Registration` says which fields that import fills: the
demo's, or the ones a study's settings name (``python -m sandbox --env-file .env``), and the
fields its rules read (``plausible``): names, an address, a visit two days ahead at 10:00, a
language code taken in turn from the rule's ``languages``, so every message renders as it will
for real.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sandbox.clock import SimClock
from sandbox.redcap.importer import import_rows
from sandbox.redcap.model import Field, Project

FIRST_NAMES = ("Ada", "Ben", "Chloe", "Dev", "Esi", "Farah", "Gus", "Hana", "Ivo", "Jun")
LAST_NAMES = ("Okafor", "Lindqvist", "Moreau", "Patel", "Mensah", "Haddad", "Novak", "Sato")
VISIT_IN = timedelta(days=2)  # a simulated visit's date: two days ahead, at VISIT_HOUR
VISIT_HOUR = 10


@dataclass(frozen=True)
class Participant:
    record_id: str
    phone: str
    first_name: str
    last_name: str = "Okafor"


@dataclass(frozen=True)
class Registration:
    """The fields one simulated registration fills, and the event it is stored in."""

    complete_field: str = "registration_complete"
    complete_value: str = "2"
    phone_field: str = "phone_number"
    event: str | None = None  # longitudinal projects: None means the first event
    demo_fields: bool = True  # also first_name and email where the project has them
    email_field: str = ""  # where an address goes (the first of EMAIL_FIELDS), if anywhere
    plausible: tuple[str, ...] = ()  # more fields to fill with plausible values (the rules')
    codes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # field -> codes in turn

    def row(
        self, project: Project, person: Participant, now: datetime | None = None
    ) -> dict[str, object]:
        """The import row for ``person``: only the fields named here, nothing else; ``now``
        (the simulators' time) places a simulated visit."""
        row: dict[str, object] = {
            project.record_id_field: person.record_id,
            self.complete_field: self.complete_value,
        }
        for name in self.plausible:
            item = project.field(name)
            value = plausible(item, person, self.codes.get(name, ()), now) if item else ""
            if value and self._holds(project, item):
                row[name] = value
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

    def _holds(self, project: Project, item: Field | None) -> bool:
        """The field can be filled in the registration's event (every field on classic
        projects)."""
        if item is None or not project.is_longitudinal:
            return item is not None
        event = self.event or project.events[0].unique_name
        return item.form_name in project.form_events.get(event, [])


def plausible(
    item: Field, person: Participant, codes: tuple[str, ...], now: datetime | None
) -> str:
    """A value a participant could have given ``item``, by its name, type and validation: a
    name, an address, a date or date-time two days ahead at 10:00, one of ``codes`` in turn (a
    language field), a choice's first code; "" where nothing sensible can be made up."""
    name, check = item.field_name.lower(), item.validation
    number = int(person.record_id) if person.record_id.isdigit() else 0
    if codes:
        return codes[number % len(codes)]
    if item.field_type in ("yesno", "truefalse"):
        return "1"
    if item.choices():
        return item.choices()[0][0]
    if check == "email":
        return f"participant{person.record_id}@example.org"
    if check.startswith(("date_", "datetime_")):
        visit = (now or datetime.now()) + VISIT_IN
        visit = visit.replace(hour=VISIT_HOUR, minute=0, second=0, microsecond=0)
        if check.startswith("date_"):
            return f"{visit:%Y-%m-%d}"
        return f"{visit:%Y-%m-%d %H:%M:%S}" if "seconds" in check else f"{visit:%Y-%m-%d %H:%M}"
    if check in ("integer", "number"):
        return "1"
    if check or item.field_type not in ("text", "notes"):
        return ""  # a time, a zip code, a slider...: nothing generic fits
    if "name" in name and any(word in name for word in ("last", "sur", "family")):
        return person.last_name
    if "name" in name and any(word in name for word in ("first", "given", "fname")):
        return person.first_name
    if "name" in name:
        return f"{person.first_name} {person.last_name}"
    return "Sample text"


def demo_cohort(count: int, start: int = 1) -> list[Participant]:
    """``count`` participants with numbers in the reserved 555-01xx range (delivered in the
    Twilio simulator), phones written the many ways people type them."""
    styles = ("(617) 555-{:04d}", "617-555-{:04d}", "+1 617 555 {:04d}", "617.555.{:04d}")
    people = []
    for i in range(count):
        n = start + i
        phone = styles[i % len(styles)].format(100 + n % 100)
        first, last = FIRST_NAMES[i % len(FIRST_NAMES)], LAST_NAMES[i % len(LAST_NAMES)]
        people.append(Participant(str(n), phone, first, last))
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
    now = clock.local_naive()
    rows = [registration.row(project, person, now) for person in people]
    import_rows(project, rows, overwrite=False, date_format="YMD", now=now)


def simulate(
    project: Project,
    clock: SimClock,
    people: list[Participant],
    interval: float,
    stop: threading.Event,
    registration: Registration | None = None,
    ready: Callable[[], bool] | None = None,
) -> threading.Thread:
    """Register ``people`` one every ``interval`` seconds in a background thread, once
    ``ready()`` (asked every second) says they may start."""
    plan = registration or Registration()

    def run() -> None:
        while ready is not None and not ready():
            if stop.wait(1.0):
                return
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
