"""Survey links: one surveyLink per due record, so a busy cycle's cost ignores the project size."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from sandbox.faults import Fault
from sandbox.httpserver import Stats
from sandbox.participants import add_records
from sandbox.redcap.demo import build_demo_project
from services import registration_detector
from services.sms_sender import Sender
from tests.services.conftest import Rig, start_rig

DUE = 5


def finished(rig: Rig, count: int) -> None:
    """``count`` records that went through the pipeline long ago (``delivered``)."""
    add_records(rig.project, rig.sim_clock, range(1, count + 1), "delivered")


def busy_cycle(tmp: Path, project_size: int) -> Stats:
    """REDCap's statistics for one sender cycle with DUE participants due, the same ids and
    phones whatever the project size."""
    with contextmanager(start_rig)(build_demo_project(), tmp) as rig:
        finished(rig, project_size)
        for n in range(DUE):
            rig.register(f"due-{n}", f"61755501{n:02d}")
        registration_detector.run_once(rig.ctx(needs_twilio=False))
        rig.clock.advance(61)
        ctx = rig.ctx(SMS_MAX_PER_SECOND="100")
        rig.redcap.server.reset_stats()
        assert Sender(dry_run=False).run_once(ctx).counts["sent"] == DUE
        return rig.redcap.server.stats


def test_busy_cycle_moves_the_same_bytes_in_a_small_and_a_large_project(tmp_path: Path) -> None:
    """Five due in a project of 50 or of 2,000 records: the same requests, and the same bytes
    in and out (up to the simulator's port number in the links)."""
    small = busy_cycle(tmp_path / "small", 50)
    large = busy_cycle(tmp_path / "large", 2000)
    assert small.requests == large.requests
    assert dict(large.requests) == {
        "record/export": 1 + 2,  # and the claim's two reads
        "surveyLink/export": DUE,
        "record/import": 2,
    }
    # The links carry 127.0.0.1:PORT; a port may differ by one digit between the two servers.
    for kind in ("bytes_in", "bytes_out"):
        a, b = sum(getattr(small, kind).values()), sum(getattr(large, kind).values())
        assert abs(a - b) <= DUE, (kind, a, b)


def test_refused_link_fails_that_record_and_the_others_are_sent(rig: Rig) -> None:
    """REDCap refusing one record's survey link marks it failed (survey_link); the rest go."""
    for n in range(1, 4):
        rig.register(str(n), f"61755501{n:02d}")
    registration_detector.run_once(rig.ctx(needs_twilio=False))
    rig.clock.advance(61)
    ctx = rig.ctx(SMS_MAX_PER_SECOND="100")  # its startup check asks for a link too
    rig.redcap.server.faults.add(
        Fault(
            kind="status",
            status=400,
            body='{"error": "The record does not exist"}',
            skip=1,
            match={"content": "surveyLink"},
        )
    )
    counts = Sender(dry_run=False).run_once(ctx).counts
    assert counts["sent"] == 2
    values = rig.values("2")
    assert (values["pipeline_status"], values["pipeline_error_code"]) == ("failed", "survey_link")
    assert "REDCap gave no survey link" in values["pipeline_error_message"]
    assert rig.status("1") == rig.status("3") == "sms_sent"
    assert rig.sent_to("+16175550102") == []


def test_link_that_is_not_a_url_fails_the_record_and_nothing_is_sent(rig: Rig) -> None:
    """An answer to surveyLink that is not a URL is never texted: failed with survey_link."""
    rig.register("1", "6175550101")
    registration_detector.run_once(rig.ctx(needs_twilio=False))
    rig.clock.advance(61)
    ctx = rig.ctx()  # its startup check asks for a link too
    rig.redcap.server.faults.add(
        Fault(kind="status", status=200, body="login required", match={"content": "surveyLink"})
    )
    assert Sender(dry_run=False).run_once(ctx).counts["not_sent_survey_link"] == 1
    values = rig.values("1")
    assert (values["pipeline_status"], values["pipeline_error_code"]) == ("failed", "survey_link")
    assert "not a URL" in values["pipeline_error_message"]
    assert rig.sent_to("+16175550101") == []
