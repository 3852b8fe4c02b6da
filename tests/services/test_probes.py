"""Change probes between sweeps (messaging.probes): what REDCap is asked each cycle, and that
nothing is missed for it: the margin at the window's edge, a host clock off REDCap's, REDCap in
another zone, logic that turns true with time alone, and a restart between a probe and a sweep."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from messaging.context import build_context
from messaging.probes import MARGIN
from messaging.rules_file import rules_for
from sandbox.clock import SimClock
from sandbox.httpserver import wait_until
from sandbox.redcap.demo import build_demo_project
from services import registration_detector
from services.admin.check import clock_logic_checks
from services.sms_sender import Sender
from tests.services.conftest import (
    ROOT,
    START,
    Rig,
    at_start,
    clean_env,
    start_rig,
    start_rules_rig,
)

BOSTON = ZoneInfo("America/New_York")


@pytest.fixture
def boston(tmp_path: Path) -> Iterator[Rig]:
    """REDCap's server in Boston time, frozen at START; the services in UTC, no delay."""
    clock = SimClock(BOSTON, START.astimezone(BOSTON))
    clock.freeze()
    yield from start_rig(
        build_demo_project(), tmp_path, sim_clock=clock, REDCAP_TIMEZONE="America/New_York",
        SMS_DELAY_MINUTES="0",
    )  # fmt: skip


def _logged_at(rig: Rig, moment_offset: timedelta, record: str, phone: str) -> None:
    """Register ``record`` and mark it with REDCap's clock moved by ``moment_offset``."""
    rig.sim_clock.advance(moment_offset.total_seconds())
    rig.register(record, phone)
    registration_detector.run_once(rig.ctx(needs_twilio=False))
    rig.sim_clock.advance(-moment_offset.total_seconds())


def test_a_change_logged_at_the_margin_is_seen_one_second_earlier_waits_for_the_sweep(
    boston: Rig,
) -> None:
    """A record changed exactly MARGIN before the previous cycle's REDCap time is sent by the
    next probe, which evaluates only the changed records' rows; one changed a second before
    that is not, and the sweep SWEEP_MINUTES later sends it."""
    ctx, sender = boston.ctx(), Sender(dry_run=False)
    assert sender.run_once(ctx).counts == {}  # the sweep at START
    _logged_at(boston, -MARGIN, "1", "(617) 555-0101")
    boston.advance(30)
    work = boston.project.filter_work
    work.reset()
    assert sender.run_once(ctx).counts["sent"] == 1
    assert boston.status("1") == "sms_sent"
    assert work.per_request[0] == 1  # the probe: record 1's one row, not the project's
    _logged_at(boston, -MARGIN - timedelta(seconds=1), "2", "(617) 555-0102")
    boston.advance(30)
    assert "sent" not in sender.run_once(ctx).counts
    assert boston.status("2") == "registered"
    boston.advance(15 * 60)
    assert sender.run_once(ctx).counts["sent"] == 1  # the sweep
    assert boston.status("2") == "sms_sent"


def test_a_host_clock_ahead_of_redcap_moves_no_change_out_of_the_window(boston: Rig) -> None:
    """The services' clock ten minutes ahead of REDCap's (which keeps Boston time): the
    window comes from REDCap's own clock, so a change REDCap logs after the sweep is sent by
    the next probe."""
    boston.clock.advance(600)
    ctx, sender = boston.ctx(), Sender(dry_run=False)
    sender.run_once(ctx)
    boston.advance(20)
    boston.register("1", "(617) 555-0101")
    registration_detector.run_once(boston.ctx(needs_twilio=False))
    boston.advance(20)
    boston.project.filter_work.reset()
    assert sender.run_once(ctx).counts["sent"] == 1
    assert boston.project.filter_work.per_request[0] == 1


def test_a_delay_comes_from_the_schedule_between_sweeps(boston: Rig) -> None:
    """A registration seen by a probe with a 5-minute delay is sent on time by a later probe
    that asks REDCap about that record alone (no change was logged in between)."""
    ctx, sender = boston.ctx(SMS_DELAY_MINUTES="5"), Sender(dry_run=False)
    sender.run_once(ctx)
    boston.register("1", "(617) 555-0101")
    registration_detector.run_once(boston.ctx(needs_twilio=False))
    boston.advance(20)
    assert sender.run_once(ctx).counts == {"waiting_delay": 1}
    boston.advance(4 * 60)
    assert "sent" not in sender.run_once(ctx).counts
    boston.advance(60)
    work = boston.project.filter_work
    work.reset()
    assert sender.run_once(ctx).counts["sent"] == 1
    assert work.per_request[:2] == [0, 1]  # changes since the last cycle: none; record 1


def _sender(rig: Rig, env: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "services.sms_sender", "--env-file", str(env)],
        cwd=ROOT, env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def _exports(rig: Rig) -> int:
    return rig.redcap.server.stats.requests["record/export"]


