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
    cancelled for the four who answered and delivered to the rest; the three visit reminders
    delivered, one in Spanish; the mailbox holds the welcome mail and a staff digest, listed
    with masked recipients (no address in full anywhere). Four services run, the reply poller
    among them: a NO and a Spanish YES land in REDCap as cancelled and confirmed, each with its
    auto-answer in the participant's language, delivered; a STOP opts its sender out and gets
    nothing from us; the output names meanings, never the numbers or the reply texts. The
    recruitment case: each eligible participant gets one study ID of their group (control
    HC-3000 on, patient 10200 on) and an e-mail invitation whose Bookings link carries it, the
    one not eligible a notice, and the weekly report lands in the mailbox, its enrollment per
    group printed."""
    done = subprocess.run(
        [sys.executable, "-m", "sandbox.demo_cli"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=140,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    rules = funnels(done.stdout)
    ids_rule = "study_id (study IDs in study_id)"
    assert list(rules) == ["welcome", "reminder", "visit", "invitation", "ineligible", ids_rule]
    assert (rules[ids_rule]["assigned"], rules[ids_rule]["(none)"]) == ("8", "4")
    welcome, reminder, visit = rules["welcome"], rules["reminder"], rules["visit"]
    assert (welcome["delivered"], welcome["undelivered"], welcome["sent_email"]) == ("6", "1", "1")
    assert (welcome["skipped"], welcome["baseline"]) == ("1", "3")
    assert "sent: 8 (SMS 7, e-mail 1)" in done.stdout
    assert (reminder["cancelled"], reminder["delivered"], reminder["baseline"]) == ("4", "3", "3")
    assert (reminder["undelivered"], reminder["skipped"]) == ("1", "1")
    assert (visit["delivered"], visit["(none)"]) == ("3", "9")
    assert "Recordatorio: su visita es el" in done.stdout
    assert "participant mail to p***@e***.org: 'Your study survey'" in done.stdout
    assert "staff digest     to c***@s***.org" in done.stdout
    output = done.stdout + done.stderr
    assert "participant12@example.org" not in output and "coordinator@" not in output
    services = "registration_detector, sms_sender, delivery_checker, reply_poller"
    assert f"== starting the 4 services (loop mode): {services}" in done.stdout
    lines = [line.strip() for line in done.stdout.splitlines()]
    said = {line.split()[2]: line for line in lines if line.startswith("==   participant ")}
    assert said["4"].startswith("==   participant 4 rule visit: cancelled at ")
    assert said["5"].startswith("==   participant 5 rule visit: confirmed at ")
    assert said["6"].startswith("==   participant 6 rule visit: opted_out at ")
    assert said["6"].endswith("relay_opted_out = 1")
    answers = [line for line in lines if line.startswith("==     ")]
    assert answers == [
        "==     auto-answer delivered: Thank you for letting us know. The study team will call "
        "you to find another time.",
        "==     auto-answer delivered: Gracias, su visita queda confirmada. ¡Hasta pronto!",
        "==     no auto-answer from us (Twilio answers STOP itself): Twilio took 0 message(s) "
        "of ours for them since",
    ]
    assert "Twilio accepted 17 message(s)" in done.stdout  # 13, a third visit, two answers, staff's
    # The conversation: participant 4's question logged as unclear, staff's answer sent from
    # REDCap, the thread as REDCap exports it (the participant's texts left out), nobody waiting.
    thread = [line for line in lines if line.startswith("== thread #")]
    assert [line.split(" ", 5)[-1] for line in thread[-4:]] == [
        "from the participant, read as cancelled (2 characters)",
        "visit_answer, delivered: Thank you for letting us know. The study team will call you "
        "to find another time.",
        "from the participant, read as unclear (29 characters)",
        "staff, sms_sent: Yes, Thursday at 10:00 works. See you then! - The study team",
    ]
    assert "== relay_conversation_waiting: blank (answered)" in lines
    assert "Could we do Thursday" not in output
    assert "opted out (replied STOP, or Twilio refused with 21610): 1" in lines
    assert (
        "latest reply per participant: confirmed 1, cancelled 1, unclear 0, ambiguous 0, "
        "help 0, opted_out 1, opted_in 0" in lines
    )
    assert "auto-answers sent: 2" in lines
    ids = (
        "== study IDs in REDCap (record, ID, group): 4 HC-3000 (control), 5 10200 (patient), "
        "6 HC-3001 (control), 7 10201 (patient), 8 HC-3002 (control), 10 HC-3003 (control), "
        "11 10202 (patient), 12 10203 (patient)"
    )
    assert ids in lines
    assert (
        "== 7 invitation(s) mailed; the first links to "
        "https://outlook.office.com/book/StudyVisits@contoso.onmicrosoft.com/?StudyID=HC-3000"
    ) in lines
    assert "== 1 notice(s) mailed to whoever screening found not eligible" in lines
    assert (rules["invitation"]["sent_email"], rules["invitation"]["skipped"]) == ("7", "1")
    assert rules["ineligible"]["sent_email"] == "1"
    assert (
        "weekly report    to s***@s***.org: 'redcap-relay weekly report: project 1" in done.stdout
    )
    assert "Enrollment (study IDs of rule study_id): control / patient" in lines
    assert "in total: 4 / 4" in lines
    # The numbers (demo phones are 617-555-01xx, masked as +1******01xx) and the texts sent
    # back stay in REDCap.
    assert "555-01" not in output and "55501" not in output and "Sí" not in output


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


def test_simulate_registers_participants_after_the_baseline(tmp_path: Path) -> None:
    """--simulate N: one participant registers before go-live, and the N others only once
    admin baseline has marked it (so the baseline can never catch them and leave them
    unmessaged); each fills what the rules read with plausible values."""
    env_file = tmp_path / ".env.sandbox"
    rules = str(ROOT / "sandbox" / "rehearsal_rules.toml")
    proc = start(tmp_path, "--rules-file", rules, "--simulate", "3", "--simulate-interval", "0.2")
    try:
        assert wait_until(env_file.exists, timeout=30)
        settings = dotenv_values(env_file)
        project = PyCapProject(settings["REDCAP_API_URL"], settings["REDCAP_API_TOKEN"])
        fields = ["record_id", "registration_complete", "first_name", "consent", "language"]
        fields += ["visit_datetime", "welcome_status"]

        def registered() -> list[dict[str, str]]:
            rows = project.export_records(fields=fields)
            return [row for row in rows if row["registration_complete"] == "2"]

        assert wait_until(lambda: len(registered()) == 1, timeout=20)
        assert not wait_until(lambda: len(registered()) > 1, timeout=1.5)  # waits for go-live
        baseline = subprocess.run(
            [sys.executable, "-m", "services.admin", "baseline", "--env-file", str(env_file)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert baseline.returncode == 0 and "marked 1 record(s) baseline" in baseline.stdout
        assert wait_until(lambda: len(registered()) == 4, timeout=20)
        first, *new = registered()
        assert first["welcome_status"] == "baseline"
        assert [row["welcome_status"] for row in new] == ["", "", ""]
        for row in registered():
            assert row["first_name"] and row["consent"] == "1"  # the rules' when asks for it
            assert row["visit_datetime"].endswith(" 10:00")
        assert {row["language"] for row in registered()} == {"1", "2"}  # both are rehearsed
    finally:
        code, out = stop(proc)
    assert code == 0
    assert "registered before go-live. Run .venv/bin/python -m services.admin baseline" in out


def test_the_settings_file_is_private_and_whole(tmp_path: Path) -> None:
    """.env.sandbox holds tokens: only its owner may read it, and it appears complete at once
    (written aside and renamed), so nothing waiting for it reads half a file."""
    from sandbox.envfile import write_env

    path = tmp_path / ".env.sandbox"
    write_env(path, {"REDCAP_API_TOKEN": "0" * 32, "TWILIO_AUTH_TOKEN": 'se"cret'})
    assert path.stat().st_mode & 0o777 == 0o600
    assert dotenv_values(path) == {"REDCAP_API_TOKEN": "0" * 32, "TWILIO_AUTH_TOKEN": 'se"cret'}
    assert list(tmp_path.iterdir()) == [path]


def reply(env_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sandbox", "reply", "--env-file", str(env_file), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_reply_makes_a_participant_text_the_running_sandbox(tmp_path: Path) -> None:
    """python -m sandbox reply, from another process while the sandbox runs: a number or a
    record's phone texts the study number, listed as Twilio lists an inbound SMS; the output
    masks the numbers; once the sandbox has stopped it fails with one line, exit 1."""
    from datetime import UTC, datetime

    from common.contacts import normalize_phone
    from common.twilio_client import SmsGateway

    env_file = tmp_path / ".env.sandbox"
    proc = start(tmp_path, "--simulate", "1", "--simulate-interval", "0.2")
    try:
        assert wait_until(env_file.exists, timeout=30)
        settings = {k: v or "" for k, v in dotenv_values(env_file).items()}
        project = PyCapProject(settings["REDCAP_API_URL"], settings["REDCAP_API_TOKEN"])

        def registered() -> list[dict[str, str]]:
            fields = ["record_id", "registration_complete", "phone_number"]
            rows = project.export_records(fields=fields)
            return [r for r in rows if r["registration_complete"] == "2" and r["phone_number"]]

        assert wait_until(lambda: len(registered()) == 1, timeout=20)  # before go-live
        record = registered()[0]
        by_number = reply(env_file, "--from", "+16175550101", "YES")
        by_record = reply(env_file, "--record", record["record_id"], "no, sorry 👎")
        photo = reply(env_file, "--from", "72345", "--media", "1", "")
        for done in (by_number, by_record, photo):
            assert done.returncode == 0, done.stderr
        assert by_number.stdout.startswith("+1******0101 texted +1******")
        assert "6175550101" not in by_number.stdout + by_record.stdout
        sms = SmsGateway(
            settings["TWILIO_ACCOUNT_SID"],
            settings["TWILIO_AUTH_TOKEN"],
            from_number=settings["TWILIO_FROM_NUMBER"],
            base_url=settings["TWILIO_API_BASE_URL"],
        )
        found = sms.inbound_since(datetime(2000, 1, 1, tzinfo=UTC))
        assert [(m.from_, m.body, m.num_media) for m in found] == [
            ("+16175550101", "YES", 0),
            (normalize_phone(record["phone_number"], "US"), "no, sorry 👎", 0),
            ("72345", "", 1),
        ]
        assert found[0].sid in by_number.stdout
    finally:
        code, _ = stop(proc)
    assert code == 0
    gone = reply(env_file, "--from", "+16175550101", "YES")
    assert gone.returncode == 1
    assert "did not answer" in gone.stderr and "Traceback" not in gone.stderr


def test_reply_without_the_sandbox_settings_is_exit_2(tmp_path: Path) -> None:
    """No .env.sandbox, or one pointing at real Twilio: one line naming the fix, exit 2."""
    missing = reply(tmp_path / ".env.sandbox", "--from", "+16175550101", "YES")
    assert missing.returncode == 2 and "start python -m sandbox first" in missing.stderr
    real = tmp_path / ".env"
    real.write_text(
        "TWILIO_API_BASE_URL=https://api.twilio.com\nTWILIO_ACCOUNT_SID=AC1\nTWILIO_AUTH_TOKEN=t\n"
    )
    refused = reply(real, "--from", "+16175550101", "YES")
    assert refused.returncode == 2 and "not a local simulator" in refused.stderr


def test_speed_runs_the_rehearsals_clock_faster(tmp_path: Path) -> None:
    """--speed 600: the clock the simulators and services share runs ten minutes a second; it
    is written beside .env.sandbox, named there, and gone when the sandbox stops. A speed that
    is no number is refused."""
    from common.clock import ClockFile

    env_file = tmp_path / ".env.sandbox"
    proc = start(tmp_path, "--speed", "600")
    try:
        assert wait_until(env_file.exists, timeout=30)
        path = Path(str(dotenv_values(env_file)["SANDBOX_CLOCK_FILE"]))
        assert path == tmp_path / ".env.sandbox.clock"
        assert ClockFile(path).warp().speed == 600  # what every reader runs at (test_clock)
    finally:
        code, out = stop(proc)
    assert code == 0 and "running 600x" in out and not path.exists()
    refused = subprocess.run(
        [sys.executable, "-m", "sandbox", "--speed", "fast"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert refused.returncode == 2 and "--speed: 'fast': give a number" in refused.stderr
