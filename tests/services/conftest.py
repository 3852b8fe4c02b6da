"""Fixtures for the service tests: both simulators on 127.0.0.1, settings, contexts, helpers.

The services talk real HTTP to the simulators through PyCap and the twilio SDK. Only the
services' clock is replaced (ManualClock); the simulators share one SimClock.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from redcap.project import Project as PyCapProject

from common.clock import ManualClock
from common.settings import Settings
from messaging.context import Context, build_context
from messaging.rules_file import load_study
from sandbox.clock import SimClock
from sandbox.envfile import write_env
from sandbox.microsoft.mailbox import SentMail
from sandbox.microsoft.server import MicrosoftSim
from sandbox.participants import Participant, register
from sandbox.redcap.demo import build_demo_longitudinal_project, build_demo_project
from sandbox.redcap.importer import import_rows
from sandbox.redcap.model import Project
from sandbox.redcap.server import RedcapSim
from sandbox.rehearsal import add_rule_fields
from sandbox.session import Sandbox
from sandbox.twilio.server import TwilioSim

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2026, 3, 2, 12, 0, 0, tzinfo=UTC)  # a Monday, noon UTC


@dataclass
class Rig:
    """A running sandbox plus what the tests need to drive the services against it."""

    redcap: RedcapSim
    twilio: TwilioSim
    microsoft: MicrosoftSim
    project: Project
    sim_clock: SimClock
    env: dict[str, str]
    tmp: Path
    clock: ManualClock = field(default_factory=lambda: ManualClock(START))

    def settings(self, **overrides: str) -> Settings:
        return Settings.from_env({**self.env, **overrides})

    def ctx(self, needs_twilio: bool = True, **overrides: str) -> Context:
        """A context as the sender builds it (``needs_twilio``: Twilio and Graph as the rules
        need them), or as the detector does."""
        return build_context(
            self.settings(**overrides),
            needs_twilio=needs_twilio,
            needs_survey=needs_twilio,
            needs_mail=needs_twilio,
            clock=self.clock,
        )

    def advance(self, seconds: float) -> None:
        """Time passes for the services and for the simulators alike."""
        self.clock.advance(seconds)
        self.sim_clock.advance(seconds)

    def register(self, record_id: str, phone: str = "(617) 555-0100", **kwargs: str) -> None:
        register(self.project, self.sim_clock, Participant(record_id, phone, "Ada"), **kwargs)

    def set(self, record_id: str, **values: str) -> None:
        """Store ``values`` on a record as staff typing in REDCap would (blank erases)."""
        row: dict[str, object] = {"record_id": record_id, **values}
        if self.project.is_longitudinal:
            row["redcap_event_name"] = self.env["REDCAP_EVENT"]
        import_rows(
            self.project, [row], overwrite=True, date_format="YMD", now=self.sim_clock.local_naive()
        )

    def values(self, record_id: str) -> dict[str, str]:
        """What REDCap holds for a record in the pipeline's event (all slots merged)."""
        with self.project.lock:
            merged: dict[str, str] = {}
            for slot, values in self.project.records[record_id].slots.items():
                if not self.project.is_longitudinal or slot[0] == self.env.get("REDCAP_EVENT"):
                    merged.update(values)
            return merged

    def status(self, record_id: str) -> str:
        return self.values(record_id).get("pipeline_status", "")

    def redcap_link(self, record_id: str) -> str:
        """The record's survey link, asked of REDCap through PyCap."""
        pycap = PyCapProject(self.redcap.url, self.redcap.token)
        event = self.env.get("REDCAP_EVENT") or None
        return str(pycap.export_survey_link(record_id, self.env["SURVEY_INSTRUMENT"], event=event))

    def redcap_link_in(self, record_id: str, event: str) -> str:
        """The record's survey link in ``event``, asked of REDCap through PyCap."""
        pycap = PyCapProject(self.redcap.url, self.redcap.token)
        return str(pycap.export_survey_link(record_id, self.env["SURVEY_INSTRUMENT"], event=event))

    def sent_to(self, e164: str) -> list[dict[str, object]]:
        return self.twilio.sent(to=e164)

    def mailed_to(self, address: str) -> list[SentMail]:
        """Every mail the Microsoft simulator's sendMail accepted for ``address``."""
        return self.microsoft.sent(to=address)

    def env_file(self, **overrides: str) -> Path:
        path = self.tmp / ".env.test"
        write_env(path, {**self.env, **overrides})
        return path

    def run(
        self, module: str, *args: str, timeout: float = 60, **overrides: str
    ) -> subprocess.CompletedProcess[str]:
        """Run ``python -m <module> --env-file ... args`` as a user would; bounded."""
        return subprocess.run(
            [sys.executable, "-m", module, "--env-file", str(self.env_file(**overrides)), *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=clean_env(),
        )


def clean_env() -> dict[str, str]:
    """The test process's environment without any real REDCap/Twilio settings leaking in."""
    keep = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            ("REDCAP_", "TWILIO_", "SMS_", "PHONE_", "DRY_RUN", "GRAPH_", "EMAIL_", "ALERT_")
        )
    }
    keep["PYTHONPATH"] = str(ROOT)
    return keep


