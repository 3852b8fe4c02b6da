"""kill -9 of the detector at every step of the study ID path: no ID given twice, none lost, no
gap; a second host after a crash continues the run from what REDCap holds; and a soak of random
kills over many records (bench/assign_soak.py runs the large one, docs/PERFORMANCE.md)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.assign_soak import RULES, soak
from messaging.ids import split_id
from tests.services.conftest import Rig, start_rules_rig
from tests.services.killing import IMPORT, Step, kill_at

DETECTOR = "services.registration_detector"
EXPORT = {"content": "record", "action": "export"}
# The detector's start checks each rule's logic with a one-record export: the message rule's
# when, the ID rule's when and its two groups'. Its cycle's exports follow.
STARTUP = 4
STEPS: list[Step] = [
    ("candidates export", "redcap", EXPORT, False, STARTUP),
    ("rule's confirmation export", "redcap", EXPORT, False, STARTUP + 2),
    ("values export", "redcap", EXPORT, False, STARTUP + 3),
    ("group export", "redcap", EXPORT, False, STARTUP + 4),
    ("highest IDs export", "redcap", EXPORT, False, STARTUP + 6),
    ("ID write lost", "redcap", IMPORT, False, 0),
    ("ID written, answer lost", "redcap", IMPORT, True, 0),
]
GROUPS = {"1": "1", "2": "2", "3": "1", "4": "1", "5": "2"}  # record -> study_group
SETTLE = {"MAX_NEW_PER_CYCLE": "1000"}


@pytest.fixture
def ids(tmp_path: Path) -> Iterator[Rig]:
    yield from start_rules_rig(tmp_path, RULES)


def screen(rig: Rig, groups: dict[str, str]) -> None:
    for record_id, group in groups.items():
        rig.register(record_id)
        rig.set(record_id, study_group=group, eligible="1")


def settle(rig: Rig, **overrides: str) -> None:
    """Fresh detectors, as systemd would restart them, until every record is decided."""
    for _ in range(4):
        done = rig.run(DETECTOR, "--once", **{**SETTLE, **overrides})
        assert done.returncode == 0, done.stderr
        if all(rig.values(r).get("study_id_status") for r in rig.project.records):
            return
    raise AssertionError("records left without a decision after four detector runs")


def given(rig: Rig) -> dict[str, str]:
    """Record id -> the ID REDCap holds."""
    return {r: rig.values(r).get("study_id", "") for r in sorted(rig.project.records, key=int)}


def assert_one_run_per_group(rig: Rig) -> None:
    """Every record holds one ID, assigned, of its group; each group's IDs are its start and the
    numbers after it, with no value twice and no gap."""
    held = given(rig)
    assert all(held.values()), held
    assert len(set(held.values())) == len(held), f"an ID given twice: {held}"
    runs: dict[str, list[int]] = {"control": [], "patient": []}
    for record_id, value in held.items():
        values = rig.values(record_id)
        assert values["study_id_status"] == "assigned", values
        parsed = split_id(value)
        assert parsed is not None
        prefix, number = parsed
        group = values["study_id_group"]
        assert (prefix, group) in (("HC-", "control"), ("", "patient")), value
        runs[group].append(number)
    for group, start in (("control", 3000), ("patient", 10200)):
        assert sorted(runs[group]) == list(range(start, start + len(runs[group]))), runs


@pytest.mark.parametrize(
    ("name", "where", "match", "after_apply", "skip"), STEPS, ids=[s[0] for s in STEPS]
)
def test_kill_9_at_each_step_gives_every_id_once(
    ids: Rig, name: str, where: str, match: dict[str, str], after_apply: bool, skip: int
) -> None:
    """Killed at this step, the detector leaves REDCap so that fresh ones finish: each record one
    ID of its group, no duplicate, no gap; then the run goes on for new records."""
    screen(ids, GROUPS)
    assert kill_at(ids, (name, where, match, after_apply, skip), module=DETECTOR), (
        "step not reached"
    )
    settle(ids)
    assert_one_run_per_group(ids)
    screen(ids, {"6": "1", "7": "2"})
    settle(ids)
    assert_one_run_per_group(ids)
    assert (given(ids)["6"], given(ids)["7"]) == ("HC-03003", "10202")


WRITES = [step for step in STEPS if step[2] == IMPORT]


@pytest.mark.parametrize("step", WRITES, ids=[step[0] for step in WRITES])
def test_a_second_host_after_a_crash_continues_the_run(ids: Rig, step: Step) -> None:
    """Host A dies at its write (lost, or applied with the answer lost); host B, with a lock
    directory of its own (another machine), knows nothing of A and continues from REDCap: the
    records A wrote keep their IDs, the others get the next ones, new records follow."""
    screen(ids, GROUPS)
    host_a = ids.tmp / "host-a"
    assert kill_at(ids, step, module=DETECTOR, LOCK_DIR=str(host_a))
    written = {r: v for r, v in given(ids).items() if v}
    assert bool(written) == step[3]  # applied: A's IDs are in REDCap; lost: none are
    screen(ids, {"6": "2"})
    settle(ids, LOCK_DIR=str(ids.tmp / "host-b"))
    assert_one_run_per_group(ids)
    assert {r: given(ids)[r] for r in written} == written
    assert given(ids)["6"] == "10202"


@pytest.mark.timeout(240)
def test_a_soak_of_random_kills_gives_every_id_once() -> None:
    """Records arriving in waves while detectors are killed at random requests and random
    moments: every eligible record ends with one ID, no duplicate, no gap, none missing."""
    result = soak(records=72, kills=10, seed=18)
    assert result.kills >= 6, result
    assert result.problems == [], result.problems
    assert result.assigned == result.eligible
