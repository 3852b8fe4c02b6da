"""Delivery checker: Twilio's final word lands in REDCap; silence becomes unconfirmed."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path

import pytest

from sandbox.clock import SimClock
from services import delivery_checker, registration_detector, reply_poller
from services.sms_sender import Sender
from tests.services.conftest import START, Rig, start_rules_rig


def sent(rig: Rig, phone: str) -> None:
    rig.register("1", phone)
    registration_detector.run_once(rig.ctx(needs_twilio=False))
    rig.advance(61)
    Sender(dry_run=False).run_once(rig.ctx())
    assert rig.status("1") == "sms_sent"


@pytest.mark.parametrize(
    ("phone", "status", "code"),
    [
        ("+16175550100", "delivered", ""),
        ("+15005553003", "undelivered", "30003"),
        ("+15005553007", "undelivered", "30007"),
        ("+15005553001", "failed", "30001"),
    ],
)
def test_final_outcome_is_recorded(rig: Rig, phone: str, status: str, code: str) -> None:
    """delivered / undelivered / failed land in pipeline_status with Twilio's error code."""
    sent(rig, phone)
    rig.sim_clock.advance(30)  # Twilio's side of time: the message reaches its end
    result = delivery_checker.run_once(rig.ctx())
    assert result.counts[status] == 1
    values = rig.values("1")
    assert values["pipeline_status"] == status
    assert values["pipeline_delivery_status"] == status
    assert values.get("pipeline_error_code", "") == code
    assert values["pipeline_delivery_checked_at"]


def test_silence_becomes_unconfirmed_after_the_limit(timed_rig: Rig) -> None:
    """A message stuck in 'sent' is unconfirmed after DELIVERY_CHECK_MAX_HOURS, not resent."""
    rig = timed_rig
    sent(rig, "+15005553000")
    rig.sim_clock.advance(30)
    assert delivery_checker.run_once(rig.ctx()).counts["pending"] == 1
    assert rig.status("1") == "sms_sent"
    rig.advance(73 * 3600)
    delivery_checker.run_once(rig.ctx())
    assert rig.status("1") == "unconfirmed"
    assert len(rig.sent_to("+15005553000")) == 1


def test_unchanged_status_writes_nothing(rig: Rig) -> None:
    """A message still in flight costs no REDCap write (the REDCap log stays quiet)."""
    sent(rig, "+15005553000")
    rig.sim_clock.advance(30)
    ctx = rig.ctx()
    delivery_checker.run_once(ctx)
    rig.redcap.server.reset_stats()
    delivery_checker.run_once(ctx)
    assert rig.redcap.server.stats.total_requests() == 1


ANSWERING = """
[[rule]]
name = "visit"
when = "[registration_complete] = '2'"
delay_minutes = 0
template = "Your visit is tomorrow. Reply YES to confirm or NO to cancel."
replies.confirmed = ["yes"]
answer_confirmed = "Thank you, your visit is confirmed."
"""


def test_an_auto_answer_gets_its_delivery_outcome_too(tmp_path: Path) -> None:
    """The auto-answer rule (visit_answer) is checked like any rule: delivered, not left at
    sms_sent for ever."""
    for rig in start_rules_rig(tmp_path, ANSWERING, sim_clock=SimClock(UTC, START)):
        rig.register("1", "+16175550100")
        registration_detector.run_once(rig.ctx(needs_twilio=False))
        Sender(dry_run=False).run_once(rig.ctx())
        rig.clock.advance(30)
        rig.sim_clock.advance(30)
        rig.twilio.inject_inbound("+16175550100", rig.twilio.from_number, "yes")
        reply_poller.run_once(rig.ctx())
        Sender(dry_run=False).run_once(rig.ctx())
        assert rig.values("1")["visit_answer_status"] == "sms_sent"
        rig.clock.advance(60)
        rig.sim_clock.advance(60)
        delivery_checker.run_once(rig.ctx())
        values = rig.values("1")
        assert (values["visit_status"], values["visit_answer_status"]) == ("delivered", "delivered")
