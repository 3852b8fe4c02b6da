"""kill -9 of the reply poller (and of the sender sending an auto-answer) at every step: each reply
recorded once, each auto-answer sent once, none lost.

Each case texts the study number as a participant would, makes one request of the poller's cycle
hang (the Twilio list, the REDCap export, the one import of the reply with its opt-out and its
auto-answer; before or after the server applies it), SIGKILLs the poller stuck there, then runs
fresh pollers and senders as systemd would. What must hold: REDCap holds the reply (its SID and
meaning), and Twilio got exactly one auto-answer with the answer's text (none for STOP, which Twilio
answers itself). Real processes on the real clock, so Twilio's times and the services' agree.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

import pytest

from common.clock import SystemClock
from messaging.context import Context
from sandbox.faults import Fault
from sandbox.httpserver import wait_until
from services import registration_detector, reply_poller
from services.sms_sender import Sender
from tests.services.conftest import ROOT, Rig, clean_env, start_rules_rig
from tests.services.killing import IMPORT, KILL_SETTINGS, SMS_STEPS, Step, kill_at

VISIT = """
[[rule]]
name = "visit"
when = "[registration_complete] = '2'"
delay_minutes = 0
template = "Your visit is tomorrow. Reply YES to confirm or NO to cancel."
replies.confirmed = ["yes", "y"]
replies.cancelled = ["no", "n"]
answer_confirmed = "Thank you, your visit is confirmed."
answer_cancelled = "Thank you. We will call you to find another time."
"""
PHONE = "+16175550100"
CONFIRMED = "Thank you, your visit is confirmed."
CANCELLED = "Thank you. We will call you to find another time."
POLLER = "services.reply_poller"
SENDER = "services.sms_sender"
UNSETTLED = ("registered", "sending")  # an auto-answer the sender has still to finish

LIST = {"resource": "messages", "op": "list"}
EXPORT = {"content": "record", "action": "export"}

# The poller's cycle. Its start-up (the project check) makes one record export of its own first.
LISTED = [
    ("twilio list lost", "twilio", LIST, False, 0),
    ("twilio listed, answer lost", "twilio", LIST, True, 0),
    ("export lost", "redcap", EXPORT, False, 1),
    ("exported, answer lost", "redcap", EXPORT, True, 1),
]
# A YES or NO: one import, the reply with its auto-answer's registration.
REPLY_STEPS: list[Step] = [
    *LISTED,
    ("reply import lost", "redcap", IMPORT, False, 0),
    ("reply imported, answer lost", "redcap", IMPORT, True, 0),
]
# A STOP: one import too, the opt-out with the reply.
STOP_STEPS: list[Step] = REPLY_STEPS
# The sender's path for an auto-answer: claim, Twilio create, result.
SENDER_STEPS = SMS_STEPS


def ids(steps: list[Step]) -> list[str]:
    return [step[0] for step in steps]


@pytest.fixture
def texted(tmp_path: Path) -> Iterator[Rig]:
    """Record 1 has been sent the visit reminder (real clock, as the processes keep)."""
    for rig in start_rules_rig(tmp_path, VISIT):
        rig.register("1")
        registration_detector.run_once(rig.ctx(needs_twilio=False))
        assert Sender(dry_run=False).run_once(live(rig)).counts["sent"] == 1
        yield rig


def live(rig: Rig) -> Context:
    """A context on the real clock, the one the service processes keep."""
    return dataclasses.replace(rig.ctx(True, **KILL_SETTINGS), clock=SystemClock(UTC))


def text_back(rig: Rig, body: str) -> str:
    return rig.twilio.inject_inbound(PHONE, rig.twilio.from_number, body)


def settle(rig: Rig) -> dict[str, int]:
    """Fresh pollers and senders, as systemd would restart them, until the reply is recorded
    and its answer (if any) settled (a stale claim takes a cycle to requeue); then one more
    cycle of each, which must find nothing left to send; that last poll's counts."""
    for _ in range(3):
        for module in (POLLER, SENDER):
            done = rig.run(module, "--once", timeout=30, **KILL_SETTINGS)
            assert done.returncode == 0, done.stderr
        values = rig.values("1")
        if values.get("visit_reply_sid") and values.get("visit_answer_status", "") not in UNSETTLED:
            break
    again = dict(reply_poller.run_once(live(rig)).counts)
    assert Sender(dry_run=False).run_once(live(rig)).counts.get("sent", 0) == 0
    return again


def ours(rig: Rig, body: str) -> list[dict[str, object]]:
    """Our messages (not Twilio's automatic STOP answers) to the participant with ``body``."""
    return [
        m
        for m in rig.sent_to(PHONE)
        if m["body"] == body and m.get("direction", "outbound-api") == "outbound-api"
    ]


def assert_answered_once(rig: Rig, sid: str, meaning: str, answer: str) -> None:
    values = rig.values("1")
    assert (values["visit_reply"], values["visit_reply_sid"]) == (meaning, sid)
    answers = ours(rig, answer)
    assert len(answers) == 1, f"{len(answers)} auto-answers"
    assert values["visit_answer_status"] == "sms_sent"
    assert values["visit_answer_sms_sid"] == answers[0]["sid"]
    assert len(rig.sent_to(PHONE)) == 2  # the reminder and the one answer, nothing else


