"""Outages wait, they do not fail: Twilio's and Graph's 429s and outages spend no attempt, the
sender holds that channel back (honouring Retry-After) while the other goes on, and a record
fails for an outage only after SEND_GIVE_UP_HOURS. One Sender lives through each test, as in
a running service; time is the rig's manual clock, moved a poll interval per cycle."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.errors import RedcapUnavailable
from sandbox.faults import Fault
from sandbox.redcap.demo import build_demo_project
from services import registration_detector
from services.sms_sender import Sender
from tests.services.conftest import Rig, at_start, start_rig, start_rules_rig

POLL = 10.0  # POLL_INTERVAL_SECONDS of these rigs
PHONES = [f"+1617555{n:04d}" for n in range(100, 105)]
TWO_CHANNELS = """
[[rule]]
name = "text"
when = "[registration_complete] = '2'"
delay_minutes = 0
survey = "interest_form"
template = "Hi {field:first_name}: {survey_link}"

[[rule]]
name = "mail"
when = "[registration_complete] = '2'"
delay_minutes = 0
survey = "interest_form"
channel = "email"
subject = "Your survey"
email_template = "Your survey: {survey_link}"
"""


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    yield from start_rig(
        build_demo_project(), tmp_path, sim_clock=at_start(), POLL_INTERVAL_SECONDS=f"{POLL:g}"
    )


@pytest.fixture
def two(tmp_path: Path) -> Iterator[Rig]:
    yield from start_rules_rig(
        tmp_path,
        TWO_CHANNELS,
        sim_clock=at_start(),
        EMAIL_MAX_PER_MINUTE="6000",
        POLL_INTERVAL_SECONDS=f"{POLL:g}",
    )


def join(rig: Rig, n: int, **values: str) -> list[str]:
    ids = [str(i) for i in range(1, n + 1)]
    for rid, phone in zip(ids, PHONES, strict=False):
        rig.register(rid, phone)
        if values:
            rig.set(rid, **values)
    registration_detector.run_once(rig.ctx(needs_twilio=False))
    return ids


def run_for(
    rig: Rig, sender: Sender, seconds: float, *, at: float = 0.0, **overrides: str
) -> tuple[Counter[str], list[str]]:
    """Cycles of one sender, a poll interval apart, for ``seconds``; their counts summed and
    any record seen ``failed`` (checked after every cycle)."""
    total: Counter[str] = Counter()
    failed: list[str] = []
    ctx = rig.ctx(**overrides)
    elapsed = 0.0
    while elapsed < seconds:
        total.update(sender.run_once(ctx).counts)
        failed += [rid for rid in rig.project.records if rig.status(rid) == "failed"]
        rig.advance(POLL)
        elapsed += POLL
    return total, failed


def rate_limited(rig: Rig) -> Fault:
    """Every Twilio create answered 429 until the fault is cleared."""
    return rig.twilio.server.faults.add(
        Fault(kind="status", status=429, times=1_000_000, match={"op": "create"})
    )


def test_two_minutes_of_twilio_429s_fail_no_one_and_spend_no_attempt(rig: Rig) -> None:
    """Twilio 429s every create for 2 minutes, then recovers: the five participants are each
    texted exactly once, none is ever failed, no attempt is spent, and the sender probes with
    one create per wait (doubling), not one per record per cycle."""
    ids = join(rig, 5)
    rig.advance(61)
    fault = rate_limited(rig)
    counts, failed = run_for(rig, Sender(dry_run=False), 120)
    assert failed == [] and counts["sent"] == 0
    assert {rig.status(rid) for rid in ids} == {"registered"}
    assert rig.values("1")["pipeline_error_code"] == "unavailable"  # what a coordinator sees
    assert "no attempt spent" in rig.values("1")["pipeline_error_message"]
    probes = 1_000_000 - fault.times
    assert 2 <= probes <= 4  # at 0, ~10-12, ~30-37, ~70-87 s: the wait doubles from the poll
    rig.twilio.server.faults.clear()
    counts, failed = run_for(rig, Sender(dry_run=False), 300)
    assert failed == [] and counts["sent"] == 5
    for rid, phone in zip(ids, PHONES, strict=False):
        assert len(rig.sent_to(phone)) == 1
        values = rig.values(rid)
        assert (values["pipeline_status"], values["pipeline_sms_attempts"]) == ("sms_sent", "1")
        assert values.get("pipeline_error_code", "") == ""


def test_an_outage_longer_than_send_give_up_hours_fails_with_its_own_code(rig: Rig) -> None:
    """With SEND_GIVE_UP_HOURS=1 and Twilio refusing for 2 hours: no one is failed in the first
    hour; then each record the sender tries fails as ``unavailable`` (not ``max_attempts``), and
    none was texted."""
    ids = join(rig, 3)
    rig.advance(61)
    rate_limited(rig)
    sender = Sender(dry_run=False)
    _, failed = run_for(rig, sender, 3590, SEND_GIVE_UP_HOURS="1")
    assert failed == []
    counts, _ = run_for(rig, sender, 3600, SEND_GIVE_UP_HOURS="1")
    assert counts["gave_up"] == 3
    for rid in ids:
        values = rig.values(rid)
        assert (values["pipeline_status"], values["pipeline_error_code"]) == (
            "failed",
            "unavailable",
        )
        assert "SEND_GIVE_UP_HOURS" in values["pipeline_error_message"]
    assert rig.twilio.sent() == []


def test_a_twilio_outage_holds_sms_back_while_email_goes_on(two: Rig) -> None:
    """Twilio down: the e-mail rule's participants are mailed in the same cycles; the text
    rule's wait, and go once Twilio is back."""
    ids = join(two, 3, email="ada@example.org")
    rate_limited(two)
    counts, failed = run_for(two, Sender(dry_run=False), 60)
    assert failed == [] and counts["sent"] == 3  # the three e-mails
    assert len(two.mailed_to("ada@example.org")) == 3
    assert {two.values(rid)["text_status"] for rid in ids} == {"registered"}
    two.twilio.server.faults.clear()
    counts, _ = run_for(two, Sender(dry_run=False), 30)
    assert counts["sent"] == 3
    assert {two.values(rid)["text_status"] for rid in ids} == {"sms_sent"}
    assert len(two.mailed_to("ada@example.org")) == 3  # never twice


