"""What a change probe can rely on (REDCAP_API.md §2.1): dateRange selects records from the
change log in the server's local time, bounds inclusive, an import that changes nothing logs
nothing; and the simulator counts the rows each export evaluated (REDCap's per-row work)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sandbox.clock import SimClock
from sandbox.redcap.model import Project
from tests.sandbox.conftest import SimFactory
from tests.sandbox.helpers_http import post

BOSTON = ZoneInfo("America/New_York")


def _ids(response: object) -> list[str]:
    return [str(row["record_id"]) for row in response.json()]  # type: ignore[attr-defined]


def test_date_range_is_server_local_inclusive_and_changes_only(
    redcap_sim: SimFactory, classic_project: Project
) -> None:
    """A change logged at 09:00:00 Boston time is in a range beginning 09:00:00 (inclusive) and
    not in one beginning a second later or at the same instant written in UTC (14:00); the
    same values imported again later log nothing, so the record stays out of later ranges."""
    clock = SimClock(BOSTON)
    clock.freeze(datetime(2025, 3, 3, 9, 0, 0, tzinfo=BOSTON))
    sim = redcap_sim(classic_project, clock=clock)
    assert post(sim, content="record", format="json", data='[{"record_id":"2","age":"18"}]').ok

    def since(begin: str, **extra: str) -> list[str]:
        return _ids(
            post(sim, content="record", format="json", fields="record_id", dateRangeBegin=begin,
                 **extra)
        )  # fmt: skip

    assert since("2025-03-03 09:00:00") == ["2"]
    assert since("2025-03-03 08:59:59", dateRangeEnd="2025-03-03 09:00:00") == ["2"]
    assert since("2025-03-03 09:00:01") == []
    assert since("2025-03-03 14:00:00") == []  # the instant in UTC is not REDCap's time
    clock.advance(60)
    post(sim, content="record", format="json", data='[{"record_id":"2","age":"18"}]')
    assert since("2025-03-03 09:00:30") == []


def test_rows_evaluated_follow_the_records_selected(
    redcap_sim: SimFactory, classic_project: Project
) -> None:
    """A filtered export of the whole project evaluates every row; the same filter with
    dateRangeBegin evaluates only the changed records' rows, and with records= only those."""
    sim = redcap_sim(classic_project)
    work = classic_project.filter_work
    every = post(sim, content="record", format="json", fields="record_id", filterLogic="[age]>0")
    assert every.ok
    rows = len(classic_project.records)
    assert work.per_request == [rows] and rows >= 2
    sim.clock.advance(3600)
    post(sim, content="record", format="json", data='[{"record_id":"2","age":"19"}]')
    work.reset()
    changed = post(
        sim, content="record", format="json", fields="record_id", filterLogic="[age]>0",
        dateRangeBegin=sim.clock.local_naive().strftime("%Y-%m-%d %H:%M:%S"),
    )  # fmt: skip
    assert _ids(changed) == ["2"]
    one = post(sim, content="record", format="json", fields="record_id", filterLogic="[age]>0",
               **{"records[0]": "1"})  # fmt: skip
    assert one.ok
    assert work.per_request == [1, 1]
    assert work.total == 2
