"""Staff replies from REDCap: a coordinator adds a relay_message instance with a text and ticks
send; the sender texts it once (opt-out, allow-list, quiet hours and length applied), records the
SID on the instance and ends the record's wait; the text typed is never changed; kill -9 at any
step sends it exactly once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from services import delivery_checker, registration_detector, reply_poller
from services.sms_sender import Sender
from tests.services.conftest import Rig, at_start, start_rules_rig
from tests.services.killing import IMPORT, KILL_SETTINGS, SMS_STEPS, Step, kill_at
from tests.services.replying import PHONE, VISIT, join, ours, poll, send, text_back
from tests.services.test_conversation import thread
from tests.services.test_daylight_saving import at, transition
from tests.services.test_email import rules as email_rules

LOG = {"CONVERSATION_LOG": "1"}
ANSWER = "Yes, Thursday at 10 works. See you then! - Dana, study coordinator"


@pytest.fixture
def asked(tmp_path: Path) -> Iterator[Rig]:
    """Record 1 got the visit reminder and asked a question the rule cannot read."""
    for rig in start_rules_rig(tmp_path, VISIT, sim_clock=at_start(), **LOG):
        join(rig, "1")
        send(rig)
        text_back(rig, "Can we do Thursday instead?")
        poll(rig)
        send(rig)  # the rule's "Sorry, please reply YES or NO."
        yield rig


def staff_types(rig: Rig, text: str, record: str = "1", send_it: str = "1") -> int:
    """A coordinator adds an instance (REDCap numbers it after the highest), types, ticks send."""
    instance = max((int(r["redcap_repeat_instance"]) for r in thread(rig, record)), default=0) + 1
    rig.set(
        record,
        redcap_repeat_instrument="relay_message",
        redcap_repeat_instance=str(instance),
        msg_text=text,
        msg_send=send_it,
    )
    return instance


def instance(rig: Rig, number: int, record: str = "1") -> dict[str, str]:
    return next(r for r in thread(rig, record) if int(r["redcap_repeat_instance"]) == number)


def test_a_staff_reply_goes_once_and_ends_the_wait(asked: Rig) -> None:
    assert asked.values("1")["relay_conversation_waiting"]
    number = staff_types(asked, ANSWER)
    counts = send(asked)
    assert counts.get("staff_sent") == 1
    assert ours(asked)[-1] == ANSWER
    typed = instance(asked, number)
    assert (typed["msg_status"], typed["msg_text"], typed["msg_rule"]) == (
        "sms_sent",
        ANSWER,
        "staff",
    )
    assert typed["msg_sid"] == asked.sent_to(PHONE)[-1]["sid"]
    assert asked.values("1").get("relay_conversation_waiting", "") == ""
    for _ in range(2):
        assert send(asked).get("staff_sent", 0) == 0
    assert ours(asked).count(ANSWER) == 1
    asked.advance(60)
    assert delivery_checker.run_once(asked.ctx()).counts.get("staff_delivered") == 1
    assert instance(asked, number)["msg_status"] == "delivered"
    assert "staff_delivered" not in delivery_checker.run_once(asked.ctx()).counts
    text_back(asked, "Thank you!")
    poll(asked)
    assert thread(asked)[-1]["msg_text"] == "Thank you!"


def test_a_staff_reply_waits_for_send_to_be_ticked(asked: Rig) -> None:
    number = staff_types(asked, ANSWER, send_it="")
    assert send(asked).get("staff_sent", 0) == 0
    asked.set(
        "1",
        redcap_repeat_instrument="relay_message",
        redcap_repeat_instance=str(number),
        msg_send="1",
    )
    assert send(asked)["staff_sent"] == 1


def test_an_opted_out_participant_is_not_texted_by_staff_either(asked: Rig) -> None:
    text_back(asked, "STOP")
    poll(asked)
    number = staff_types(asked, ANSWER)
    assert send(asked) == {"staff_not_sent_opted_out": 1}
    typed = instance(asked, number)
    assert typed["msg_status"] == "skipped" and typed["msg_error"].startswith("opted_out")
    assert ANSWER not in ours(asked)


def test_quiet_hours_hold_a_staff_reply_and_a_long_one_fails(asked: Rig) -> None:
    now = asked.clock.now().astimezone(asked.settings().timezone)
    window = f"{now:%H:%M}-{(now.hour + 2) % 24:02d}:00"
    staff_types(asked, ANSWER)
    assert send(asked, QUIET_HOURS=window) == {"staff_waiting": 1}
    assert ANSWER not in ours(asked)
    assert send(asked)["staff_sent"] == 1
    long = staff_types(asked, "x" * 1601)
    assert send(asked) == {"staff_not_sent_too_long": 1}
    assert instance(asked, long)["msg_status"] == "failed"


def test_a_dry_run_sends_no_staff_reply(asked: Rig) -> None:
    number = staff_types(asked, ANSWER)
    counts = Sender(dry_run=True).run_once(asked.ctx()).counts
    assert counts["dry_run_would_send"] == 1
    assert ANSWER not in ours(asked) and instance(asked, number)["msg_status"] == ""


# -- kill -9 ---------------------------------------------------------------------------------------
# The staff message's imports: its claim (0), its outcome (1); Twilio's create between.
STAFF_STEPS: list[Step] = [
    ("claim lost", "redcap", IMPORT, False, 0),
    ("claim written, answer lost", "redcap", IMPORT, True, 0),
    *[step for step in SMS_STEPS if step[1] == "twilio"],
    ("outcome lost", "redcap", IMPORT, False, 1),
    ("outcome written, answer lost", "redcap", IMPORT, True, 1),
]


@pytest.fixture
def typed(tmp_path: Path) -> Iterator[Rig]:
    """Real clock (the processes'): record 1 texted and answered, staff typed a reply."""
    for rig in start_rules_rig(tmp_path, VISIT, **LOG, **KILL_SETTINGS):
        rig.register("1")
        for module in ("services.registration_detector", "services.sms_sender"):
            assert rig.run(module, "--once", **KILL_SETTINGS).returncode == 0
        rig.twilio.inject_inbound(PHONE, rig.twilio.from_number, "Can we do Thursday?")
        assert reply_poller.run_once(rig.ctx(**KILL_SETTINGS)).counts
        assert rig.run("services.sms_sender", "--once", **KILL_SETTINGS).returncode == 0
        staff_types(rig, ANSWER)
        yield rig


@pytest.mark.parametrize("step", STAFF_STEPS, ids=[s[0] for s in STAFF_STEPS])
def test_sender_killed_at_each_step_sends_a_staff_reply_once(typed: Rig, step: Step) -> None:
    assert kill_at(typed, step), "sender never reached the step"
    for _ in range(3):
        assert typed.run("services.sms_sender", "--once", **KILL_SETTINGS).returncode == 0
        if next(r for r in thread(typed) if r["msg_text"] == ANSWER)["msg_status"] == "sms_sent":
            break
    assert typed.run("services.sms_sender", "--once", **KILL_SETTINGS).returncode == 0
    answers = [m for m in ours(typed) if m == ANSWER]
    assert len(answers) == 1
    entry = [r for r in thread(typed) if r["msg_text"] == ANSWER]
    assert len(entry) == 1 and entry[0]["msg_status"] == "sms_sent"
    sids = [m["sid"] for m in typed.sent_to(PHONE) if m["body"] == ANSWER]
    assert entry[0]["msg_sid"] == sids[0]


def test_an_email_only_study_says_why_a_staff_text_cannot_go(tmp_path: Path) -> None:
    """No rule texts, so there is no Twilio: the staff message fails, saying so; the mail the
    rule sent is on the thread."""
    for rig in start_rules_rig(tmp_path, email_rules("email"), EMAIL_MAX_PER_MINUTE="6000", **LOG):
        rig.register("1", "")
        rig.set("1", email="ada@example.org")
        registration_detector.run_once(rig.ctx(needs_twilio=False))
        assert send(rig)["sent"] == 1
        assert [(r["msg_channel"], r["msg_status"]) for r in thread(rig)] == [
            ("email", "sent_email")
        ]
        number = staff_types(rig, ANSWER)
        send(rig)
        typed = instance(rig, number)
        assert typed["msg_status"] == "failed" and typed["msg_error"].startswith("no_sms")


def test_a_staff_claim_of_the_repeated_hour_is_looked_up_from_its_first_reading(
    tmp_path: Path,
) -> None:
    """A staff message claimed and sent at 01:20 in the first pass of a fall-back hour, its
    sender killed before recording it: read back after the second 01:20 the claim looks an hour
    younger, yet the Twilio search starts from the first 01:20, so it is adopted, not sent again."""
    zone = "America/New_York"
    fall = transition(zone, fall=True)
    first, second = fall - timedelta(minutes=40), fall + timedelta(minutes=20)  # both 01:20
    for rig in start_rules_rig(tmp_path, VISIT, sim_clock=at_start(), TIMEZONE=zone, **LOG):
        at(rig, first - timedelta(hours=2))
        join(rig, "1")
        at(rig, first)
        claimed = first.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S")
        rig.set(
            "1",
            redcap_repeat_instrument="relay_message",
            redcap_repeat_instance="1",
            msg_text=ANSWER,
            msg_send="1",
            msg_status="sending",
            msg_claim="0123456789abcdef@other-host",
            msg_at=claimed,
            msg_to=PHONE,
        )
        sms = rig.ctx().sms
        assert sms is not None
        sms.send(PHONE, ANSWER)  # Twilio took it; the sender died before recording it
        at(rig, second + timedelta(minutes=3))  # past the claim timeout of its later reading
        assert send(rig).get("staff_adopted") == 1
        send(rig)
        assert ours(rig).count(ANSWER) == 1
        assert instance(rig, 1)["msg_status"] == "sms_sent"
