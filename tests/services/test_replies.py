"""Replies and opt-out end to end: the Twilio simulator's inbound log, the reply poller, REDCap,
and the sender's auto-answers; each reply recorded once, each auto-answer sent once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

import pytest

from sandbox.clock import SimClock
from services import delivery_checker, registration_detector, reply_poller
from services.sms_sender import Sender
from tests.services.conftest import START, Rig, start_rules_rig

VISIT = """
[[rule]]
name = "visit"
when = "[registration_complete] = '2'"
delay_minutes = 0
template = "Your visit is tomorrow. Reply YES to confirm or NO to cancel."
replies.confirmed = ["yes", "y", "si", "sí"]
replies.cancelled = ["no", "n"]
answer_confirmed = "Thank you, your visit is confirmed."
answer_cancelled = "Thank you. We will call you to find another time."
answer_unclear = "Sorry, please reply YES or NO."
"""
NEWS = """
[[rule]]
name = "news"
when = "[registration_complete] = '2'"
delay_minutes = 0
template = "Study news: thank you for taking part."
"""
PHONE = "+16175550100"


@pytest.fixture
def replies(tmp_path: Path) -> Iterator[Rig]:
    # Twilio's times and the services' are compared: one clock for both, at START.
    yield from start_rules_rig(tmp_path, VISIT + NEWS, sim_clock=SimClock(UTC, START))


def join(rig: Rig, record_id: str, phone: str = "(617) 555-0100") -> None:
    rig.register(record_id, phone)
    registration_detector.run_once(rig.ctx(needs_twilio=False))


def send(rig: Rig) -> dict[str, int]:
    return dict(Sender(dry_run=False).run_once(rig.ctx()).counts)


def poll(rig: Rig) -> dict[str, int]:
    return dict(reply_poller.run_once(rig.ctx()).counts)


def text_back(rig: Rig, body: str, phone: str = PHONE, media: int = 0) -> str:
    rig.sim_clock.advance(30)
    rig.clock.advance(30)
    return rig.twilio.inject_inbound(phone, rig.twilio.from_number, body, media=media)


def bodies(rig: Rig, phone: str = PHONE) -> list[str]:
    return [str(m["body"]) for m in rig.sent_to(phone)]


def test_yes_is_recorded_once_and_answered_once(replies: Rig) -> None:
    """ "Yes!" is confirmed, with its time, SID and text in REDCap; the auto-answer goes once,
    to the number that replied; polling again changes nothing."""
    join(replies, "1")
    assert send(replies)["sent"] == 2
    sid = text_back(replies, "Yes!")
    assert poll(replies) == {"recorded": 1}
    values = replies.values("1")
    assert (values["visit_reply"], values["visit_reply_sid"]) == ("confirmed", sid)
    assert values["visit_reply_text"] == "Yes!" and values["visit_reply_at"]
    assert values["visit_answer_status"] == "registered"
    assert send(replies)["sent"] == 1
    assert bodies(replies)[-1] == "Thank you, your visit is confirmed."
    assert replies.values("1")["visit_answer_status"] == "sms_sent"
    assert poll(replies) == {"already_recorded": 1}
    assert send(replies).get("sent", 0) == 0
    assert len(bodies(replies)) == 3


@pytest.mark.parametrize(
    ("said", "meaning", "answer"),
    [
        ("no.", "cancelled", "Thank you. We will call you to find another time."),
        ("  SÍ 👍 ", "confirmed", "Thank you, your visit is confirmed."),
        ("yes please", "unclear", "Sorry, please reply YES or NO."),
        ("", "unclear", "Sorry, please reply YES or NO."),
        ("🙂", "unclear", "Sorry, please reply YES or NO."),
        ("x" * 1600, "unclear", "Sorry, please reply YES or NO."),
        ("HELP", "help", None),
    ],
)
def test_what_a_reply_means_and_what_answers_it(
    replies: Rig, said: str, meaning: str, answer: str | None
) -> None:
    """Case, accents, punctuation and emoji are ignored; anything else is unclear; HELP is
    Twilio's to answer. The text is kept whole in REDCap."""
    join(replies, "1")
    send(replies)
    text_back(replies, said)
    assert poll(replies) == {"recorded": 1}
    values = replies.values("1")
    assert values["visit_reply"] == meaning and values.get("visit_reply_text", "") == said
    send(replies)
    sent = bodies(replies)
    assert sent[2:] == ([answer] if answer else [])  # after the two rules' messages


def test_an_mms_without_text_is_recorded_as_unclear(replies: Rig) -> None:
    """A photo with no text: unclear, its text field says so."""
    join(replies, "1")
    send(replies)
    text_back(replies, "", media=1)
    poll(replies)
    values = replies.values("1")
    assert values["visit_reply"] == "unclear"
    assert values["visit_reply_text"] == "(MMS: 1 media, no text)"


