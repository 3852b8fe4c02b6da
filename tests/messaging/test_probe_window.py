"""The change probe's window in REDCap's local time (messaging.probes) and which logic reads the
clock (messaging.rules.time_dependent)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from messaging.probes import redcap_local
from messaging.rules import time_dependent

BOSTON = ZoneInfo("America/New_York")


def test_the_window_is_written_in_redcaps_zone_and_widened_across_a_fall_back() -> None:
    """14:00 UTC is 09:00 in Boston; a window that starts at 01:50 EDT and ends after the
    clocks went back to 01:00 EST starts at 00:50, so changes logged at 01:10 EST are in it."""
    assert redcap_local(
        datetime(2025, 3, 3, 14, 0, 0, 500, tzinfo=UTC), datetime(2025, 3, 3, 14, 1, tzinfo=UTC),
        BOSTON,
    ) == datetime(2025, 3, 3, 9, 0, 0)  # fmt: skip
    begin = datetime(2025, 11, 2, 5, 50, tzinfo=UTC)  # 01:50 EDT
    end = datetime(2025, 11, 2, 6, 20, tzinfo=UTC)  # 01:20 EST
    assert redcap_local(begin, end, BOSTON) == datetime(2025, 11, 2, 0, 50)


def test_logic_reading_today_or_now_is_time_dependent_field_names_are_not() -> None:
    """'today' and 'now' (datediff's and alone) read the clock; a field named now_phone does
    not."""
    assert time_dependent("datediff([visit], 'today', 'd') >= 7")
    assert time_dependent('datediff([visit], "NOW", "h") < 1')
    assert not time_dependent("[now_phone] <> '' and [today_flag] = '1'")
    assert not time_dependent("[registration_complete] = '2'")
