"""Study IDs under random kill -9: a soak of the detector over many records.

Run: ``.venv/bin/python -m bench.assign_soak [--records 600] [--kills 100] [--seed 18]``.
Records arrive in ``--kills`` waves of random sizes (about nine in ten eligible, in one of two
groups: control ``HC-03000`` on, patient ``10200`` on); after each wave one detector is started
as a real process and killed with SIGKILL, half the time at a random request of its cycle
(an export, or an import lost before or after REDCap applied it) and half at a random moment
(start-up included). Then fresh detectors run until every record is decided, and REDCap is
checked: every eligible record holds exactly one ID, of its group, ``assigned``; no value twice;
each group's IDs are its start and the numbers after it (no gap); no ineligible record holds
one. ``tests/services/test_assign_crash.py`` runs a small soak on every ``make test``.
"""

from __future__ import annotations

import argparse
import itertools
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from messaging.ids import split_id
from messaging.rules_file import load_study
from sandbox.envfile import write_env
from sandbox.faults import Fault
from sandbox.httpserver import wait_until
from sandbox.redcap.demo import build_demo_project
from sandbox.redcap.importer import import_rows
from sandbox.redcap.model import Project
from sandbox.rehearsal import add_rule_fields
from sandbox.session import Sandbox

ROOT = Path(__file__).resolve().parents[1]
INVITATION = """
[[rule]]
name = "invitation"
when = "[study_id_status] = 'assigned'"
channel = "email"
subject = "Book your first visit"
email_template = \"\"\"
Your study ID is {field:study_id}.
Book your visit: https://outlook.office.com/book/Visits@contoso.onmicrosoft.com/?StudyID={url:field:study_id}
\"\"\"
"""
ASSIGN = """
[[assign]]
name = "study_id"
field = "study_id"
when = "[eligible] = '1'"

[[assign.group]]
name = "control"
when = "[study_group] = '1'"
start = 3000
prefix = "HC-"
width = 5

[[assign.group]]
name = "patient"
when = "[study_group] = '2'"
start = 10200
"""
RULES = INVITATION + ASSIGN
STARTS = {"control": ("HC-", 3000), "patient": ("", 10200)}
GROUP_CODES = {"1": "control", "2": "patient"}
# A start checks the four pieces of logic (one export each); a cycle makes up to seven more.
EXPORTS_TO_KILL = range(4, 11)
EXPORT = {"content": "record", "action": "export"}
IMPORT = {"content": "record", "action": "import"}
SETTLE_RUNS = 10


@dataclass
class SoakResult:
    records: int
    eligible: int = 0
    assigned: int = 0
    kills: int = 0
    detector_runs: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)


def soak(
    records: int, kills: int, seed: int, log: Callable[[str], None] = lambda line: None
) -> SoakResult:
    """Run the soak (see the module docstring); what REDCap held at the end, judged."""
    rng = random.Random(seed)  # noqa: S311 (a reproducible soak, not a secret)
    result = SoakResult(records)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        rules = Path(tmp) / "rules.toml"
        rules.write_text(RULES, encoding="utf-8")
        project = add_rule_fields(build_demo_project(), load_study(rules, default_event=""))
        with Sandbox(project) as box:
            # Detectors started this often pass REDCap's 600 requests a minute: not what this
            # measures (0 turns the simulator's limiter off).
            box.redcap.limiter.per_minute = 0
            env = Path(tmp) / ".env.soak"
            write_env(
                env,
                box.settings(
                    LOCK_DIR=tmp,
                    RULES_FILE=str(rules),
                    MAX_NEW_PER_CYCLE="100000",
                    POLL_INTERVAL_SECONDS="0.1",
                    HTTP_TIMEOUT_SECONDS="60",
                    LOG_LEVEL="WARNING",
                ),
            )
            eligible: dict[str, str] = {}  # record id -> group
            first = 1
            for wave, size in enumerate(_waves(records, kills, rng), 1):
                eligible.update(_arrive(box, range(first, first + size), rng))
                first += size
                result.kills += _kill_one(box, env, rng)
                result.detector_runs += 1
                log(f"  wave {wave}: {size} records, {result.kills} kills so far")
            for _ in range(SETTLE_RUNS):
                result.detector_runs += 1
                if (code := _detector(env, once=True).wait(timeout=120)) != 0:
                    result.problems.append(f"a detector run exited {code}")
                    break
                if all(_values(project, r).get("study_id_status") for r in eligible):
                    break
            result.eligible = len(eligible)
            result.assigned, found = judge(project, eligible)
            result.problems += found
    result.seconds = time.perf_counter() - started
    return result