def test_stop_opts_out_of_every_rule_and_start_opts_back_in(replies: Rig) -> None:
    """STOP: relay_opted_out, no answer of ours (Twilio sends its own), and every rule skips
    the record (opted_out); START lifts it."""
    join(replies, "1")
    send(replies)
    stop = text_back(replies, "stop")
    poll(replies)
    values = replies.values("1")
    assert (values["relay_opted_out"], values["relay_opt_sid"]) == ("1", stop)
    assert values["visit_reply"] == "opted_out" and values.get("visit_answer_status", "") == ""
    assert send(replies).get("sent", 0) == 0
    replies.set("1", news_status="registered")  # staff requeue the news to them
    counts = send(replies)
    assert counts["not_sent_opted_out"] == 1 and replies.values("1")["news_status"] == "skipped"
    text_back(replies, "START")
    poll(replies)
    assert replies.values("1").get("relay_opted_out", "") == ""
    replies.set("1", news_status="registered")
    assert send(replies)["sent"] == 1


def test_yes_after_stop_opts_back_in_rather_than_confirming(replies: Rig) -> None:
    """YES from someone opted out is Twilio's opt-in word: opted back in, not a confirmation,
    and no auto-answer."""
    join(replies, "1")
    send(replies)
    text_back(replies, "STOP")
    poll(replies)
    text_back(replies, "yes")
    poll(replies)
    values = replies.values("1")
    assert values["visit_reply"] == "opted_in" and values.get("relay_opted_out", "") == ""
    assert values.get("visit_answer_status", "") == ""


def test_a_21610_from_twilio_opts_the_record_out(replies: Rig) -> None:
    """A STOP the poller has not seen yet: Twilio refuses the next send with 21610; the record
    is opted out and the message skipped, not failed as if the number were wrong."""
    join(replies, "1")
    replies.twilio.inject_inbound(PHONE, replies.twilio.from_number, "STOP")
    counts = send(replies)
    assert counts["skipped"] == 2
    values = replies.values("1")
    assert values["relay_opted_out"] == "1" and values["visit_status"] == "skipped"
    assert values["visit_error_code"] == "21610"


def test_unknown_numbers_and_odd_senders_are_counted_and_ignored(replies: Rig) -> None:
    """A number we never texted, a short code, an alphanumeric sender: ignored with a reason,
    nothing written."""
    join(replies, "1")
    send(replies)
    text_back(replies, "yes", phone="+16175550199")
    text_back(replies, "yes", phone="12345")
    text_back(replies, "yes", phone="ACMEBANK")
    poller = reply_poller.ReplyPoller()
    counts = dict(poller.run_once(replies.ctx()).counts)
    assert counts == {"ignored_unknown_number": 1, "ignored_odd_number": 2}
    assert "visit_reply" not in replies.values("1")
    ctx = replies.ctx()
    replies.redcap.server.reset_stats()
    assert dict(poller.run_once(ctx).counts) == {}  # remembered by this process
    assert replies.redcap.server.stats.total_requests() == 0


def test_a_reply_older_than_the_message_is_not_attributed_to_it(replies: Rig) -> None:
    """A text that arrived before we ever texted that number answers nothing of ours."""
    replies.twilio.inject_inbound(PHONE, replies.twilio.from_number, "yes")
    replies.clock.advance(600)
    replies.sim_clock.advance(600)
    join(replies, "1")
    send(replies)
    assert poll(replies) == {"ignored_older_than_messages": 1}


def test_the_idle_poller_costs_one_twilio_request_and_at_most_one_redcap(replies: Rig) -> None:
    """No inbound: one list request and nothing at REDCap; inbound all recorded: one export."""
    ctx = replies.ctx()
    replies.redcap.server.reset_stats()
    reply_poller.run_once(ctx)
    assert dict(replies.redcap.server.stats.requests) == {}
    join(replies, "1")
    send(replies)
    text_back(replies, "yes")
    poll(replies)
    replies.redcap.server.reset_stats()
    reply_poller.run_once(ctx)
    assert dict(replies.redcap.server.stats.requests) == {"record/export": 1}


