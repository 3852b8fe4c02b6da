"""Simulated participants: registrations arriving in the REDCap simulator over time.

Used by ``python -m sandbox --simulate N`` and by ``make demo``. A participant "completes the
registration form" the way REDCap records it: one import of their answers with the form status
set to Complete (2), through the simulator's own import rules.
"""

from __future__ import annotations

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
    """Store one completed registration in the simulated project."""
    row: dict[str, object] = {
        project.record_id_field: person.record_id,
        phone_field: person.phone,
        complete_field: "2",
    }
    if project.field("first_name") is not None:
        row["first_name"] = person.first_name
    if project.field("email") is not None:
        row["email"] = f"participant{person.record_id}@example.org"
    if project.is_longitudinal:
        row["redcap_event_name"] = event or project.events[0].unique_name
    import_rows(project, [row], overwrite=False, date_format="YMD", now=clock.local_naive())


def simulate(
    project: Project,
    clock: SimClock,
    people: list[Participant],
    interval: float,
    stop: threading.Event,
    **kwargs: str,
) -> threading.Thread:
    """Register ``people`` one every ``interval`` seconds in a background thread."""

    def run() -> None:
        for person in people:
            if stop.wait(interval):
                return
            register(project, clock, person, **kwargs)

    thread = threading.Thread(target=run, name="simulated-participants", daemon=True)
    thread.start()
    return thread