def _waves(records: int, kills: int, rng: random.Random) -> list[int]:
    """``records`` split into ``kills`` waves of random sizes (each at least one)."""
    cuts = sorted(rng.sample(range(1, records), kills - 1)) if kills > 1 else []
    edges = [0, *cuts, records]
    return [b - a for a, b in itertools.pairwise(edges)]


def _arrive(box: Sandbox, numbers: range, rng: random.Random) -> dict[str, str]:
    """A wave of screened registrations in one import; the eligible ones and their groups."""
    rows: list[dict[str, object]] = []
    eligible: dict[str, str] = {}
    for n in numbers:
        group = rng.choice(("1", "2"))
        fit = rng.random() < 0.9
        rows.append(
            {
                "record_id": str(n),
                "registration_complete": "2",
                "study_group": group,
                "eligible": "1" if fit else "0",
            }
        )
        if fit:
            eligible[str(n)] = GROUP_CODES[group]
    import_rows(box.project, rows, overwrite=False, date_format="YMD", now=box.clock.local_naive())
    return eligible


def _detector(env: Path, *, once: bool) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "services.registration_detector", "--env-file", str(env)]
    return subprocess.Popen(
        [*argv, "--once"] if once else argv,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _kill_one(box: Sandbox, env: Path, rng: random.Random) -> int:
    """Start one detector and SIGKILL it: at a random request of its cycle (which then hangs,
    applied or not) or at a random moment; 1 if it was still at work when killed."""
    faults = box.redcap.server.faults
    fault = None
    if rng.random() < 0.5:
        write = rng.random() < 0.5
        fault = faults.add(
            Fault(
                kind="hang",
                seconds=60,
                after_apply=write and rng.random() < 0.5,
                skip=rng.randrange(2) if write else rng.choice(EXPORTS_TO_KILL),
                match=IMPORT if write else EXPORT,
            )
        )
    proc = _detector(env, once=fault is not None)
    try:
        if fault is not None:
            wait_until(lambda: fault.times == 0 or proc.poll() is not None, timeout=60)
        else:
            time.sleep(rng.uniform(0.2, 1.5))
        alive = proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        faults.clear()
    return int(alive)


def _values(project: Project, record_id: str) -> dict[str, str]:
    with project.lock:
        merged: dict[str, str] = {}
        for values in project.records[record_id].slots.values():
            merged.update(values)
        return merged


def judge(project: Project, eligible: Mapping[str, str]) -> tuple[int, list[str]]:
    """How many eligible records hold their ID, and every broken promise found."""
    problems: list[str] = []
    owners: dict[str, list[str]] = {}
    runs: dict[str, list[int]] = {group: [] for group in STARTS}
    with project.lock:
        ids = list(project.records)
    for record_id in ids:
        values = _values(project, record_id)
        value, status = values.get("study_id", ""), values.get("study_id_status", "")
        if record_id not in eligible:
            if value or status:
                problems.append(f"record {record_id} is not eligible but holds {value!r} {status}")
            continue
        group = eligible[record_id]
        parsed = split_id(value)
        if status != "assigned" or parsed is None:
            problems.append(f"record {record_id}: no ID ({status or 'no status'})")
            continue
        owners.setdefault(value, []).append(record_id)
        prefix, start = STARTS[group]
        if parsed[0] != prefix or parsed[1] < start or values.get("study_id_group") != group:
            problems.append(f"record {record_id} of group {group} holds {value}")
        runs[group].append(parsed[1])
    problems += [
        f"{value} held by records {', '.join(rs)}" for value, rs in owners.items() if len(rs) > 1
    ]
    for group, (_, start) in STARTS.items():
        got = sorted(runs[group])
        if got != list(range(start, start + len(got))):
            missing = sorted(set(range(start, start + len(got))) - set(got))
            problems.append(f"group {group}: gap or repeat (missing {missing[:10]})")
    return len(owners), problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=600)
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--seed", type=int, default=18)
    args = parser.parse_args(argv)
    print(f"soak: {args.records} records, {args.kills} waves, seed {args.seed}", flush=True)
    result = soak(args.records, args.kills, args.seed, lambda line: print(line, flush=True))
    print()
    print(
        f"| {result.records} | {result.eligible} | {result.kills} of {args.kills} | "
        f"{result.detector_runs} | {result.assigned} | {len(result.problems)} | "
        f"{result.seconds:.0f} s |"
    )
    for problem in result.problems:
        print(f"problem: {problem}")
    return 1 if result.problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
