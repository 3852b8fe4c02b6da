"""Delivery checker: Twilio's final word lands in REDCap; silence becomes unconfirmed."""

from __future__ import annotations

import pytest

from services import delivery_checker, registration_detector
from services.sms_sender import Sender
from tests.services.conftest import Rig


def sent(rig: Rig, phone: str) -> None:
    rig.register("1", phone)
    registration_detector.run_once(rig.ctx(needs_twilio=False))
    rig.clock.advance(61)
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


def test_silence_becomes_unconfirmed_after_the_limit(rig: Rig) -> None:
    """A message stuck in 'sent' is unconfirmed after DELIVERY_CHECK_MAX_HOURS, not resent."""
    sent(rig, "+15005553000")
    rig.sim_clock.advance(30)
    assert delivery_checker.run_once(rig.ctx()).counts["pending"] == 1
    assert rig.status("1") == "sms_sent"
    rig.clock.advance(73 * 3600)
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
