"""admin status health: each finding appears when its condition holds and not otherwise; the
exit codes; the JSON shape; still one REDCap export (and one Twilio list for replies)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from common.clock import ManualClock
from sandbox.clock import SimClock
from sandbox.redcap.demo import build_demo_project
from services import delivery_checker, registration_detector, reply_poller
from services.admin.health import FIRST_REPORT
from services.admin.status import EXIT_UNHEALTHY, command_status, funnel
from services.sms_sender import Sender
from tests.services.conftest import START, Rig, start_rig, start_rules_rig
from tests.services.killing import claim_and_die
from tests.services.test_admin_replies import RULES, phone

SLACK = 5 * 2 + 5 * 60  # 5 poll intervals of the rig's 2 s, plus the 5 minute margin
PHONE = "+16175550100"


@pytest.fixture
def timed(tmp_path: Path) -> Iterator[Rig]:
    """The demo project with the simulators on the services' clock (START)."""
    yield from start_rig(build_demo_project(), tmp_path, sim_clock=SimClock(UTC, START))


@pytest.fixture
def replying(tmp_path: Path) -> Iterator[Rig]:
    """Rules visit (takes replies, auto-answers) and news; participant 1 texted by both."""
    for rig in start_rules_rig(tmp_path, RULES, sim_clock=SimClock(UTC, START)):
        rig.register("1", phone("1"))
        registration_detector.run_once(rig.ctx(needs_twilio=False))
        assert Sender(dry_run=False).run_once(rig.ctx()).counts["sent"] == 2
        yield rig


def advance(rig: Rig, seconds: float) -> None:
    rig.clock.advance(seconds)
    rig.sim_clock.advance(seconds)


def health(rig: Rig, **overrides: str) -> dict[str, Any]:
    ctx = rig.ctx(**overrides)
    return dict(funnel(ctx, sms=ctx.sms)["health"])


def found(rig: Rig, **overrides: str) -> list[tuple[str, str, int, str]]:
    return [
        (f["check"], f["rule"], f["count"], f["oldest_record"])
        for f in health(rig, **overrides)["findings"]
    ]


def registered(rig: Rig, *records: str) -> None:
    for record_id in records:
        rig.register(record_id, PHONE)
    registration_detector.run_once(rig.ctx(needs_twilio=False))


def test_overdue_appears_past_delay_plus_slack_and_goes_once_sent(timed: Rig) -> None:
    """registered and due past SMS_DELAY_MINUTES + slack (+1 s per record of backlog at
    SMS_MAX_PER_SECOND=1): overdue, with the oldest record and its age; sent: gone."""
    registered(timed, "1")
    advance(timed, 60 + SLACK - 5)
    assert found(timed) == []
    advance(timed, 10)
    [finding] = health(timed)["findings"]
    assert (finding["check"], finding["rule"], finding["count"]) == ("overdue", "pipeline", 1)
    assert finding["oldest_record"] == "1" and finding["oldest_minutes"] == 5.2
    assert "sender" in finding["fix"]
    Sender(dry_run=False).run_once(timed.ctx())
    assert found(timed) == []


def test_a_record_waiting_on_an_outage_is_named_as_such_not_overdue(timed: Rig) -> None:
    """Twilio 429s the sender's try: the record is not ``overdue`` (the sender is running) but
    ``waiting_on_outage``, whose fix says there is nothing to do; once sent, nothing."""
    registered(timed, "1")
    advance(timed, 61)
    timed.twilio.rate_limit_next(1, op="create")
    assert Sender(dry_run=False).run_once(timed.ctx()).counts["deferred"] == 1
    advance(timed, SLACK + 60)
    [finding] = health(timed)["findings"]
    assert (finding["check"], finding["count"], finding["oldest_record"]) == (
        "waiting_on_outage", 1, "1",
    )  # fmt: skip
    assert finding["fix"].startswith("nothing to do")
    Sender(dry_run=False).run_once(timed.ctx())
    assert found(timed) == []


def test_quiet_hours_do_not_count_as_overdue(timed: Rig) -> None:
    """Due during QUIET_HOURS: the sender rightly waits, no finding; past the end + slack it is."""
    registered(timed, "1")
    advance(timed, 3600)
    quiet = {"QUIET_HOURS": "11:00-13:30"}  # UTC; START is 12:00
    assert found(timed, **quiet) == []
    advance(timed, 1800 + SLACK + 60)  # 13:30 + slack + 60 s
    assert found(timed, **quiet) == [("overdue", "pipeline", 1, "1")]


def test_a_record_due_later_is_not_overdue(timed: Rig) -> None:
    """A record whose delay has not run out is waiting, not late, however long it waits."""
    registered(timed, "1")
    advance(timed, 3 * 3600)
    assert found(timed, SMS_DELAY_MINUTES="240") == []


def test_stuck_sending_past_the_claim_timeout_plus_slack(timed: Rig) -> None:
    """sending older than SMS_CLAIM_TIMEOUT_SECONDS (20 s here) + slack: stuck_sending; the
    sender's reconciliation gives it back (registered, so overdue) and the next cycle sends it."""
    registered(timed, "1", "2")
    advance(timed, 61)
    claim_and_die(timed.ctx(), "2")
    advance(timed, 20 + SLACK - 5)
    assert [f for f in found(timed) if f[0] == "stuck_sending"] == []
    advance(timed, 10)
    assert ("stuck_sending", "pipeline", 1, "2") in found(timed)
    Sender(dry_run=False).run_once(timed.ctx())
    assert found(timed) == [("overdue", "pipeline", 1, "2")]
    Sender(dry_run=False).run_once(timed.ctx())
    assert found(timed) == []


