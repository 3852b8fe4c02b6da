"""Which records and rows a record export keeps (REDCAP_API.md §2.1, §2.3), at function level.

dateRange selects records by their change log; filterLogic keeps rows where the logic is true,
per event and per repeating instance, and bad logic gets a 400.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from sandbox.redcap.errors import ApiError
from sandbox.redcap.importer import import_rows
from sandbox.redcap.model import Project, StoredRecord
from tests.sandbox.helpers_records import (
    NOW,
    classic_project,
    export,
    longitudinal_project,
    put,
    repeating_project,
)


# -- dateRange --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("begin", "end", "expected"),
    [
        (datetime(2024, 1, 2), None, ["2", "3"]),
        (None, datetime(2024, 1, 2), ["1", "2"]),
        (datetime(2024, 1, 2), datetime(2024, 1, 2), ["2"]),
        (datetime(2024, 1, 2, 0, 0, 1), datetime(2024, 1, 2, 23, 59), []),
        (None, None, ["1", "2", "3", "4"]),
    ],
)
def test_date_range_uses_change_log(
    begin: datetime | None, end: datetime | None, expected: list[str]
) -> None:
    """dateRange keeps records changed within [begin, end], both inclusive (§2.1)."""
    project = classic_project()
    for record, day in (("1", 1), ("2", 2), ("3", 3)):
        project.records[record] = StoredRecord(
            record, {("", "", None): {"record_id": record}}, [datetime(2024, 1, day)]
        )
    project.records["4"] = StoredRecord("4", {("", "", None): {"record_id": "4"}}, [])
    project.records["3"].changed_at = [datetime(2024, 1, 3), datetime(2099, 1, 1)]
    rows = export(project, date_begin=begin, date_end=end)
    assert [r["record_id"] for r in rows] == expected


def test_unchanged_import_does_not_move_record_into_date_range() -> None:
    """An import that changes nothing writes no log entry, so dateRange skips it (§2.1, §4.5)."""
    project = classic_project()
    import_rows(
        project, [{"record_id": "1", "age": "3"}], overwrite=False, date_format="YMD", now=NOW
    )
    later = datetime(2024, 6, 1)
    import_rows(
        project, [{"record_id": "1", "age": "3"}], overwrite=False, date_format="YMD", now=later
    )
    assert export(project, date_begin=later, date_end=later) == []
    import_rows(
        project, [{"record_id": "1", "age": "4"}], overwrite=False, date_format="YMD", now=later
    )
    assert [r["age"] for r in export(project, date_begin=later, date_end=later)] == ["4"]


# -- filterLogic ------------------------------------------------------------------------------
def _ages(project: Project, logic: str) -> list[str]:
    return [str(row["record_id"]) for row in export(project, filter_logic=logic)]


@pytest.mark.parametrize(
    ("logic", "expected"),
    [
        ("[age] > 30", ["2"]),
        ("[age] < 30", ["1"]),
        ("[age] = 30", []),
        ("[age] <> 30", ["1", "2", "3"]),
        ("[age] = ''", ["3"]),
        ("[name] = ''", ["1", "3"]),
        ("[race(-1)] = '1'", ["2"]),
        ("[race(2)] = '0'", ["1", "3"]),
        ("[sex] = '1' or [age] > 30", ["1", "2"]),
        ("[demographics_complete] = '0'", ["1", "3"]),
        ("datediff([dob], 'today', 'y') > 18", ["1"]),
        ("contains([name], 'NN')", ["2"]),
    ],
)
def test_filter_logic_on_classic_rows(logic: str, expected: list[str]) -> None:
    """filterLogic keeps rows where true; a blank numeric field compares as NaN (§2.3, §3)."""
    project = classic_project()
    put(project, "1", ("", "", None), age="20", sex="1", dob="2000-01-01")
    put(
        project,
        "2",
        ("", "", None),
        age="40",
        name="Ann",
        race____1="1",
        race___2="1",
        demographics_complete="2",
    )
    put(project, "3", ("", "", None), weight="70")
    assert _ages(project, logic) == expected


def test_filter_logic_per_event() -> None:
    """Unprefixed fields are read in each event; prefixed logic returns its events only (§2.3)."""
    project = longitudinal_project()
    put(project, "1", ("baseline_arm_1", "", None), age="40", weight="80")
    put(project, "1", ("followup_arm_1", "", None), weight="60")
    put(project, "2", ("baseline_arm_1", "", None), age="20", weight="90")

    def rows(logic: str) -> list[tuple[str | int, str | int]]:
        found = export(project, filter_logic=logic)
        return [(r["record_id"], r["redcap_event_name"]) for r in found]

    assert rows("[weight] < 70") == [("1", "followup_arm_1")]
    assert rows("[age] > 30") == [("1", "baseline_arm_1")]
    assert rows("[baseline_arm_1][age] > 30") == [("1", "baseline_arm_1")]
    assert rows("[baseline_arm_1][age] > 30 and [weight] > 0") == [
        ("1", "baseline_arm_1"),
        ("1", "followup_arm_1"),
    ]
    assert rows("[followup_arm_1][weight] = ''") == []


def test_filter_logic_per_instance() -> None:
    """Repeating instruments: unprefixed fields are evaluated per instance (§2.3)."""
    project = repeating_project()
    put(project, "1", ("", "", None), age="34")
    put(project, "1", ("", "visit", 1), weight="71")
    put(project, "1", ("", "visit", 2), weight="90")
    found = export(project, filter_logic="[weight] > 80")
    assert [(r["redcap_repeat_instrument"], r["redcap_repeat_instance"]) for r in found] == [
        ("visit", 2)
    ]
    found = export(project, filter_logic="[age] = '34' and [weight][last-instance] > 80")
    assert [r["redcap_repeat_instance"] for r in found] == ["", 1, 2]
    found = export(project, filter_logic="[weight][previous-instance] = '71'")
    assert [r["redcap_repeat_instance"] for r in found] == [2]


@pytest.mark.parametrize(
    ("logic", "detail"),
    [
        ("[age] >", ""),
        ("[nope] = '1'", "'nope'"),
        ("[week_9_arm_1][age] = '1'", "'week_9_arm_1'"),
        ("nosuchfunction([age])", ""),
    ],
)
def test_bad_filter_logic_gets_400(logic: str, detail: str) -> None:
    """Bad syntax, unknown fields or events in filterLogic get 400 (§2.3; wording: §10)."""
    project = longitudinal_project()
    put(project, "1", ("baseline_arm_1", "", None), age="40")
    with pytest.raises(ApiError) as caught:
        export(project, filter_logic=logic)
    assert caught.value.status == 400
    assert caught.value.message.startswith('The value of the parameter "filterLogic" is not valid')
    assert detail in caught.value.message