def at_start() -> SimClock:
    """A simulators' clock frozen at START, moved only by :meth:`Rig.advance`: Twilio's times
    (the SMS accepted-at times REDCap records) then match the services' ManualClock."""
    clock = SimClock(UTC, START)
    clock.freeze()
    return clock


def start_rig(
    project: Project, tmp: Path, *, sim_clock: SimClock | None = None, **overrides: str
) -> Iterator[Rig]:
    """The sandbox serving ``project``. The simulators keep real time unless ``sim_clock`` is
    given (tests comparing Twilio's times with the services' ManualClock pass one at START;
    tests running real service processes keep real time)."""
    with Sandbox(project, clock=sim_clock) as box:
        defaults = {
            "LOCK_DIR": str(tmp),
            "SMS_DELAY_MINUTES": "1",
            "SMS_MAX_PER_SECOND": "1",
            # Tests send fast on a manual clock; the simulator's rate limiter is not what they test.
            "REDCAP_MAX_PER_MINUTE": "100000",
            "HTTP_TIMEOUT_SECONDS": "5",
        }
        env = box.settings(**{**defaults, **overrides})
        yield Rig(box.redcap, box.twilio, box.microsoft, project, box.clock, env, tmp)


def start_rules_rig(
    tmp: Path,
    text: str,
    *,
    sim_clock: SimClock | None = None,
    project: Project | None = None,
    **overrides: str,
) -> Iterator[Rig]:
    """A rig whose RULES_FILE holds ``text``, on the demo project (or ``project``) with those
    rules' fields (and the conversation log's, made repeating, with CONVERSATION_LOG=1; the
    line types' field with TWILIO_LOOKUP=1)."""
    path = tmp / "rules.toml"
    path.write_text(text, encoding="utf-8")
    alerts = bool(overrides.get("ALERT_EMAIL_TO"))  # then every rule has R_alerted_at
    event = overrides.get("REDCAP_EVENT", "")
    rules = load_study(path, default_event=event, alerts=alerts)
    project = add_rule_fields(
        project or build_demo_project(),
        rules,
        conversation_log=overrides.get("CONVERSATION_LOG") == "1",
        line_types=overrides.get("TWILIO_LOOKUP") == "1",
        event=event,
    )
    yield from start_rig(project, tmp, sim_clock=sim_clock, RULES_FILE=str(path), **overrides)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    yield from start_rig(build_demo_project(), tmp_path)


@pytest.fixture
def timed_rig(tmp_path: Path) -> Iterator[Rig]:
    """The demo project, the simulators on the services' time (:func:`at_start`)."""
    yield from start_rig(build_demo_project(), tmp_path, sim_clock=at_start())


@pytest.fixture
def long_rig(tmp_path: Path) -> Iterator[Rig]:
    yield from start_rig(build_demo_longitudinal_project(), tmp_path)
