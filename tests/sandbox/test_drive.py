"""Driving a running rehearsal from another terminal: ``python -m sandbox set``, ``sent`` and
``advance``, against the simulators through their APIs, with the settings the sandbox wrote."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from common.clock import ClockFile, clock_for
from common.graph_client import GraphMailer
from common.twilio_client import SmsGateway
from sandbox import drive
from sandbox.__main__ import main
from sandbox.envfile import write_env
from sandbox.redcap.demo import build_demo_project
from sandbox.session import Sandbox


@dataclass
class Running:
    box: Sandbox
    env_file: Path

    def run(self, command: str, *args: str) -> int:
        return main([command, "--env-file", str(self.env_file), *args])

    def values(self, record: str) -> dict[str, str]:
        with self.box.project.lock:
            merged: dict[str, str] = {}
            for slot in self.box.project.records[record].slots.values():
                merged.update(slot)
            return merged


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    """The demo project in a sandbox with its rehearsal clock, and the .env.sandbox it wrote."""
    clock = ClockFile(tmp_path / ".env.sandbox.clock")
    clock.start()
    with Sandbox(build_demo_project(), clock_file=clock) as box:
        env_file = tmp_path / ".env.sandbox"
        write_env(env_file, box.settings(LOCK_DIR=str(tmp_path)))
        yield Running(box, env_file)


def test_set_imports_the_fields_as_redcap_would(
    running: Running, capsys: pytest.CaptureFixture[str]
) -> None:
    """A new record with --new; then only the fields named change, and an empty value erases
    one; what REDCap holds is said back."""
    assert running.run("set", "--record", "1", "--new", "first_name=Ada", "language=2") == 0
    assert capsys.readouterr().out == "record 1: first_name = 'Ada', language = '2'\n"
    assert running.run("set", "--record", "1", "language=", "email=ada@example.org") == 0
    values = running.values("1")
    assert values["first_name"] == "Ada" and "language" not in values
    assert values["email"] == "ada@example.org"


def test_set_takes_times_relative_to_the_rehearsals_clock(running: Running) -> None:
    """+2d@10:00 on a date-time field is two sandbox days ahead at 10:00, as the field stores it."""
    assert running.run("set", "--record", "1", "--new", "visit_datetime=+2d@10:00") == 0
    tz = drive.rehearsal_settings(running.env_file).timezone
    day = (running.box.clock.now() + timedelta(days=2)).astimezone(tz)
    assert running.values("1")["visit_datetime"] == f"{day:%Y-%m-%d} 10:00"


@pytest.mark.parametrize(
    ("args", "code", "said"),
    [
        (["--record", "7", "language=1"], 2, "record 7 is not in the project; add --new"),
        (
            ["--record", "1", "--new", "languge=1"],
            2,
            "languge is not a field of this project; did you mean language?",
        ),
        (["--record", "1", "--new", "language"], 2, "'language': write FIELD=VALUE"),
        (["--record", "1", "--new", "language=7"], 1, "REDCap refused it: record 1: language:"),
        (["--record", "1", "--new", "visit_datetime=soon"], 1, "visit_datetime: Invalid datetime"),
    ],
)
def test_set_refuses_what_redcap_would_refuse_in_one_line(
    running: Running, capsys: pytest.CaptureFixture[str], args: list[str], code: int, said: str
) -> None:
    """A record that is not there, a field the project lacks (with the likely one), a value
    REDCap's import refuses: one line, exit 2 (the command) or 1 (REDCap's refusal), nothing
    stored."""
    assert running.run("set", *args) == code
    err = capsys.readouterr().err
    assert said in err and len(err.splitlines()) == 1 and err.startswith("sandbox set: ")
    assert "1" not in running.box.project.records or "language" not in running.values("1")


def test_advance_moves_the_simulators_and_the_services_clock(
    running: Running, capsys: pytest.CaptureFixture[str]
) -> None:
    """advance 2d: the simulators' clock (REDCap's 'now', Twilio's dates) is two days on, as
    a service reading SANDBOX_CLOCK_FILE sees it; a duration without a unit is refused."""
    before = running.box.clock.now()
    assert running.run("advance", "2d") == 0
    assert capsys.readouterr().out.startswith("sandbox time is now ")
    moved = (running.box.clock.now() - before).total_seconds()
    assert 2 * 86400 <= moved < 2 * 86400 + 5
    settings = drive.rehearsal_settings(running.env_file)
    service = clock_for(settings.timezone, settings.sandbox_clock_file).now()
    assert abs((service - running.box.clock.now()).total_seconds()) < 1
    assert running.run("advance", "48") == 2
    assert "not a duration; write a number and a unit" in capsys.readouterr().err


def test_sent_shows_every_text_and_mail_in_full(
    running: Running, capsys: pytest.CaptureFixture[str]
) -> None:
    """What the simulators took, through their APIs: each text's number, status and body, each
    mail's address, subject and text; Twilio's own keyword answers said to be Twilio's."""
    settings = drive.rehearsal_settings(running.env_file)
    SmsGateway.from_settings(settings).send("+16175550101", "Hi Ada, your survey: https://x.test/s")
    mailer = GraphMailer.from_settings(settings)
    try:
        mailer.send("bo@example.org", "Your survey", "Hi Bo,\n\nyour survey.", message_id="m1")
    finally:
        mailer.close()
    running.box.twilio.inject_inbound("+16175550101", running.box.twilio.from_number, "STOP")
    assert running.run("sent") == 0
    out = capsys.readouterr().out
    assert "to +16175550101" in out and "    Hi Ada, your survey: https://x.test/s" in out
    assert "Twilio's own answer to a keyword  to +16175550101" in out
    assert "to bo@example.org  subject 'Your survey'" in out
    assert "    Hi Bo,\n\n    your survey." in out


def test_the_commands_refuse_settings_that_are_not_a_rehearsals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No .env.sandbox, or one naming a real REDCap: one line, exit 2, nothing contacted."""
    assert main(["sent", "--env-file", str(tmp_path / "missing")]) == 2
    assert "not found; start python -m sandbox first" in capsys.readouterr().err
    real = tmp_path / ".env.real"
    write_env(
        real,
        {
            "REDCAP_API_URL": "https://redcap.example.org/api/",
            "REDCAP_API_TOKEN": "0" * 32,
            "REDCAP_PROJECT_ID": "1",
        },
    )
    assert main(["advance", "--env-file", str(real), "1h"]) == 2
    assert "REDCAP_API_URL in" in capsys.readouterr().err
