"""Registration detector: complete registrations become ``registered``; nothing else moves."""

from __future__ import annotations

from sandbox.redcap.importer import import_rows
from services import registration_detector
from tests.services.conftest import Rig


def test_complete_registration_is_marked_registered_with_time(rig: Rig) -> None:
    """A completed registration gets status registered and the detection time."""
    rig.register("1")
    result = registration_detector.run_once(rig.ctx(needs_twilio=False))
    assert result.counts["registered"] == 1
    assert rig.status("1") == "registered"
    assert rig.values("1")["pipeline_registered_at"] == "2026-03-02 12:00:00"


def test_incomplete_and_already_statused_records_are_left_alone(rig: Rig) -> None:
    """Only complete registrations with a blank status are picked up, once."""
    rig.register("1")
    incomplete = {"record_id": "2", "phone_number": "6175550101", "registration_complete": "1"}
    import_rows(
        rig.project,
        [incomplete],
        overwrite=False,
        date_format="YMD",
        now=rig.sim_clock.local_naive(),
    )
    ctx = rig.ctx(needs_twilio=False)
    registration_detector.run_once(ctx)
    rig.clock.advance(60)
    again = registration_detector.run_once(ctx)
    assert again.counts["registered"] == 0
    assert rig.status("2") == ""
    assert rig.values("1")["pipeline_registered_at"] == "2026-03-02 12:00:00"


def test_runaway_guard_touches_nothing_and_says_how_to_fix(rig: Rig) -> None:
    """More than MAX_NEW_PER_CYCLE new registrations: none marked, the fix is named."""
    for n in range(1, 5):
        rig.register(str(n))
    result = registration_detector.run_once(rig.ctx(needs_twilio=False, MAX_NEW_PER_CYCLE="3"))
    assert result.counts["registered"] == 0
    assert "admin baseline" in result.problem and "MAX_NEW_PER_CYCLE" in result.problem
    assert all(rig.status(str(n)) == "" for n in range(1, 5))


def test_idle_cycle_is_one_filtered_export(rig: Rig) -> None:
    """With nothing to do, a cycle costs exactly one REDCap request."""
    ctx = rig.ctx(needs_twilio=False)
    registration_detector.run_once(ctx)  # first cycle may read metadata once
    rig.redcap.server.reset_stats()
    registration_detector.run_once(ctx)
    assert rig.redcap.server.stats.total_requests() == 1


def test_longitudinal_project_uses_the_configured_event(long_rig: Rig) -> None:
    """On a longitudinal project the status is written in REDCAP_EVENT."""
    long_rig.register("1")
    registration_detector.run_once(long_rig.ctx(needs_twilio=False))
    assert long_rig.status("1") == "registered"
