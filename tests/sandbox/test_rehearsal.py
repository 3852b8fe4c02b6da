"""``python -m sandbox --env-file .env``: rehearsing on each reference project, study settings.

Every reference project gets a study-style settings file naming fields it really has (``STUDIES``).
Where a project has no phone-like field, the phone goes in its one free-text field
(arm-single-longitudinal: ``weight``; checkboxes-1: the notes field ``desired_result``;
repeating-instruments: ``age``), as a coordinator rehearsing there would; with the default
PHONE_FIELDS such a project is refused in one line (``REFUSALS``). Only the ``survey`` project
exports its surveys: for the others the instrument named by SURVEY_INSTRUMENT is enabled as a
survey in the rehearsal copy, with a one-line note.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from dotenv import dotenv_values
from redcap.project import Project as PyCapProject

from sandbox.httpserver import wait_until
from sandbox.redcap.odm import load_project_xml
from tests.processes import finish
from tests.reference import REDCAP_PROJECTS, redcap_project

ROOT = Path(__file__).resolve().parents[2]
# What a study's own .env holds for production: none of it may reach .env.sandbox.
PRODUCTION = {
    "REDCAP_API_URL": "https://redcap.example.org/api/",
    "REDCAP_API_TOKEN": "5F" * 16,
    "REDCAP_PROJECT_ID": "4242",
    "TWILIO_ACCOUNT_SID": "AC" + "ab" * 16,
    "TWILIO_AUTH_TOKEN": "production-auth-token",
    "TWILIO_FROM_NUMBER": "+16175550199",
    "TWILIO_MESSAGING_SERVICE_SID": "MG" + "cd" * 16,
    "LOCK_DIR": "/run/redcap-relay",
}
# Settings a study chose that the rehearsal must keep as written.
KEPT = {
    "TIMEZONE": "America/Chicago",
    "SMS_DELAY_MINUTES": "0.5",
    "POLL_INTERVAL_SECONDS": "3",
    "QUIET_HOURS": "21:00-08:00",
}


@dataclass(frozen=True)
class Study:
    """One reference project's settings: the fields a coordinator would name there."""

    registration_field: str
    registration_value: str
    phone_fields: str
    phone_field: str  # the first of phone_fields that exists: where the phone must land
    survey: str
    event: str = ""
    template: str = "Thanks for registering. Next survey: {survey_link}"
    enables_survey: bool = True  # the export does not mark the instrument as a survey
    extra: Mapping[str, str] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        return {
            **PRODUCTION,
            **KEPT,
            "REDCAP_EVENT": self.event,
            "REGISTRATION_COMPLETE_FIELD": self.registration_field,
            "REGISTRATION_COMPLETE_VALUE": self.registration_value,
            "PHONE_FIELDS": self.phone_fields,
            "SURVEY_INSTRUMENT": self.survey,
            "SMS_TEMPLATE": self.template,
            **self.extra,
        }


STUDIES = {
    "arm-single-longitudinal": Study(
        "collection_complete", "2", "weight", "weight", "collection", event="intake_arm_1"
    ),
    "checkboxes-1": Study("form_1_complete", "2", "desired_result", "desired_result", "form_2"),
    "clinical-trial-1": Study(
        "demographics_complete",
        "2",
        "phone",
        "phone",
        "demographics",
        template="Hi {field:name_first}, next survey: {survey_link}",
    ),
    "longitudinal": Study(
        "ec_confirmed",
        "1",
        "mobile,telephone_1,ec_phone",
        "telephone_1",
        "contact_info",
        event="enrollment_arm_1",
        template="Hi {field:first_name}: {survey_link}",
    ),
    "repeating-instruments": Study("demographics_complete", "1", "age", "age", "demographics"),
    "simple": Study(
        "demographics_complete",
        "2",
        "cell,telephone",
        "telephone",
        "health",
        extra={"DRY_RUN": "1"},
    ),
    "survey": Study(
        "participant_info_survey_complete",
        "2",
        "telephone_1",
        "telephone_1",
        "participant_morale_questionnaire",
        enables_survey=False,
    ),
    "validation-types-1": Study("f_yes_no", "1", "v_phone", "v_phone", "form_1"),
}


