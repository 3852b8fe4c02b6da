"""``python -m sandbox`` and ``make demo`` as a person runs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from dotenv import dotenv_values
from redcap.project import Project as PyCapProject

from sandbox.httpserver import wait_until
from tests.processes import finish
from tests.reference import redcap_project

ROOT = Path(__file__).resolve().parents[2]


def start(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "sandbox", "--env-out", str(tmp_path / ".env.sandbox"), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop(proc: subprocess.Popen[str]) -> tuple[int, str]:
    code, out, _ = finish(proc, terminate=True, timeout=20)
    return code, out


def test_sandbox_serves_a_study_project_xml_and_writes_settings(tmp_path: Path) -> None:
    """--project-xml loads a real REDCap export; .env.sandbox points PyCap at it; SIGTERM stops."""
    env_file = tmp_path / ".env.sandbox"
    proc = start(tmp_path, "--project-xml", str(redcap_project("longitudinal") / "project.xml"))
    try:
        assert wait_until(env_file.exists, timeout=30)
        settings = dotenv_values(env_file)
        project = PyCapProject(settings["REDCAP_API_URL"], settings["REDCAP_API_TOKEN"])
        assert project.export_project_info()["is_longitudinal"] == 1
        assert "pipeline_status" in project.field_names  # added for the rehearsal
        assert project.export_records(fields=["study_id"])
        assert settings["REDCAP_EVENT"] and settings["TWILIO_API_BASE_URL"].startswith("http://")
    finally:
        code, out = stop(proc)
    assert code == 0
    assert "REDCap simulator: http://127.0.0.1:" in out and "sandbox stopped" in out


def test_bad_project_file_is_one_line_exit_2(tmp_path: Path) -> None:
    """A broken study file is refused with one line naming it, no traceback."""
    broken = tmp_path / "dict.csv"
    broken.write_text("not,a,dictionary\n1,2,3\n")
    done = subprocess.run(
        [sys.executable, "-m", "sandbox", "--dictionary", str(broken)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "dict.csv" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.timeout(150)
def test_make_demo_runs_the_pipeline_to_delivery() -> None:
    """The demo's three rules end as a user reads them in admin status (README): welcome
    delivered but for one undelivered, one skipped and one sent by e-mail; the reminder
    cancelled for the four who answered and delivered to the rest; both visit reminders
    delivered, one in Spanish; the mailbox holds the welcome mail and a staff digest, listed
    with masked recipients (no address in full anywhere)."""
    done = subprocess.run(
        [sys.executable, "-m", "sandbox.demo_cli"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=140,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    rules = funnels(done.stdout)
    assert list(rules) == ["welcome", "reminder", "visit"]
    welcome, reminder, visit = rules["welcome"], rules["reminder"], rules["visit"]
    assert (welcome["delivered"], welcome["undelivered"], welcome["sent_email"]) == ("6", "1", "1")
    assert (welcome["skipped"], welcome["baseline"]) == ("1", "3")
    assert "sent: 8 (SMS 7, e-mail 1)" in done.stdout
    assert (reminder["cancelled"], reminder["delivered"], reminder["baseline"]) == ("4", "3", "3")
    assert (reminder["undelivered"], reminder["skipped"]) == ("1", "1")
    assert (visit["delivered"], visit["(none)"]) == ("2", "10")
    assert "Recordatorio: su visita es el" in done.stdout
    assert "participant mail to p***@e***.org: 'Your study survey'" in done.stdout
    assert "staff digest     to c***@s***.org" in done.stdout
    output = done.stdout + done.stderr
    assert "participant12@example.org" not in output and "coordinator@" not in output


def funnels(out: str) -> dict[str, dict[str, str]]:
    """``admin status`` as printed: rule name -> its "  status  count" lines."""
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in out.splitlines():
        if line.startswith("rule ") and line.endswith(":"):
            current = sections.setdefault(line.removeprefix("rule ").removesuffix(":"), {})
        elif current is not None and line.startswith("  ") and len(line.split()) == 2:
            status, count = line.split()
            current[status] = count
    return sections


def test_simulate_registers_participants_over_time(tmp_path: Path) -> None:
    """--simulate N: N completed registrations appear in the simulated REDCap."""
    env_file = tmp_path / ".env.sandbox"
    proc = start(tmp_path, "--simulate", "3", "--simulate-interval", "0.2")
    try:
        assert wait_until(env_file.exists, timeout=30)
        settings = dotenv_values(env_file)
        project = PyCapProject(settings["REDCAP_API_URL"], settings["REDCAP_API_TOKEN"])

        def registered() -> int:
            rows = project.export_records(fields=["record_id", "registration_complete"])
            return sum(row["registration_complete"] == "2" for row in rows)

        assert wait_until(lambda: registered() == 3, timeout=20)
    finally:
        code, _ = stop(proc)
    assert code == 0


def test_the_settings_file_is_private_and_whole(tmp_path: Path) -> None:
    """.env.sandbox holds tokens: only its owner may read it, and it appears complete at once
    (written aside and renamed), so nothing waiting for it reads half a file."""
    from sandbox.envfile import write_env

    path = tmp_path / ".env.sandbox"
    write_env(path, {"REDCAP_API_TOKEN": "0" * 32, "TWILIO_AUTH_TOKEN": 'se"cret'})
    assert path.stat().st_mode & 0o777 == 0o600
    assert dotenv_values(path) == {"REDCAP_API_TOKEN": "0" * 32, "TWILIO_AUTH_TOKEN": 'se"cret'}
    assert list(tmp_path.iterdir()) == [path]