def test_graph_retry_after_600_is_honoured_and_the_mail_goes_after_it(two: Rig) -> None:
    """Graph answers 429 with Retry-After: 600: no sendMail is tried again for 600 s, nothing
    is failed, and the mail goes once afterwards."""
    [rid] = join(two, 1, email="ada@example.org")
    two.microsoft.throttle_next(1, retry_after=600)
    sender = Sender(dry_run=False)
    counts, failed = run_for(two, sender, 590)
    assert failed == [] and counts["deferred"] == 1
    assert two.microsoft.requests("sendMail") == 1  # the throttled one only
    assert two.values(rid)["mail_status"] == "registered"
    counts, failed = run_for(two, sender, 200)
    assert failed == [] and counts["sent"] == 1
    assert two.values(rid)["mail_status"] == "sent_email"
    assert len(two.mailed_to("ada@example.org")) == 1


def test_lost_answers_still_count_toward_sms_max_attempts(rig: Rig) -> None:
    """SMS_MAX_ATTEMPTS counts only sends whose answer was lost: three 500s on create (each
    reconciled as not sent) fail the record as ``max_attempts``."""
    [rid] = join(rig, 1)
    rig.advance(61)
    rig.twilio.server.faults.add(Fault(kind="status", status=500, times=3, match={"op": "create"}))
    for _ in range(3):
        Sender(dry_run=False).run_once(rig.ctx())  # the 500: outcome unknown
        rig.advance(121)
        Sender(dry_run=False).run_once(rig.ctx())  # reconciled: not sent, an attempt used
    values = rig.values(rid)
    assert (values["pipeline_status"], values["pipeline_error_code"]) == ("failed", "max_attempts")
    assert rig.twilio.sent() == []


def test_a_redcap_outage_with_sends_in_flight_loses_and_doubles_no_one(rig: Rig) -> None:
    """REDCap goes down for 30 minutes right after the sender claimed and texted a chunk (the
    outcome write fails): once it is back, each claim is matched to its Twilio message and
    adopted; every participant was texted exactly once, none failed."""
    ids = join(rig, 5)
    rig.advance(61)
    # The cycle's export, its survey-link requests and the claim go through; then REDCap fails.
    outage = Fault(kind="status", status=503, times=1_000_000, match={"content": "record",
                   "action": "import"}, skip=1)  # fmt: skip
    rig.redcap.server.faults.add(outage)
    sender = Sender(dry_run=False)
    with pytest.raises(RedcapUnavailable):
        sender.run_once(rig.ctx())
    assert len(rig.twilio.sent()) == 5  # in flight: texted, not recorded
    assert {rig.status(rid) for rid in ids} == {"sending"}
    rig.redcap.server.faults.clear()
    rig.redcap.server.faults.add(Fault(kind="status", status=503, times=1_000_000))
    rig.advance(600)
    with pytest.raises(RedcapUnavailable):
        sender.run_once(rig.ctx())
    rig.redcap.server.faults.clear()
    rig.advance(1200)
    counts, failed = run_for(rig, sender, 30)
    assert failed == [] and counts["reconcile_adopted"] == 5
    for rid, phone in zip(ids, PHONES, strict=False):
        assert rig.status(rid) == "sms_sent" and len(rig.sent_to(phone)) == 1