def test_a_sender_killed_between_a_probe_and_the_sweep_loses_nothing(rig: Rig) -> None:
    """A looping sender (real clocks) probes, learns of a registration whose delay has not
    passed (in its memory only) and is killed -9; the restarted sender's first cycle is a sweep
    and the message goes, once."""
    env = rig.env_file(POLL_INTERVAL_SECONDS="0.2", SMS_DELAY_MINUTES="0.05")
    first = _sender(rig, env)
    second: subprocess.Popen[bytes] | None = None
    try:
        assert wait_until(lambda: _exports(rig) >= 2, timeout=20)  # the sweep, then a probe
        rig.register("1", "(617) 555-0101")
        registration_detector.run_once(build_context(rig.settings(), needs_twilio=False))
        seen = _exports(rig)
        assert wait_until(lambda: _exports(rig) >= seen + 2, timeout=10)  # it probed, twice
        assert rig.status("1") == "registered"  # waiting 3 s, in memory
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        second = _sender(rig, env)
        assert wait_until(lambda: rig.status("1") == "sms_sent", timeout=30)
        assert len(rig.sent_to("+16175550101")) == 1
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=10)


CLOCK_RULES = """
[[rule]]
name = "soon"
when = "[first_name] = 'Ada' and datediff([visit_datetime], 'now', 'h') <= 24"
template = "Your visit is tomorrow."

[[rule]]
name = "urgent"
when = "[first_name] = 'Bo' and datediff([visit_datetime], 'now', 'h') <= 24"
check_every_cycle = true
template = "Your visit is tomorrow."
"""


def _status(rig: Rig, record: str, rule: str) -> str:
    return rig.values(record).get(f"{rule}_status", "")


@pytest.fixture
def clocked(tmp_path: Path) -> Iterator[Rig]:
    yield from start_rules_rig(tmp_path, CLOCK_RULES, sim_clock=at_start(), TIMEZONE="UTC")


def test_a_when_that_reads_the_clock_is_found_at_the_sweep_or_every_cycle_if_asked(
    clocked: Rig,
) -> None:
    """Visits 24 h 5 min ahead of the sweep: nothing at the sweep; six minutes later (no change
    logged) a probe finds the record of the rule with check_every_cycle, not the other's; the
    next sweep finds that one."""
    for record, name in (("1", "Ada"), ("2", "Bo")):
        clocked.register(record, f"(617) 555-010{record}")
        clocked.set(record, first_name=name, visit_datetime="2026-03-03 12:08")
    clocked.advance(3 * 60)  # the changes fall before the next probe's window
    ctx = clocked.ctx(needs_twilio=False)
    registration_detector.run_once(ctx)
    assert _status(clocked, "1", "soon") == _status(clocked, "2", "urgent") == ""
    clocked.advance(6 * 60)
    registration_detector.run_once(ctx)
    assert _status(clocked, "2", "urgent") == "registered"
    assert _status(clocked, "1", "soon") == ""
    clocked.advance(10 * 60)
    registration_detector.run_once(ctx)
    assert _status(clocked, "1", "soon") == "registered"


def test_once_probe_sees_its_window_and_once_sweep_the_rest(rig: Rig) -> None:
    """``--once --probe --window-minutes 1`` marks a registration made just now, not one logged
    five minutes ago; ``--once --sweep`` marks that one; ``--probe`` without its window is a
    one-line configuration error."""
    rig.sim_clock.advance(-300)
    rig.register("1", "(617) 555-0101")
    rig.sim_clock.advance(300)
    rig.register("2", "(617) 555-0102")
    detector = "services.registration_detector"
    bad = rig.run(detector, "--once", "--probe")
    assert bad.returncode == 2
    assert "--window-minutes" in bad.stderr and "Traceback" not in bad.stderr
    # A probe run on a multiple of SWEEP_MINUTES sweeps: pick one this minute and the next are not.
    minute = int(time.time() // 60)
    every = next(k for k in (7, 11, 13, 17) if minute % k not in (0, k - 1))
    probe = rig.run(
        detector, "--once", "--probe", "--window-minutes", "1", SWEEP_MINUTES=str(every)
    )
    assert probe.returncode == 0
    assert (rig.status("1"), rig.status("2")) == ("", "registered")
    assert rig.run(detector, "--once", "--sweep").returncode == 0
    assert rig.status("1") == "registered"


def test_admin_check_names_the_rules_that_read_the_clock_and_their_latency(clocked: Rig) -> None:
    """``admin check`` says which rules' when reads the clock: one found at the sweep (up to
    SWEEP_MINUTES late), one checked every cycle; a rule that does not read it is not listed."""
    settings = clocked.settings(SWEEP_MINUTES="20")
    checks = {c.name: c.detail for c in clock_logic_checks(settings, rules_for(settings))}
    assert set(checks) == {"timing soon", "timing urgent"}
    assert "up to SWEEP_MINUTES=20 min" in checks["timing soon"]
    assert "check_every_cycle = true: found within POLL_INTERVAL" in checks["timing urgent"]
