"""Shared fixtures for the simulator tests: small REDCap projects and running REDCap servers.

``redcap_sim(project, **kwargs)`` starts a :class:`RedcapSim` that is stopped when the test
ends; ``classic_project`` and ``longitudinal_project`` are fresh, small projects built from the
model classes (a new copy per test, so tests may change them freely); ``sim`` and ``long_sim``
are simulators serving them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest

from sandbox.clock import SimClock
from sandbox.redcap.model import Arm, Event, Field, Form, Project, Report, StoredRecord
from sandbox.redcap.server import RedcapSim

# helpers_records asserts in its import helpers: rewrite it so a failure shows both sides.
pytest.register_assert_rewrite("tests.sandbox.helpers_records")

SimFactory = Callable[..., RedcapSim]
# The SimClock's fixed start in these tests (server-local wall time).
START = datetime(2025, 3, 3, 9, 0, 0).astimezone()


@pytest.fixture
def sim_clock() -> SimClock:
    """A frozen clock: time moves only when a test advances it."""
    clock = SimClock()
    clock.freeze(START)
    return clock


@pytest.fixture
def redcap_sim(sim_clock: SimClock) -> Iterator[SimFactory]:
    """Start REDCap simulators for a test; every one is stopped afterwards."""
    started: list[RedcapSim] = []

    def start(project: Project, **kwargs: Any) -> RedcapSim:
        kwargs.setdefault("clock", sim_clock)
        sim = RedcapSim(project, **kwargs)
        started.append(sim)
        return sim.start()

    try:
        yield start
    finally:
        for sim in started:
            sim.stop()


def build_classic_project() -> Project:
    """A classic project: registration form, a survey, a checkbox, a descriptive and a file."""
    fields = [
        Field("record_id", "registration", "text", field_label="Record ID"),
        Field("first_name", "registration", "text", field_label="First name"),
        Field("email", "registration", "text", field_label="Email", identifier="y"),
        Field(
            "age",
            "registration",
            "text",
            field_label="Age",
            text_validation_type_or_show_slider_number="integer",
        ),
        Field(
            "race",
            "registration",
            "checkbox",
            field_label="Race",
            select_choices_or_calculations="1, White | 2, Black | 3, Other",
        ),
        Field("intro", "registration", "descriptive", field_label="<b>Welcome</b>"),
        Field("consent_doc", "registration", "file", field_label="Consent form"),
        Field(
            "pain",
            "followup",
            "slider",
            field_label="Pain",
            select_choices_or_calculations="None | Some | Worst",
        ),
        Field("feedback", "followup", "notes", field_label="Feedback"),
    ]
    forms = [
        Form("registration", "Registration"),
        Form("followup", "Follow-up", survey_title="How are you?"),
    ]
    project = Project(
        project_id=101,
        title="Relay test (classic)",
        fields=fields,
        forms=forms,
        survey_email_field="email",
        reports={
            7: Report(7, "Adults", ["record_id", "age"], "[age] >= 18"),
        },
    )
    _store(project, "1", ("", "", None), first_name="Ann", email="ann@example.org", age="34",
           race___2="1", registration_complete="2", pain="40", followup_complete="2")  # fmt: skip
    _store(project, "2", ("", "", None), first_name="Bo", age="17", registration_complete="0")
    _store(project, "10", ("", "", None), first_name="Cy", age="52", registration_complete="1",
           feedback="so-so", followup_complete="0")  # fmt: skip
    return project


def build_longitudinal_project() -> Project:
    """Two arms, three events, a repeating survey (``diary``) in week 1."""
    fields = [
        Field("study_id", "demographics", "text", field_label="Study ID"),
        Field("dob", "demographics", "text", text_validation_type_or_show_slider_number="date_ymd"),
        Field("mood", "diary", "radio", select_choices_or_calculations="1, Good | 2, Bad"),
        Field("weight", "visit", "text", text_validation_type_or_show_slider_number="number"),
    ]
    forms = [
        Form("demographics", "Demographics"),
        Form("diary", "Diary", survey_title="Daily diary"),
        Form("visit", "Visit"),
    ]
    project = Project(
        project_id=202,
        title="Relay test (longitudinal)",
        fields=fields,
        forms=forms,
        arms=[Arm(1, "Drug A"), Arm(2, "Drug B")],
        events=[
            Event("baseline_arm_1", "Baseline", 1, 41),
            Event("week_1_arm_1", "Week 1", 1, 42, custom_label="W1"),
            Event("baseline_arm_2", "Baseline", 2, 43),
        ],
        form_events={
            "baseline_arm_1": ["demographics", "visit"],
            "week_1_arm_1": ["diary", "visit"],
            "baseline_arm_2": ["demographics"],
        },
        repeating_forms={("week_1_arm_1", "diary")},
        repeating_labels={("week_1_arm_1", "diary"): "[mood]"},
    )
    _store(project, "1", ("baseline_arm_1", "", None), dob="1990-01-02", demographics_complete="2")
    _store(project, "1", ("week_1_arm_1", "diary", 1), mood="1", diary_complete="2")
    _store(project, "1", ("week_1_arm_1", "diary", 2), mood="2", diary_complete="0")
    _store(project, "2", ("baseline_arm_2", "", None), dob="1985-05-06", demographics_complete="0")
    return project


def _store(project: Project, record: str, slot: tuple[str, str, int | None], **values: str) -> None:
    """Put values straight into the store, as if imported before the test began."""
    stored = project.records.setdefault(record, StoredRecord(record))
    base = (slot[0], "", None) if slot[1] else slot
    stored.slots.setdefault(base, {})[project.record_id_field] = record
    stored.slots.setdefault(slot, {}).update(values)
    stored.changed_at.append(datetime(2025, 3, 1, 12, 0, 0))


@pytest.fixture
def classic_project() -> Project:
    return build_classic_project()


@pytest.fixture
def longitudinal_project() -> Project:
    return build_longitudinal_project()


@pytest.fixture
def sim(redcap_sim: SimFactory, classic_project: Project) -> RedcapSim:
    return redcap_sim(classic_project)


@pytest.fixture
def long_sim(redcap_sim: SimFactory, longitudinal_project: Project) -> RedcapSim:
    return redcap_sim(longitudinal_project)
