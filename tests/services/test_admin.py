"""Admin commands, run as a coordinator would (subprocess), against the sandbox."""

from __future__ import annotations

import json

from services import registration_detector
from services.sms_sender import Sender
from tests.services.conftest import Rig


def test_check_passes_on_a_good_setup(rig: Rig) -> None:
    """admin check prints a checklist and exits 0 when everything is right."""
    done = rig.run("services.admin", "check")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "[ok  ] project id" in done.stdout and "all checks passed" in done.stdout


def test_check_names_each_failure_and_its_fix(rig: Rig) -> None:
    """A non-survey instrument and a wrong project id are each reported with a fix."""
    done = rig.run("services.admin", "check", SURVEY_INSTRUMENT="registration")
    assert done.returncode == 3  # the project check's exit code, as the services give it
    assert "[FAIL] survey instrument" in done.stdout and "fix:" in done.stdout
    done = rig.run("services.admin", "check", REDCAP_PROJECT_ID="999")
    assert done.returncode == 3 and "REDCAP_PROJECT_ID=999" in done.stdout


def test_baseline_marks_existing_registrations_and_is_idempotent(rig: Rig) -> None:
    """baseline marks complete, unstatused records; a second run marks none; none are texted."""
    rig.register("1")
    rig.register("2")
    done = rig.run("services.admin", "baseline")
    assert done.returncode == 0 and "marked 2 record(s)" in done.stdout
    assert rig.run("services.admin", "baseline").stdout.startswith("marked 0")
    registration_detector.run_once(rig.ctx(needs_twilio=False))
    rig.clock.advance(3600)
    Sender(dry_run=False).run_once(rig.ctx())
    assert rig.status("1") == "baseline" and rig.twilio.sent() == []


def test_status_json_shows_the_funnel(rig: Rig) -> None:
    """status --json counts records per pipeline status."""
    rig.register("1")
    rig.register("2", "not a phone")
    registration_detector.run_once(rig.ctx(needs_twilio=False))
    rig.clock.advance(61)
    Sender(dry_run=False).run_once(rig.ctx())
    done = rig.run("services.admin", "status", "--json")
    data = json.loads(done.stdout)
    assert data["by_status"]["sms_sent"] == 1 and data["by_status"]["skipped"] == 1
    assert data["problems_by_code"] == {"skipped:invalid_phone": 1}


def test_force_sends_now_but_never_twice_without_resend(rig: Rig) -> None:
    """force ignores the delay; a second force is refused unless --resend."""
    rig.register("1")
    registration_detector.run_once(rig.ctx(needs_twilio=False))
    done = rig.run("services.admin", "force", "1", SMS_DELAY_MINUTES="60")
    assert done.returncode == 0, done.stderr
    assert rig.status("1") == "sms_sent"
    again = rig.run("services.admin", "force", "1")
    assert again.returncode == 1 and "--resend" in again.stdout
    assert len(rig.twilio.sent()) == 1
    assert rig.run("services.admin", "force", "1", "--resend").returncode == 0
    assert len(rig.twilio.sent()) == 2


def test_requeue_gives_a_failed_record_another_go(rig: Rig) -> None:
    """requeue: failed -> registered with the old error cleared; sent records refuse."""
    rig.register("1", "+15005550004")
    registration_detector.run_once(rig.ctx(needs_twilio=False))
    rig.clock.advance(61)
    Sender(dry_run=False).run_once(rig.ctx())
    assert rig.status("1") == "failed"
    done = rig.run("services.admin", "requeue", "1")
    assert done.returncode == 0
    values = rig.values("1")
    assert values["pipeline_status"] == "registered"
    assert "pipeline_error_code" not in values
    assert rig.run("services.admin", "requeue", "404").returncode == 1


def test_check_fixes_point_at_the_projects_own_fields(rig: Rig) -> None:
    """Wrong field settings: the fix lists the form status fields and phone-like fields."""
    done = rig.run(
        "services.admin",
        "check",
        REGISTRATION_COMPLETE_FIELD="signup_complete",
        PHONE_FIELDS="cellphone",
    )
    assert done.returncode == 3
    assert "registration_complete" in done.stdout and "interest_form_complete" in done.stdout
    assert "look like one: phone_number, mobile" in done.stdout
