"""admin status for rules that take replies: latest reply per participant by meaning, the
auto-answers sent, and how many participants opted out; in text and --json, in one export."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

import pytest

from sandbox.clock import SimClock
from services import registration_detector, reply_poller
from services.admin.status import funnel
from services.sms_sender import Sender
from tests.services.conftest import START, Rig, start_rules_rig

# The rig's messages went at START, long before the real clock the admin process reads: the
# health may be unhealthy (1) here; test_admin_health.py pins it.
HEALTH_EXITS = (0, 1)

RULES = """
[[rule]]
name = "visit"
when = "[registration_complete] = '2'"
delay_minutes = 0
template = "Your visit is tomorrow. Reply YES to confirm or NO to cancel."
replies.confirmed = ["yes", "si"]
replies.cancelled = ["no"]
answer_confirmed = "Thank you, your visit is confirmed."
answer_cancelled = "Thank you. We will call you to find another time."
answer_unclear = "Sorry, please reply YES or NO."

[[rule]]
name = "news"
when = "[registration_complete] = '2'"
delay_minutes = 0
template = "Study news: thank you for taking part."
"""
# Record id -> what the participant texts back, in order.
SAID = {
    "1": ["yes", "no"],  # changes their mind: two answers, the latest reply counts
    "2": ["NO!"],
    "3": ["STOP"],
    "4": ["maybe"],
    "5": ["HELP"],
    "6": ["STOP", "START"],
}


def phone(record_id: str) -> str:
    return f"+1617555010{record_id}"


@pytest.fixture
def answered(tmp_path: Path) -> Iterator[Rig]:
    """Six participants texted by both rules, then replying as SAID, each reply recorded and
    every auto-answer sent."""
    for rig in start_rules_rig(tmp_path, RULES, sim_clock=SimClock(UTC, START)):
        for record_id in SAID:
            rig.register(record_id, phone(record_id))
        registration_detector.run_once(rig.ctx(needs_twilio=False))
        sender = Sender(dry_run=False)
        assert sender.run_once(rig.ctx()).counts["sent"] == 12
        for turn in range(2):
            for record_id, texts in SAID.items():
                if turn < len(texts):
                    rig.sim_clock.advance(30)
                    rig.clock.advance(30)
                    rig.twilio.inject_inbound(phone(record_id), rig.twilio.from_number, texts[turn])
            assert reply_poller.run_once(rig.ctx()).counts["recorded"] >= 1
            sender.run_once(rig.ctx())
        yield rig


def test_status_json_counts_replies_answers_and_opt_outs(answered: Rig) -> None:
    """--json: per reply rule its participants' latest reply by meaning and the auto-answers
    Twilio took (every answer, 1's two included); the rule without replies has none; opted out
    counts who is opted out now (6 opted back in)."""
    done = answered.run("services.admin", "status", "--json")
    assert done.returncode in HEALTH_EXITS, done.stderr
    data = json.loads(done.stdout)
    visit = data["rules"]["visit"]
    assert visit["replies"] == {
        "by_meaning": {
            "confirmed": 0,
            "cancelled": 2,
            "unclear": 1,
            "ambiguous": 0,
            "help": 1,
            "opted_out": 1,
            "opted_in": 1,
        },
        "auto_answers_sent": 4,  # 1 yes, 1 no, 2 no, 4 maybe; never STOP, START or HELP
    }
    assert "replies" not in data["rules"]["news"]
    assert data["opted_out"] == 1 and data["records"] == 6


def test_status_text_says_it_in_words_without_numbers_or_texts(answered: Rig) -> None:
    """The text report: one opted-out line for the project, the replies and answers under
    the rule that takes them; no phone number and no reply text."""
    done = answered.run("services.admin", "status")
    assert done.returncode in HEALTH_EXITS, done.stderr
    lines = done.stdout.splitlines()
    assert "opted out (replied STOP, or Twilio refused with 21610): 1" in lines
    visit = lines.index("rule visit:")
    news = lines.index("rule news:")
    mine = lines[visit:news]
    assert (
        "latest reply per participant: confirmed 0, cancelled 2, unclear 1, ambiguous 0, "
        "help 1, opted_out 1, opted_in 1" in mine
    )
    assert "auto-answers sent: 4" in mine
    assert not any(line.startswith(("latest reply", "auto-answers")) for line in lines[news:])
    assert "555010" not in done.stdout and "maybe" not in done.stdout


def test_status_is_still_one_export(answered: Rig) -> None:
    """Replies, auto-answers and opt-out come in the funnel's one export."""
    ctx = answered.ctx(needs_twilio=False)
    answered.redcap.server.reset_stats()
    data = funnel(ctx)
    assert dict(answered.redcap.server.stats.requests) == {"record/export": 1}
    assert data["rules"]["visit"]["replies"]["auto_answers_sent"] == 4


def test_a_project_without_replies_shows_none_of_it(tmp_path: Path) -> None:
    """No rule takes replies and no opt-out fields: no reply lines, opted_out is null."""
    news = RULES[RULES.index('[[rule]]\nname = "news"') :]
    for rig in start_rules_rig(tmp_path, news):
        rig.register("1", phone("1"))
        data = json.loads(rig.run("services.admin", "status", "--json").stdout)
        assert data["opted_out"] is None and "replies" not in data["rules"]["news"]
        text = rig.run("services.admin", "status").stdout
        assert "opted out" not in text and "latest reply" not in text
