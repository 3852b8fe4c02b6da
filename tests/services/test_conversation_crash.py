"""kill -9 of the sender and of the reply poller at every write of the conversation log: each
message and each text on the record's thread exactly once (none twice, none missing), each
message sent once. Real processes on the real clock, restarted as systemd would."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from services import registration_detector
from tests.services.conftest import Rig, start_rules_rig
from tests.services.killing import IMPORT, KILL_SETTINGS, Step, kill_at
from tests.services.replying import PHONE, VISIT
from tests.services.test_conversation import thread

SENDER, POLLER = "services.sms_sender", "services.reply_poller"
# The sender's imports for one message: the claim, the log entry (before the outcome), the
# outcome; each lost before REDCap applies it, or applied with the answer lost.
SENDER_STEPS: list[Step] = [
    ("claim lost", "redcap", IMPORT, False, 0),
    ("claim written, answer lost", "redcap", IMPORT, True, 0),
    ("log entry lost", "redcap", IMPORT, False, 1),
    ("log entry written, answer lost", "redcap", IMPORT, True, 1),
    ("outcome lost", "redcap", IMPORT, False, 2),
    ("outcome written, answer lost", "redcap", IMPORT, True, 2),
]
# The poller's one import: the reply, its auto-answer, the replies-read note and the text's
# log entry together.
POLLER_STEPS: list[Step] = [
    ("reply import lost", "redcap", IMPORT, False, 0),
    ("reply imported, answer lost", "redcap", IMPORT, True, 0),
]


@pytest.fixture
def registered(tmp_path: Path) -> Iterator[Rig]:
    """Record 1 registered, due now, with the conversation log on."""
    for rig in start_rules_rig(tmp_path, VISIT, CONVERSATION_LOG="1", **KILL_SETTINGS):
        rig.register("1")
        registration_detector.run_once(rig.ctx(needs_twilio=False))
        yield rig


def run(rig: Rig, module: str) -> None:
    done = rig.run(module, "--once", timeout=30, **KILL_SETTINGS)
    assert done.returncode == 0, done.stderr


def ours(rig: Rig) -> list[dict[str, object]]:
    return [m for m in rig.sent_to(PHONE) if m["direction"] == "outbound-api"]


@pytest.mark.parametrize("step", SENDER_STEPS, ids=[s[0] for s in SENDER_STEPS])
def test_sender_killed_at_each_write_logs_the_message_once(registered: Rig, step: Step) -> None:
    assert kill_at(registered, step), "sender never reached the step"
    for _ in range(3):  # a stale claim takes a cycle to reconcile
        run(registered, SENDER)
        if registered.values("1").get("visit_status") == "sms_sent":
            break
    run(registered, SENDER)
    sent = ours(registered)
    assert len(sent) == 1
    rows = thread(registered)
    assert [(r["msg_direction"], r["msg_sid"]) for r in rows] == [("out", sent[0]["sid"])]
    assert rows[0]["msg_text"] == sent[0]["body"]


@pytest.mark.parametrize("step", POLLER_STEPS, ids=[s[0] for s in POLLER_STEPS])
def test_poller_killed_at_its_import_logs_the_text_once(registered: Rig, step: Step) -> None:
    run(registered, SENDER)
    question = registered.twilio.inject_inbound(
        PHONE, registered.twilio.from_number, "Is parking free?"
    )
    assert kill_at(registered, step, module=POLLER), "poller never reached the step"
    run(registered, POLLER)
    run(registered, POLLER)
    texts = [r for r in thread(registered) if r["msg_direction"] == "in"]
    assert [(r["msg_sid"], r["msg_text"], r["msg_answer"]) for r in texts] == [
        (question, "Is parking free?", "unclear")
    ]
    assert registered.values("1")["relay_conversation_waiting"]
