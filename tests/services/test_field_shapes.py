"""The pipeline runs end to end on pipeline fields built by hand in the Online Designer.

Coordinators who do not upload ``redcap/pipeline_instrument.csv`` build the fields themselves:
Text Boxes instead of Notes Boxes, radio buttons instead of a dropdown (with codes of their own),
``datetime_mdy`` without seconds, unvalidated or ``number`` counters. REDCap stores our values in
all of these, so every command must accept them and write what each one takes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from common.errors import ProjectCheckError
from sandbox.redcap.demo import build_demo_project
from sandbox.redcap.model import Project
from services import delivery_checker, registration_detector
from services.sms_sender import Sender
from tests.services.conftest import Rig, at_start, start_rig

TIMES = (
    "pipeline_registered_at",
    "pipeline_sms_claimed_at",
    "pipeline_sms_sent_at",
    "pipeline_delivery_checked_at",
)
STATUS_CHOICES = (
    "baseline, Baseline | registered, Registered | sending, Sending | sms_sent, SMS sent | "
    "delivered, Delivered | undelivered, Undelivered | failed, Failed | skipped, Skipped | "
    "unconfirmed, Unconfirmed | needs_review, Needs review | paused, Paused by the study team"
)


def reshape(project: Project, **changes: tuple[str, str]) -> Project:
    """Give pipeline fields another (type, validation), as a hand-built instrument would."""
    for name, (field_type, validation) in changes.items():
        item = project.field(name)
        assert item is not None
        item.field_type = field_type
        item.text_validation_type_or_show_slider_number = validation
        if field_type == "radio":
            item.select_choices_or_calculations = STATUS_CHOICES
    return project


def by_hand_mdy() -> Project:
    """Text Box error message, radio status with an extra code, datetime_mdy (no seconds)."""
    return reshape(
        build_demo_project(),
        pipeline_status=("radio", ""),
        pipeline_error_message=("text", ""),
        pipeline_sms_attempts=("text", ""),
        pipeline_sms_sid=("notes", ""),
        **{name: ("text", "datetime_mdy") for name in TIMES},
    )


def by_hand_dmy_seconds() -> Project:
    """Unvalidated times but one datetime_seconds_dmy, a number counter, Notes Box codes."""
    return reshape(
        build_demo_project(),
        pipeline_sms_attempts=("text", "number"),
        pipeline_error_code=("notes", ""),
        pipeline_registered_at=("text", "datetime_seconds_dmy"),
        pipeline_sms_claimed_at=("text", ""),
        pipeline_sms_sent_at=("text", ""),
        pipeline_delivery_checked_at=("text", ""),
    )


SHAPES: dict[str, tuple[Callable[[], Project], bool]] = {
    "shipped csv": (build_demo_project, True),
    "by hand, mdy, no seconds": (by_hand_mdy, False),
    "by hand, dmy seconds and none": (by_hand_dmy_seconds, True),
}


@pytest.fixture(params=list(SHAPES), ids=list(SHAPES))
def shaped(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Rig, bool]]:
    build, seconds = SHAPES[request.param]
    for rig in start_rig(build(), tmp_path, sim_clock=at_start()):
        yield rig, seconds


def test_pipeline_runs_end_to_end_on_each_field_shape(shaped: tuple[Rig, bool]) -> None:
    """Detect, send, check delivery; a bad phone is recorded; times fit each field's shape."""
    rig, seconds = shaped
    rig.register("1", "(617) 555-0100")
    rig.register("2", "12")
    assert registration_detector.run_once(rig.ctx(needs_twilio=False)).counts["registered"] == 2
    rig.advance(61)
    sent = Sender(dry_run=False).run_once(rig.ctx()).counts
    assert sent["sent"] == 1 and sent["not_sent_invalid_phone"] == 1
    rig.advance(30)
    delivery_checker.run_once(rig.ctx())
    ok, bad = rig.values("1"), rig.values("2")
    assert ok["pipeline_status"] == "delivered"
    assert ok["pipeline_sms_attempts"] == "1"
    assert ok["pipeline_sms_sid"] == rig.sent_to("+16175550100")[0]["sid"]
    assert bad["pipeline_status"] == "skipped"
    assert "no usable phone number" in bad["pipeline_error_message"]
    expected = {
        "pipeline_registered_at": "2026-03-02 12:00:00",
        "pipeline_sms_claimed_at": "2026-03-02 12:01:01",
        "pipeline_sms_sent_at": "2026-03-02 12:01:01",
        "pipeline_delivery_checked_at": "2026-03-02 12:01:31",
    }
    for name, value in expected.items():
        assert ok[name] == (value if seconds else value[:-3]), name


@pytest.mark.parametrize(
    ("changes", "said"),
    [
        ({"pipeline_error_message": ("calc", "")}, "pipeline_error_message is a calc field"),
        ({"pipeline_registered_at": ("text", "date_mdy")}, "validated as date_mdy"),
        ({"pipeline_sms_to": ("text", "phone")}, "pipeline_sms_to is validated as phone"),
        ({"pipeline_status": ("checkbox", "")}, "pipeline_status is a checkbox field"),
    ],
)
def test_a_shape_that_would_refuse_our_values_stops_every_command(
    tmp_path: Path, changes: dict[str, tuple[str, str]], said: str
) -> None:
    """Only what REDCap would really refuse stops a command, naming the field and the fix."""
    for rig in start_rig(reshape(build_demo_project(), **changes), tmp_path):
        with pytest.raises(ProjectCheckError, match=said):
            rig.ctx(needs_twilio=False)
        done = rig.run("services.registration_detector", "--once")
        assert done.returncode == 3
        [line] = done.stderr.strip().splitlines()
        assert said in line and "Traceback" not in done.stderr


def test_a_registration_value_the_field_cannot_hold_is_refused(tmp_path: Path) -> None:
    """REGISTRATION_COMPLETE_VALUE must be one of the field's raw codes (0/1/2 for a form's
    status), or no one would ever be detected."""
    for rig in start_rig(build_demo_project(), tmp_path):
        with pytest.raises(ProjectCheckError, match="REGISTRATION_COMPLETE_VALUE='Complete'"):
            rig.ctx(needs_twilio=False, REGISTRATION_COMPLETE_VALUE="Complete")
        with pytest.raises(ProjectCheckError, match="use one of its raw codes: 0, 1, 2"):
            rig.ctx(needs_twilio=False, REGISTRATION_COMPLETE_VALUE="3")
        assert rig.ctx(needs_twilio=False, REGISTRATION_COMPLETE_VALUE="1") is not None
