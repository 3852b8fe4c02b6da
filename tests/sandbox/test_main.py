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
    """The demo ends with messages delivered, one undelivered and one skipped (README)."""
    done = subprocess.run(
        [sys.executable, "-m", "sandbox.demo_cli"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    lines = {
        line.split()[0]: line.split()[-1]
        for line in done.stdout.splitlines()
        if line.startswith("  ") and len(line.split()) == 2
    }
    assert lines["delivered"] == "6" and lines["undelivered"] == "1"
    assert lines["skipped"] == "1" and lines["baseline"] == "3"


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
