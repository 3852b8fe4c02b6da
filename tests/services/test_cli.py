"""The services as commands: exit codes, one-line errors, outages, bans, signals, no PHI in logs."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from sandbox.faults import Fault
from sandbox.httpserver import wait_until
from tests.services.conftest import ROOT, Rig, clean_env

SERVICES = ["services.registration_detector", "services.sms_sender", "services.delivery_checker"]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("REDCAP_API_TOKEN", "short"),
        ("REDCAP_PROJECT_ID", "abc"),
        ("SMS_DELAY_MINUTES", "soon"),
        ("QUIET_HOURS", "9pm-8am"),
        ("TIMEZONE", "Mars/Olympus"),
        ("SMS_TEMPLATE", "no link here"),
        ("PHONE_FIELDS", "Phone Number"),
        ("TWILIO_ACCOUNT_SID", "nope"),
    ],
)
def test_bad_setting_is_one_line_naming_it_exit_2(rig: Rig, variable: str, value: str) -> None:
    """A bad setting: exit 2, one line naming the variable, no traceback."""
    done = rig.run("services.sms_sender", "--once", **{variable: value})
    assert done.returncode == 2
    assert variable in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_missing_env_file_is_a_config_error(rig: Rig) -> None:
    """--env-file naming a missing file says so and exits 2."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "services.registration_detector",
            "--once",
            "--env-file",
            "/nonexistent/.env",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        env=clean_env(),
    )
    assert done.returncode == 2 and "--env-file" in done.stderr


@pytest.mark.parametrize("module", SERVICES)
def test_wrong_project_id_refuses_to_run_exit_3(rig: Rig, module: str) -> None:
    """The token's project must be REDCAP_PROJECT_ID; otherwise nothing is written, exit 3."""
    rig.register("1")
    done = rig.run(module, "--once", REDCAP_PROJECT_ID="77")
    assert done.returncode == 3
    assert "REDCAP_PROJECT_ID=77" in done.stderr and "Traceback" not in done.stderr
    assert rig.status("1") == ""


def test_missing_pipeline_fields_exit_3_with_the_fix(rig: Rig) -> None:
    """A project without the pipeline instrument is refused, naming the CSV to upload."""
    rig.project.fields[:] = [f for f in rig.project.fields if f.form_name != "pipeline"]
    done = rig.run("services.registration_detector", "--once")
    assert done.returncode == 3 and "pipeline_instrument.csv" in done.stderr


def test_redcap_outage_once_exits_nonzero_and_changes_nothing(rig: Rig) -> None:
    """REDCap answering 503 after retries: --once exits 1; the record is untouched."""
    rig.register("1")
    rig.redcap.server.faults.add(
        Fault(kind="status", status=503, times=100, match={"content": "record"})
    )
    done = rig.run("services.registration_detector", "--once")
    assert done.returncode == 1
    assert "503" in done.stderr
    assert rig.status("1") == ""


def test_redcap_ban_is_never_retried(rig: Rig) -> None:
    """A 429 from REDCap stops the service at once: exactly one request hits the ban."""
    rig.register("1")
    rig.redcap.server.faults.add(
        Fault(
            kind="status",
            status=429,
            times=100,
            body="Your IP address (127.0.0.1) has been banned",
            match={"content": "record"},
        )
    )
    rig.redcap.server.reset_stats()
    done = rig.run("services.registration_detector")  # loop mode: must still stop
    assert done.returncode == 4  # its own code: systemd's RestartPreventExitStatus names it
    assert "banned" in done.stderr
    assert rig.redcap.server.faults.pending() == 99


def test_loop_mode_stops_cleanly_on_sigterm(rig: Rig) -> None:
    """Without --once a service loops until SIGTERM, then exits 0."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.delivery_checker", "--env-file", str(rig.env_file())],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )
    try:
        assert wait_until(lambda: rig.redcap.server.stats.total_requests() >= 3, timeout=20)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
    assert proc.stderr is not None
    assert "stopping" in proc.stderr.read()


def test_logs_hold_no_phone_link_or_token(rig: Rig) -> None:
    """Logs mask phones and never print tokens, survey links or message bodies."""
    rig.register("1", "(617) 555-0188")
    assert rig.run("services.registration_detector", "--once").returncode == 0
    time.sleep(0.1)
    done = rig.run("services.sms_sender", "--once", SMS_DELAY_MINUTES="0")
    assert done.returncode == 0, done.stderr
    logs = done.stderr
    assert "+1******0188" in logs
    for secret in (
        "6175550188",
        "555-0188",
        rig.redcap.token,
        rig.twilio.auth_token,
        rig.redcap_link("1"),
        "surveys/?s=",
    ):
        assert secret not in logs


def test_sigterm_mid_batch_finishes_the_record_in_hand(rig: Rig) -> None:
    """SIGTERM while sending: the message in flight is recorded, the rest go back untouched."""
    for n in (1, 2, 3):
        rig.register(str(n), f"617555010{n}")
    assert rig.run("services.registration_detector", "--once").returncode == 0
    rig.twilio.server.faults.add(Fault(kind="latency", seconds=1.5, match={"op": "create"}))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "services.sms_sender",
            "--env-file",
            str(rig.env_file(SMS_DELAY_MINUTES="0")),
        ],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )
    try:
        assert wait_until(lambda: rig.twilio.server.faults.pending() == 0, timeout=20)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
    statuses = sorted(rig.status(str(n)) for n in (1, 2, 3))
    assert statuses == ["registered", "registered", "sms_sent"]
    assert len(rig.twilio.sent()) == 1
    for n in (1, 2, 3):
        if rig.status(str(n)) == "registered":
            assert rig.values(str(n)).get("pipeline_sms_attempts", "0") == "0"