def admin(env_file: Path, command: str) -> subprocess.CompletedProcess[str]:
    """``admin COMMAND`` against the rehearsal, as its user would run it."""
    return subprocess.run(
        [sys.executable, "-m", "services.admin", command, "--env-file", str(env_file)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )


def write_env(path: Path, values: Mapping[str, str]) -> Path:
    path.write_text("".join(f'{key}="{value}"\n' for key, value in values.items()))
    path.chmod(0o600)  # a study's settings file is private, or the services refuse it
    return path


def sandbox(
    tmp_path: Path, name: str, *args: str, env: Mapping[str, str] | None = None
) -> subprocess.Popen[str]:
    """``python -m sandbox`` on reference project ``name``, writing tmp_path/.env.sandbox."""
    xml = str(redcap_project(name) / "project.xml")
    argv = ["--project-xml", xml, "--env-out", str(tmp_path / ".env.sandbox"), *args]
    return subprocess.Popen(
        [sys.executable, "-m", "sandbox", *argv],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def stop(proc: subprocess.Popen[str]) -> tuple[int, str]:
    """SIGTERM, bounded wait, kill as a last resort; the exit code and stderr."""
    code, _, err = finish(proc, terminate=True, timeout=15)
    return code, err


def test_every_study_is_in_the_table() -> None:
    """Each reference project has its study settings here (a new one cannot be forgotten)."""
    assert sorted(STUDIES) == sorted(REDCAP_PROJECTS)


@pytest.mark.parametrize("name", sorted(STUDIES))
def test_rehearsal_uses_the_study_settings(tmp_path: Path, name: str) -> None:
    """The study's settings are kept, production's URLs and credentials replaced, admin check
    passes, and simulated participants get the configured value and a phone in the configured
    field (in the configured event)."""
    study = STUDIES[name]
    env_out = tmp_path / ".env.sandbox"
    env_file = write_env(tmp_path / ".env", study.env())
    proc = sandbox(
        tmp_path,
        name,
        "--env-file",
        str(env_file),
        "--simulate",
        "2",
        "--simulate-interval",
        "0.05",
    )
    try:
        assert wait_until(lambda: env_out.exists() or proc.poll() is not None, timeout=20)
        assert env_out.exists(), proc.communicate(timeout=5)[1]
        written = dotenv_values(env_out)
        for key, value in {**KEPT, **study.extra, "PHONE_FIELDS": study.phone_fields}.items():
            assert written[key] == value
        # Anywhere in the file, whole: a short value (the project id, 4242) is looked for as a
        # setting's whole value, since a random port or token may hold those digits.
        text, values = env_out.read_text(), set(written.values())
        leaked = [
            key
            for key, value in PRODUCTION.items()
            if (value in text if len(value) >= 8 else value in values)
        ]
        assert leaked == []
        assert written["TWILIO_MESSAGING_SERVICE_SID"] == ""

        rows = registered(written, study, existing_records(name))
        assert wait_until(lambda: len(rows()) == 1, timeout=15)  # the one before go-live
        check = admin(env_out, "check")
        assert check.returncode == 0, check.stdout
        assert admin(env_out, "baseline").returncode == 0  # go-live: then the two register
        assert wait_until(lambda: len(rows()) == 3, timeout=15)
        for row in rows():
            assert row[study.registration_field] == study.registration_value
            assert re.sub(r"\D", "", row[study.phone_field])[-10:-2] == "61755501"
    finally:
        code, err = stop(proc)
    assert code == 0 and "Traceback" not in err
    notes = [line for line in err.splitlines() if "enabled it for the rehearsal" in line]
    assert len(notes) == (1 if study.enables_survey else 0)


# A study's own rules file for the "simple" project: the welcome link and a reminder that the
# survey's completion cancels, in its own fields (which the project does not have yet).
SIMPLE_RULES = """
[[rule]]
name = "welcome"
when = "[demographics_complete] = '2'"
delay_minutes = 60
survey = "health"
template = "Hi {field:name_first}, your survey: {survey_link}"

[[rule]]
name = "reminder"
when = "[demographics_complete] = '2'"
delay_minutes = 2880
survey = "health"
stop_when = "[health_complete] = '2'"
template = "A reminder: your survey is waiting at {survey_link}"
"""


def test_rehearsal_with_a_rules_file_adds_the_rules_fields(tmp_path: Path) -> None:
    """With RULES_FILE in the study's settings the rehearsal copy gets every rule's fields (as
    uploading admin instrument's CSV would, with one note saying so; with TWILIO_LOOKUP=1 also
    relay_line_types) and admin check passes."""
    rules = tmp_path / "rules.toml"
    rules.write_text(SIMPLE_RULES, encoding="utf-8")
    env_out = tmp_path / ".env.sandbox"
    study = {**STUDIES["simple"].env(), "RULES_FILE": str(rules), "TWILIO_LOOKUP": "1"}
    env_file = write_env(tmp_path / ".env", study)
    proc = sandbox(tmp_path, "simple", "--env-file", str(env_file), "--simulate", "1")
    try:
        assert wait_until(lambda: env_out.exists() or proc.poll() is not None, timeout=20)
        assert env_out.exists(), proc.communicate(timeout=5)[1]
        written = dotenv_values(env_out)
        assert written["RULES_FILE"] == str(rules)
        project = PyCapProject(written["REDCAP_API_URL"], written["REDCAP_API_TOKEN"])
        for rule in ("welcome", "reminder"):
            assert {f"{rule}_status", f"{rule}_sms_ref"} <= set(project.field_names)
        assert "relay_line_types" in project.field_names
        check = subprocess.run(
            [sys.executable, "-m", "services.admin", "check", "--env-file", str(env_out)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert check.returncode == 0, check.stdout
        assert "rule welcome:" in check.stdout and "rule reminder:" in check.stdout
        assert "[ok  ] Twilio Lookup:" in check.stdout
    finally:
        code, err = stop(proc)
    assert code == 0 and "Traceback" not in err
    added = [line for line in err.splitlines() if "added the fields of rule(s)" in line]
    assert len(added) == 1 and "welcome, reminder" in added[0]
    assert "Twilio Lookup's relay_line_types" in added[0]
    assert sum("enabled it for the rehearsal" in line for line in err.splitlines()) == 1


def existing_records(name: str) -> set[str]:
    """The record ids of the export itself (the simulated ones come after them)."""
    return set(load_project_xml(redcap_project(name) / "project.xml").records)


def registered(
    settings: Mapping[str, str | None], study: Study, existing: set[str]
) -> Callable[[], list[dict[str, str]]]:
    """Reads the simulated participants' rows through PyCap, in the study's event."""
    project = PyCapProject(settings["REDCAP_API_URL"], settings["REDCAP_API_TOKEN"])
    record_id = project.def_field

    def rows() -> list[dict[str, str]]:
        got = project.export_records(
            fields=[record_id, study.registration_field, study.phone_field],
            events=[study.event] if study.event else None,
        )
        return [row for row in got if row[record_id] not in existing]

    return rows


# (project, changes to its study settings, the setting the refusal must name, exit code)
REFUSALS = [
    (
        "simple",
        {"REGISTRATION_COMPLETE_FIELD": "consent_complete"},
        "REGISTRATION_COMPLETE_FIELD",
        3,
    ),
    ("simple", {"REGISTRATION_COMPLETE_VALUE": "7"}, "REGISTRATION_COMPLETE_VALUE", 3),
    ("checkboxes-1", {"PHONE_FIELDS": ""}, "PHONE_FIELDS", 3),  # the defaults: none exists
    ("simple", {"PHONE_FIELDS": "dob"}, "PHONE_FIELDS", 3),  # a date field cannot hold one
    ("simple", {"SURVEY_INSTRUMENT": "exit_survey"}, "SURVEY_INSTRUMENT", 3),
    ("simple", {"SMS_TEMPLATE": "Hi {field:nickname}: {survey_link}"}, "SMS_TEMPLATE", 3),
    ("longitudinal", {"REDCAP_EVENT": ""}, "REDCAP_EVENT", 3),
    ("longitudinal", {"REDCAP_EVENT": "final_visit_arm_1"}, "REDCAP_EVENT", 3),
    ("simple", {"TIMEZONE": "Mars/Olympus"}, "TIMEZONE", 2),
    ("simple", {"SMS_DELAY_MINUTE": "5"}, "SMS_DELAY_MINUTE", 2),  # a typo is no setting
]


def run(tmp_path: Path, name: str, *args: str) -> tuple[int, str]:
    """``python -m sandbox`` expected to end by itself: its exit code and stderr."""
    code, _, err = finish(sandbox(tmp_path, name, *args), terminate=False, timeout=20)
    return code, err


@pytest.mark.parametrize(("name", "changes", "setting", "exit_code"), REFUSALS)
def test_what_the_project_lacks_is_one_line_naming_the_setting(
    tmp_path: Path, name: str, changes: dict[str, str], setting: str, exit_code: int
) -> None:
    """A setting the project cannot honour ends the sandbox before any simulation: one line
    naming it, exit 2 (settings) or 3 (project), no traceback, no .env.sandbox."""
    env_file = write_env(tmp_path / ".env", {**STUDIES[name].env(), **changes})
    code, err = run(tmp_path, name, "--env-file", str(env_file), "--simulate", "2")
    assert code == exit_code, err
    assert len(err.splitlines()) == 1 and err.startswith("sandbox: ") and setting in err
    assert "Traceback" not in err and not (tmp_path / ".env.sandbox").exists()


def test_demo_settings_on_a_study_project_refuse_to_simulate(tmp_path: Path) -> None:
    """Without --env-file, --simulate on a project lacking the demo's fields is one line that
    points to --env-file, not a dying simulation thread."""
    code, err = run(tmp_path, "simple", "--simulate", "3")
    assert code == 3 and len(err.splitlines()) == 1
    assert "REGISTRATION_COMPLETE_FIELD" in err and "--env-file" in err
    assert "Traceback" not in err


def test_the_study_settings_file_is_never_overwritten(tmp_path: Path) -> None:
    """--env-out naming the study's own file is refused and the file is left as it was."""
    env_file = write_env(tmp_path / ".env", STUDIES["simple"].env())
    before = env_file.read_text()
    code, err = run(tmp_path, "simple", "--env-file", str(env_file), "--env-out", str(env_file))
    assert code == 2 and "--env-out" in err
    assert env_file.read_text() == before


def test_production_settings_in_the_shell_are_warned_about(tmp_path: Path) -> None:
    """A REDCap token exported in the shell would win over .env.sandbox: one warning names it."""
    env_file = write_env(tmp_path / ".env", STUDIES["simple"].env())
    environ = {"PATH": "", "REDCAP_API_TOKEN": PRODUCTION["REDCAP_API_TOKEN"]}
    proc = sandbox(tmp_path, "simple", "--env-file", str(env_file), env=environ)
    try:
        assert wait_until(lambda: (tmp_path / ".env.sandbox").exists(), timeout=20)
    finally:
        code, err = stop(proc)
    assert code == 0
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "REDCAP_API_TOKEN" in warnings[0]