@pytest.mark.parametrize("step", REPLY_STEPS, ids=ids(REPLY_STEPS))
def test_poller_killed_at_each_step_records_a_yes_once_and_answers_it_once(
    texted: Rig, step: Step
) -> None:
    """kill -9 of the poller at this step of recording a YES: afterwards the reply is on the
    record once and exactly one confirmation went out."""
    sid = text_back(texted, "yes")
    assert kill_at(texted, step, module=POLLER), "poller never reached the step"
    assert settle(texted) == {"already_recorded": 1}
    assert texted.values("1")["visit_reply_text"] == "yes"
    assert_answered_once(texted, sid, "confirmed", CONFIRMED)


@pytest.mark.parametrize("step", STOP_STEPS, ids=ids(STOP_STEPS))
def test_poller_killed_at_each_step_records_a_stop_once_and_never_answers_it(
    texted: Rig, step: Step
) -> None:
    """kill -9 of the poller at this step of recording a STOP: the record is opted out by that
    message, the rule holds the reply, and no answer of ours ever goes."""
    sid = text_back(texted, "STOP")
    assert kill_at(texted, step, module=POLLER), "poller never reached the step"
    assert settle(texted) == {"already_recorded": 1}
    values = texted.values("1")
    assert (values["relay_opted_out"], values["relay_opt_sid"]) == ("1", sid)
    assert (values["visit_reply"], values["visit_reply_sid"]) == ("opted_out", sid)
    assert values.get("visit_answer_status", "") == ""
    assert len(ours(texted, CONFIRMED) + ours(texted, CANCELLED)) == 0
    assert [m["body"] for m in texted.sent_to(PHONE) if m["direction"] == "outbound-api"] == [
        "Your visit is tomorrow. Reply YES to confirm or NO to cancel."
    ]


OPT_IN_STEPS = STOP_STEPS[len(LISTED) :]


@pytest.mark.parametrize("step", OPT_IN_STEPS, ids=ids(OPT_IN_STEPS))
def test_poller_killed_recording_a_yes_after_stop_opts_in_and_never_confirms(
    texted: Rig, step: Step
) -> None:
    """YES from someone opted out is an opt-in: kill -9 at its import (the opt-in with the
    reply), and the next poller still records it as opted_in (not a confirmation now that the
    record is opted in), with no answer of ours."""
    text_back(texted, "STOP")
    assert reply_poller.run_once(live(texted)).counts == {"recorded": 1}
    texted.sim_clock.advance(1)  # whole seconds: the YES is plainly after the STOP
    sid = text_back(texted, "yes")
    assert kill_at(texted, step, module=POLLER), "poller never reached the step"
    assert settle(texted) == {"already_recorded": 2}
    values = texted.values("1")
    assert (values["visit_reply"], values["visit_reply_sid"]) == ("opted_in", sid)
    assert (values.get("relay_opted_out", ""), values["relay_opt_sid"]) == ("", sid)
    assert values.get("visit_answer_status", "") == ""
    assert ours(texted, CONFIRMED) == []


@pytest.mark.parametrize("step", REPLY_STEPS, ids=ids(REPLY_STEPS))
def test_poller_killed_with_two_replies_of_one_record_answers_the_latest_once(
    texted: Rig, step: Step
) -> None:
    """NO then YES from one participant in the same second (Twilio's times have whole
    seconds), recorded in one cycle, with kill -9 at this step: the record ends with the YES
    (the later reply supersedes), one confirmation, no cancellation."""
    texted.sim_clock.freeze()
    text_back(texted, "no")
    sid = text_back(texted, "yes")
    texted.sim_clock.unfreeze()
    assert kill_at(texted, step, module=POLLER), "poller never reached the step"
    assert settle(texted) == {"already_recorded": 2}
    assert_answered_once(texted, sid, "confirmed", CONFIRMED)
    assert ours(texted, CANCELLED) == []


@pytest.mark.parametrize("step", SENDER_STEPS, ids=ids(SENDER_STEPS))
def test_sender_killed_at_each_step_of_an_auto_answer_sends_it_once(
    texted: Rig, step: Step
) -> None:
    """The reply recorded, kill -9 of the sender at this step of sending its auto-answer:
    exactly one confirmation reaches Twilio, recorded on the companion rule."""
    sid = text_back(texted, "yes")
    assert reply_poller.run_once(live(texted)).counts == {"recorded": 1}
    assert kill_at(texted, step), "sender never reached the step"
    assert settle(texted) == {"already_recorded": 1}
    assert_answered_once(texted, sid, "confirmed", CONFIRMED)


def test_a_second_poller_started_alongside_exits_on_the_lock(texted: Rig) -> None:
    """Two pollers at once: the second exits non-zero with one line naming the lock; the first
    records the reply once and its answer goes once."""
    sid = text_back(texted, "yes")
    # The first poller is held in its Twilio list (lock taken) while the second starts.
    slow = texted.twilio.server.faults.add(Fault(kind="latency", seconds=3, match=LIST))
    env = texted.env_file(**KILL_SETTINGS)
    first = subprocess.Popen(
        [sys.executable, "-m", POLLER, "--once", "--env-file", str(env)],
        cwd=ROOT,
        env=clean_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_until(lambda: slow.times == 0, timeout=20), "first poller never listed"
        second = texted.run(POLLER, "--once", timeout=30, **KILL_SETTINGS)
        _, first_log = first.communicate(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(timeout=10)
    assert second.returncode != 0
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1 and "another reply poller is already running" in lines[0], lines
    assert first.returncode == 0, first_log
    assert "cycle done: recorded=1" in first_log
    assert settle(texted) == {"already_recorded": 1}
    assert_answered_once(texted, sid, "confirmed", CONFIRMED)
