"""Daylight saving, both transitions, in zones of both hemispheres: times are stored as local
wall-clock text without an offset, so in the hour a fall-back repeats one text names two
instants. A claim must never look older than it is (a create still in flight would be
reconciled as unsent and sent again), and a delay or a repeat must never end early.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from common.clock import ManualClock
from common.field_types import parse_time
from sandbox.redcap.demo import build_demo_project
from services import delivery_checker, registration_detector
from services.sms_sender import Sender
from tests.services.conftest import Rig, at_start, start_rig, start_rules_rig
from tests.services.killing import claim_and_die

ZONES = ("America/New_York", "Europe/London", "Australia/Sydney", "America/Santiago")
PHONE = "+16175550100"


def transition(zone: str, *, fall: bool) -> datetime:
    """The 2026 instant (UTC) at which ``zone`` falls back (or springs forward)."""
    tz = ZoneInfo(zone)
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    while moment.year == 2026:
        before = (moment - timedelta(hours=1)).astimezone(tz).utcoffset()
        after = moment.astimezone(tz).utcoffset()
        assert before is not None and after is not None
        if (after < before) if fall else (after > before):
            return moment
        moment += timedelta(hours=1)
    raise AssertionError(f"{zone} changes no clocks in 2026")


def at(rig: Rig, moment: datetime) -> None:
    """The services' and the simulators' clocks both at ``moment``."""
    rig.clock = ManualClock(moment)
    rig.sim_clock.freeze(moment)


@pytest.fixture(params=ZONES)
def zoned(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Rig]:
    yield from start_rig(
        build_demo_project(),
        tmp_path,
        sim_clock=at_start(),
        TIMEZONE=request.param,
        SMS_DELAY_MINUTES="60",
        SMS_CLAIM_TIMEOUT_SECONDS="120",
    )


def zone(rig: Rig) -> ZoneInfo:
    return ZoneInfo(rig.env["TIMEZONE"])


@pytest.mark.parametrize("zone_name", ZONES)
def test_a_time_of_the_repeated_hour_reads_as_its_later_instant(zone_name: str) -> None:
    """The text of the repeated hour: the later instant for ages and delays, the earlier with
    earliest; outside that hour one instant either way."""
    tz = ZoneInfo(zone_name)
    second = transition(zone_name, fall=True) + timedelta(minutes=30)  # in the repeated hour
    text = second.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
    assert parse_time(text, tz) == second
    assert parse_time(text, tz, earliest=True) == second - timedelta(hours=1)
    plain = (second + timedelta(hours=3)).astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
    assert parse_time(plain, tz) == parse_time(plain, tz, earliest=True)


def test_a_claim_of_the_repeated_hour_is_not_stale_after_30_seconds(zoned: Rig) -> None:
    """A claim written in the second pass of the repeated hour, 30 s later: still a fresh claim
    (nothing asked of Twilio, nothing sent); past the claim timeout it is settled once."""
    rig = zoned
    repeated = transition(rig.env["TIMEZONE"], fall=True) + timedelta(minutes=20)
    at(rig, repeated - timedelta(hours=2))
    rig.register("1", "(617) 555-0100")
    registration_detector.run_once(rig.ctx(needs_twilio=False))
    at(rig, repeated)
    claim_and_die(rig.ctx(), "1")  # claimed at the second 01:20 (or the zone's repeated hour)
    rig.advance(30)
    rig.twilio.server.reset_stats()
    counts = dict(Sender(dry_run=False).run_once(rig.ctx()).counts)
    assert not any(key.startswith("reconcile_") for key in counts), counts
    assert rig.twilio.server.stats.requests.get("messages/GET/list", 0) == 0
    assert rig.status("1") == "sending" and rig.sent_to(PHONE) == []
    rig.advance(100)
    counts = dict(Sender(dry_run=False).run_once(rig.ctx()).counts)
    assert counts == {"reconcile_interrupted": 1}  # proved unsent: given back, no attempt used
    assert Sender(dry_run=False).run_once(rig.ctx()).counts["sent"] == 1
    assert len(rig.sent_to(PHONE)) == 1


def test_a_delay_from_the_repeated_hour_never_ends_early(zoned: Rig) -> None:
    """Registered in the second pass of the repeated hour with SMS_DELAY_MINUTES=60: not sent
    30 minutes later; sent once the full hour has passed (it may wait an hour more, never less)."""
    rig = zoned
    repeated = transition(rig.env["TIMEZONE"], fall=True) + timedelta(minutes=10)
    at(rig, repeated)
    rig.register("1", "(617) 555-0100")
    registration_detector.run_once(rig.ctx(needs_twilio=False))
    rig.advance(30 * 60)
    assert Sender(dry_run=False).run_once(rig.ctx()).counts.get("sent", 0) == 0
    rig.advance(31 * 60)
    assert Sender(dry_run=False).run_once(rig.ctx()).counts.get("sent", 0) == 1


def test_a_delay_across_spring_forward_counts_elapsed_time(zoned: Rig) -> None:
    """Registered 20 minutes before the clocks spring forward, a 60-minute delay: sent after 60
    minutes of elapsed time, not 60 of the clock's (which skips an hour)."""
    rig = zoned
    jump = transition(rig.env["TIMEZONE"], fall=False)
    at(rig, jump - timedelta(minutes=20))
    rig.register("1", "(617) 555-0100")
    registration_detector.run_once(rig.ctx(needs_twilio=False))
    rig.advance(50 * 60)
    assert Sender(dry_run=False).run_once(rig.ctx()).counts.get("sent", 0) == 0
    rig.advance(11 * 60)
    assert Sender(dry_run=False).run_once(rig.ctx()).counts.get("sent", 0) == 1


REPEAT = """
[[rule]]
name = "remind"
when = "[registration_complete] = '2'"
delay_minutes = 0
repeat = 1
every_minutes = 60
template = "Your survey is waiting."
"""


@pytest.mark.parametrize("zone_name", ZONES)
@pytest.mark.parametrize("fall", [True, False], ids=["fall back", "spring forward"])
def test_a_repeat_across_a_change_waits_its_full_interval(
    tmp_path: Path, zone_name: str, fall: bool
) -> None:
    """The first message 10 minutes into the change (the repeated hour's second pass, or just
    after the jump), every_minutes = 60: the repeat is not sent 50 minutes later, and is once
    the hour has passed."""
    for rig in start_rules_rig(tmp_path, REPEAT, sim_clock=at_start(), TIMEZONE=zone_name):
        at(rig, transition(zone_name, fall=fall) + timedelta(minutes=10))
        rig.register("1", "(617) 555-0100")
        registration_detector.run_once(rig.ctx(needs_twilio=False))
        assert Sender(dry_run=False).run_once(rig.ctx()).counts["sent"] == 1
        rig.advance(60)
        delivery_checker.run_once(rig.ctx())  # delivered: the series may go on
        rig.advance(49 * 60)
        assert Sender(dry_run=False).run_once(rig.ctx()).counts.get("sent", 0) == 0
        rig.advance(11 * 60)
        assert Sender(dry_run=False).run_once(rig.ctx()).counts.get("sent", 0) == 1