def test_no_delivery_report_when_the_checker_never_looked(timed: Rig) -> None:
    """sms_sent never checked FIRST_REPORT + slack after it went: no_delivery_report; the
    checker's run records the outcome and the finding goes."""
    registered(timed, "1")
    advance(timed, 61)
    Sender(dry_run=False).run_once(timed.ctx())
    advance(timed, FIRST_REPORT.total_seconds() + SLACK - 5)
    assert found(timed) == []
    advance(timed, 10)
    assert found(timed) == [("no_delivery_report", "pipeline", 1, "1")]
    delivery_checker.run_once(timed.ctx())
    assert timed.status("1") == "delivered" and found(timed) == []


def test_no_delivery_report_past_delivery_check_max_hours(timed: Rig) -> None:
    """Checked once but still sms_sent past DELIVERY_CHECK_MAX_HOURS + slack (the checker would
    have made it unconfirmed): no_delivery_report."""
    registered(timed, "1")
    advance(timed, 61)
    Sender(dry_run=False).run_once(timed.ctx())
    timed.set("1", pipeline_delivery_checked_at="2026-03-02 12:01:05")
    advance(timed, 2 * 3600)
    assert found(timed, DELIVERY_CHECK_MAX_HOURS="3") == []
    advance(timed, 3600 + SLACK + 10)
    assert found(timed, DELIVERY_CHECK_MAX_HOURS="3") == [
        ("no_delivery_report", "pipeline", 1, "1")
    ]


def test_replies_not_polled_until_the_poller_records_them(replying: Rig) -> None:
    """A participant's reply older than slack that no record holds: replies_not_polled under the
    rule it answers; a stranger's text is not; the poller records it, the sender answers it:
    healthy. One REDCap export and one Twilio list."""
    replying.twilio.inject_inbound(phone("1"), replying.twilio.from_number, "yes")
    replying.twilio.inject_inbound("+16175550199", replying.twilio.from_number, "hello")
    advance(replying, 60)
    assert found(replying) == []
    advance(replying, SLACK)
    ctx = replying.ctx()
    replying.redcap.server.reset_stats()
    replying.twilio.server.reset_stats()
    data = funnel(ctx, sms=ctx.sms)
    assert dict(replying.redcap.server.stats.requests) == {"record/export": 1}
    assert replying.twilio.server.stats.total_requests() == 1
    [finding] = data["health"]["findings"]
    assert (finding["check"], finding["rule"], finding["oldest_record"]) == (
        "replies_not_polled",
        "visit",
        "1",
    )
    assert "reply poller" in finding["fix"]
    reply_poller.run_once(replying.ctx())
    Sender(dry_run=False).run_once(replying.ctx())
    assert found(replying) == []


def test_replies_are_not_checked_without_twilio(replying: Rig) -> None:
    """No Twilio settings: the replies check is listed as not checked, not passed."""
    replying.twilio.inject_inbound(phone("1"), replying.twilio.from_number, "yes")
    advance(replying, 2 * SLACK)
    ctx = replying.ctx(needs_twilio=False)
    data = funnel(ctx, sms=None)["health"]
    assert data["healthy"] and any("replies_not_polled" in n for n in data["not_checked"])


def test_json_shape_and_exit_code(timed: Rig, capsys: pytest.CaptureFixture[str]) -> None:
    """--json carries healthy, the findings (what, rule, how many, oldest record and age, the
    limit, what to do) and each service's last activity; exit 1 unhealthy, 0 healthy; no
    phone number anywhere."""
    registered(timed, "1")
    advance(timed, 60 + SLACK + 30)
    assert command_status(timed.ctx(), as_json=True) == EXIT_UNHEALTHY
    data = json.loads(capsys.readouterr().out)
    assert data["health"]["healthy"] is False
    [finding] = data["health"]["findings"]
    assert set(finding) == {
        "check",
        "rule",
        "count",
        "oldest_record",
        "oldest_minutes",
        "limit_minutes",
        "what",
        "fix",
    }
    assert data["last_activity"]["detector"]["at"] == "2026-03-02T12:00:00+00:00"
    assert data["last_activity"]["sender"] is None
    assert data["rules"]["pipeline"]["waiting"] == [
        {"record": "1", "status": "registered", "minutes": 5.7}
    ]
    Sender(dry_run=False).run_once(timed.ctx())
    assert command_status(timed.ctx(), as_json=False) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[1] == "health: ok" and "555" not in text


def test_the_command_exits_0_healthy_1_unhealthy_and_keeps_2_and_3(rig: Rig) -> None:
    """Run as cron would: 0 while healthy, 1 with a finding printed (what to do included), 2
    for bad settings, 3 for the wrong project."""
    rig.clock = ManualClock(datetime.now(UTC))  # the admin process reads the real clock
    registered(rig, "1")
    healthy = rig.run("services.admin", "status")
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert "health: ok" in healthy.stdout
    unhealthy = rig.run("services.admin", "status", SMS_DELAY_MINUTES="0", SMS_MAX_PER_SECOND="1")
    assert unhealthy.returncode == 0  # just due: not late yet
    rig.set("1", pipeline_registered_at="2026-01-01 00:00:00")
    late = rig.run("services.admin", "status")
    assert late.returncode == 1 and "[overdue] rule pipeline: 1 record(s)" in late.stdout
    assert "what to do:" in late.stdout
    assert rig.run("services.admin", "status", POLL_INTERVAL_SECONDS="soon").returncode == 2
    assert rig.run("services.admin", "status", REDCAP_PROJECT_ID="999").returncode == 3
