"""SURVEY_INSTRUMENT must name a survey of the project: every command that links refuses otherwise.

The check costs a few tiny requests whatever the project's size (never the participant list).
"""

from __future__ import annotations

import pytest

from common.errors import ConfigError
from services import registration_detector
from services.sms_sender import Sender
from tests.services.conftest import Rig


def one_line(stderr: str) -> str:
    [line] = stderr.strip().splitlines()
    return line


def test_sender_refuses_to_start_on_an_instrument_that_is_not_a_survey(rig: Rig) -> None:
    """registration is a form but not a survey: exit 3, one line naming the setting and fix."""
    rig.register("1")
    done = rig.run("services.sms_sender", "--once", SURVEY_INSTRUMENT="registration")
    assert done.returncode == 3
    line = one_line(done.stderr)
    assert "SURVEY_INSTRUMENT='registration' is not enabled as a survey" in line
    assert "Online Designer" in line and "Traceback" not in done.stderr


def test_sender_refuses_an_instrument_the_project_does_not_have(rig: Rig) -> None:
    """A typo in the instrument name is named with the instruments that exist."""
    done = rig.run("services.sms_sender", "--once", SURVEY_INSTRUMENT="intrest_form")
    assert done.returncode == 3
    line = one_line(done.stderr)
    assert "SURVEY_INSTRUMENT='intrest_form'" in line and "interest_form" in line


def test_a_survey_disabled_while_running_stops_the_sender_before_any_claim(rig: Rig) -> None:
    """Staff turn the survey off after the sender started: the first link request stops the
    sender with the same one-line refusal and leaves the participant registered, untouched."""
    ctx = rig.ctx(SMS_DELAY_MINUTES="0")
    survey = rig.project.form("interest_form")
    assert survey is not None
    survey.survey_title = None  # Online Designer > Survey settings > disabled
    rig.register("1")
    registration_detector.run_once(rig.ctx(needs_twilio=False))
    with pytest.raises(ConfigError, match="SURVEY_INSTRUMENT='interest_form' is not enabled"):
        Sender(dry_run=False).run_once(ctx)
    assert rig.status("1") == "registered"
    assert rig.values("1").get("pipeline_sms_attempts", "") == ""
    assert rig.twilio.sent() == []


def test_admin_check_names_the_problem(rig: Rig) -> None:
    """admin check shows the same refusal as a FAIL line with its fix."""
    rig.register("1")
    done = rig.run("services.admin", "check", SURVEY_INSTRUMENT="registration")
    assert done.returncode == 3
    assert "[FAIL] survey instrument: SURVEY_INSTRUMENT='registration' is not enabled" in (
        done.stdout
    )
    ok = rig.run("services.admin", "check")
    assert "[ok  ] survey instrument: interest_form is enabled as a survey" in ok.stdout
