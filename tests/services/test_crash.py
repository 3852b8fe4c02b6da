"""kill -9 of the sender at every step of the send path: never two messages, never none.

Each case makes one request of the send path hang (before or after the server applies it), waits
until the sender is stuck there, kills it with SIGKILL, and then lets fresh senders run until the
record settles. What must hold: exactly one message reached Twilio for the participant, and
REDCap records it (``sms_sent`` with that message's SID).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from services import registration_detector
from tests.services.conftest import Rig, start_rules_rig
from tests.services.killing import KILL_SETTINGS, SMS_STEPS, kill_at

PHONE = "+16175550100"

# (name, which simulator, what to match, after_apply, matching requests to let through first)
STEPS = SMS_STEPS


@pytest.mark.parametrize(
    ("name", "where", "match", "after_apply", "skip"), STEPS, ids=[step[0] for step in STEPS]
)
def test_kill_9_at_each_step_never_double_sends_or_loses(
    rig: Rig, name: str, where: str, match: dict[str, str], after_apply: bool, skip: int
) -> None:
    """Killing the sender at this step leaves REDCap able to finish: exactly one SMS."""
    rig.register("1", "(617) 555-0100")
    registration_detector.run_once(rig.ctx(needs_twilio=False))
    step = (name, where, match, after_apply, skip)
    assert kill_at(rig, step), "sender never reached the step"
    for _ in range(4):  # fresh senders, as systemd would restart them
        done = rig.run(
            "services.sms_sender", "--once", SMS_DELAY_MINUTES="0", SMS_CLAIM_TIMEOUT_SECONDS="0"
        )
        assert done.returncode == 0, done.stderr
        if rig.status("1") == "sms_sent":
            break
    messages = rig.sent_to(PHONE)
    assert len(messages) == 1, f"{name}: {len(messages)} messages"
    assert rig.status("1") == "sms_sent"
    assert rig.values("1")["pipeline_sms_sid"] == messages[0]["sid"]


PHONES = ("+16175550101", "+16175550102", "+16175550103")


def test_many_kills_per_record_lose_nobody_and_use_no_attempts(rig: Rig) -> None:
    """A dozen and more kill -9s over three participants, at every step: each ends with
    exactly one message, recorded, and the crashes used none of their SMS_MAX_ATTEMPTS."""
    for n, phone in enumerate(PHONES, 1):
        rig.register(str(n), phone)
    registration_detector.run_once(rig.ctx(needs_twilio=False))
    # Steps that leave the message unsent first (three times each), then every step in turn.
    unsent = [STEPS[0], STEPS[1], STEPS[2]] * 3
    kills = sum(kill_at(rig, step) for step in [*unsent, *STEPS])
    assert kills >= 12
    for _ in range(6):  # fresh senders, as systemd would restart them
        done = rig.run("services.sms_sender", "--once", **KILL_SETTINGS)
        assert done.returncode == 0, done.stderr
        if all(rig.status(str(n)) == "sms_sent" for n in range(1, 4)):
            break
    for n, phone in enumerate(PHONES, 1):
        values, messages = rig.values(str(n)), rig.sent_to(phone)
        assert len(messages) == 1, f"record {n}: {len(messages)} messages"
        assert values["pipeline_status"] == "sms_sent"
        assert values["pipeline_sms_sid"] == messages[0]["sid"]
        assert values["pipeline_sms_attempts"] == "1"
    interrupted = [rig.values(str(n)).get("pipeline_sms_interrupted", "") for n in range(1, 4)]
    assert sum(int(c or 0) for c in interrupted) >= 6, interrupted  # the kills did interrupt


TWO_RULES = """
[[rule]]
name = "welcome"
when = "[registration_complete] = '2'"
delay_minutes = 0
survey = "interest_form"
template = "Welcome! Your survey: {survey_link}"

[[rule]]
name = "nudge"
when = "[registration_complete] = '2'"
delay_minutes = 0
survey = "interest_form"
template = "Please do not forget your survey: {survey_link}"
"""
# Each rule's steps: (its step, how many earlier matching requests the other rule makes first).
# welcome goes first: its claim import, create, result import; then nudge's.
TWO_RULE_STEPS = [
    (rule, name, where, match, after_apply, skip + (offset if rule == "nudge" else 0))
    for rule in ("welcome", "nudge")
    for (name, where, match, after_apply, skip), offset in zip(
        STEPS, (2, 2, 1, 1, 2, 2), strict=True
    )
]


@pytest.mark.parametrize(
    ("rule", "name", "where", "match", "after_apply", "skip"),
    TWO_RULE_STEPS,
    ids=[f"{step[0]}: {step[1]}" for step in TWO_RULE_STEPS],
)
def test_two_rules_sharing_number_and_link_never_adopt_each_others_message(
    tmp_path: Path,
    rule: str,
    name: str,
    where: str,
    match: dict[str, str],
    after_apply: bool,
    skip: int,
) -> None:
    """A welcome and a nudge to the same number with the same link: killing the sender at any
    step of either leaves each rule with exactly its own message, never the other's."""
    for rig in start_rules_rig(tmp_path, TWO_RULES):
        rig.register("1", "(617) 555-0100")
        registration_detector.run_once(rig.ctx(needs_twilio=False))
        assert kill_at(rig, (name, where, match, after_apply, skip)), "never reached the step"
        for _ in range(4):  # fresh senders, as systemd would restart them
            done = rig.run("services.sms_sender", "--once", **KILL_SETTINGS)
            assert done.returncode == 0, done.stderr
            values = rig.values("1")
            if values.get("welcome_status") == values.get("nudge_status") == "sms_sent":
                break
        messages = {str(m["body"]).split(":")[0]: str(m["sid"]) for m in rig.sent_to(PHONE)}
        assert len(rig.sent_to(PHONE)) == 2, f"{rule} {name}: {messages}"
        values = rig.values("1")
        assert values["welcome_sms_sid"] == messages["Welcome! Your survey"]
        assert values["nudge_sms_sid"] == messages["Please do not forget your survey"]