def test_a_stop_is_in_the_next_staff_digest_once(tmp_path: Path) -> None:
    """With ALERT_EMAIL_TO, a STOP recorded as a reply is listed in a digest (opted_out, in
    plain words, no number), once."""
    rig_iter = start_rules_rig(
        tmp_path,
        VISIT,
        sim_clock=SimClock(UTC, START),
        ALERT_EMAIL_TO="coordinator@example.org",
        ALERT_MIN_INTERVAL_MINUTES="1",
    )
    for rig in rig_iter:
        join(rig, "1")
        sender = Sender(dry_run=False)
        sender.run_once(rig.ctx())
        text_back(rig, "STOP")
        poll(rig)
        for _ in range(3):
            rig.clock.advance(120)
            rig.sim_clock.advance(120)
            sender.run_once(rig.ctx())
        [mail] = rig.microsoft.sent(to="coordinator@example.org")
        lines = [line.strip() for line in mail.content.splitlines() if "record 1" in line]
        assert lines == [
            "record 1: opted_out: the participant replied STOP: no rule messages them until "
            "they send START"
        ]
        assert "555" not in mail.content


REMIND = """
[[rule]]
name = "remind"
when = "[registration_complete] = '2'"
delay_minutes = 0
repeat = 1
every_minutes = 60
template = "Are you coming on Friday? Reply YES or NO."
replies.confirmed = ["yes"]
replies.cancelled = ["no"]
answer_confirmed = "Thank you, see you Friday."
answer_cancelled = "Thank you for letting us know."
"""


def test_each_reply_to_a_repeated_message_is_answered_once(tmp_path: Path) -> None:
    """A series: the reply after the second message belongs to it, and gets its own answer;
    each inbound message is answered exactly once."""
    for rig in start_rules_rig(tmp_path, REMIND, sim_clock=SimClock(UTC, START)):
        join(rig, "1")
        send(rig)
        text_back(rig, "no")
        poll(rig)
        send(rig)
        rig.clock.advance(3600)
        rig.sim_clock.advance(3600)
        delivery_checker.run_once(rig.ctx())
        rig.clock.advance(62 * 60)
        rig.sim_clock.advance(62 * 60)
        assert send(rig)["sent"] == 1  # the repeat
        text_back(rig, "YES")
        assert poll(rig) == {"already_recorded": 1, "recorded": 1}
        send(rig)
        assert poll(rig) == {"already_recorded": 2}
        send(rig)
        assert bodies(rig) == [
            "Are you coming on Friday? Reply YES or NO.",
            "Thank you for letting us know.",
            "Are you coming on Friday? Reply YES or NO.",
            "Thank you, see you Friday.",
        ]
        values = rig.values("1")
        assert (values["remind_reply"], values["remind_answer_sms_count"]) == ("confirmed", "2")


def test_a_failed_auto_answer_is_in_the_staff_digest(tmp_path: Path) -> None:
    """Auto-answers are messages like any other: one that fails is listed under its rule."""
    for rig in start_rules_rig(
        tmp_path,
        VISIT,
        sim_clock=SimClock(UTC, START),
        ALERT_EMAIL_TO="coordinator@example.org",
        ALERT_MIN_INTERVAL_MINUTES="1",
    ):
        join(rig, "1")
        sender = Sender(dry_run=False)
        sender.run_once(rig.ctx())
        rig.set("1", visit_answer_status="failed", visit_answer_error_code="30007")
        for _ in range(2):
            rig.clock.advance(120)
            rig.sim_clock.advance(120)
            sender.run_once(rig.ctx())
        [mail] = rig.microsoft.sent(to="coordinator@example.org")
        assert "Rule visit_answer (1):" in mail.content
        assert "record 1: failed:" in mail.content


def test_admin_commands_name_the_auto_answer_rule(replies: Rig) -> None:
    """A failed auto-answer can be requeued by its rule name; baseline refuses it, naming the
    rule to baseline instead."""
    join(replies, "1")
    send(replies)
    replies.set("1", visit_answer_status="failed", visit_reply="confirmed")
    done = replies.run("services.admin", "requeue", "1", "--rule", "visit_answer")
    assert done.returncode == 0, done.stdout + done.stderr
    assert replies.values("1")["visit_answer_status"] == "registered"
    assert send(replies)["sent"] == 1
    assert bodies(replies)[-1] == "Thank you, your visit is confirmed."
    refused = replies.run("services.admin", "baseline", "--rule", "visit_answer")
    assert refused.returncode == 2 and "baseline rule visit instead" in refused.stderr


def test_help_after_yes_keeps_the_answer_and_its_queued_auto_answer(replies: Rig) -> None:
    """YES queues its answer; HELP arrives (a later cycle) before the sender ran: YES stays
    the reply (a settled answer), and its answer goes, once."""
    join(replies, "1")
    send(replies)
    yes = text_back(replies, "yes")
    poll(replies)
    text_back(replies, "HELP")
    assert poll(replies) == {"already_recorded": 1, "kept_answer": 1}
    values = replies.values("1")
    assert (values["visit_reply"], values["visit_reply_sid"]) == ("confirmed", yes)
    assert values["visit_answer_status"] == "registered"
    send(replies)
    assert bodies(replies)[2:] == ["Thank you, your visit is confirmed."]
