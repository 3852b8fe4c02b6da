"""What a study ID cycle costs REDCap: the detector of a study with an ``[[assign]]`` rule.

Run: ``.venv/bin/python -m bench.assign_cost [--cases 1000:300,100000:300,100000:10000]``.
Each case ``RECORDS:IDS`` fills the demo project (with the rules of bench/assign_soak.py: an
invitation and a two-group ID rule) with RECORDS registrations, IDS of them eligible with their
ID given and their invitation sent, the rest screened not eligible. Then:

- an idle detector cycle (the median of three after a warm-up): requests, bytes REDCap sent
  back, time;
- a busy cycle: 25 new eligible records, half in each group, get their IDs: the requests by kind,
  the bytes and the time, and how many of those bytes were the export of the IDs there are
  (what grows with IDS, not with RECORDS).

It prints one block per case, then the Markdown table of ``docs/PERFORMANCE.md``. Every server it
starts is stopped on the way out; the run gives up after ``--budget`` seconds (exit 1).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from bench.assign_soak import RULES
from bench.measure import Cost, describe, duration, idle_cost, markdown, run_cases, size_text, timed
from common.clock import ManualClock
from common.runner import CycleResult
from common.settings import Settings
from messaging.context import Context, build_context
from messaging.rules_file import load_study
from sandbox.httpserver import App, Request, Response
from sandbox.redcap.demo import build_demo_project
from sandbox.redcap.importer import import_rows
from sandbox.rehearsal import add_rule_fields
from sandbox.session import Sandbox
from services import registration_detector

BUSY = 25
START = datetime(2026, 3, 2, 12, tzinfo=UTC)


class IdsExportLog:
    """The REDCap simulator's app, wrapped: the bytes of each answer to an export filtered on the
    ID field (the highest IDs read), the one export whose size grows with the IDs given."""

    def __init__(self, app: App, marker: str) -> None:
        self.app, self.marker = app, marker
        self.bytes = 0

    def describe(self, request: Request) -> dict[str, str]:
        return self.app.describe(request)

    def handle(self, request: Request) -> Response:
        response = self.app.handle(request)
        if request.form().get("filterLogic", [""])[0] == self.marker:
            self.bytes += len(response.payload())
        return response


@dataclass
class CaseResult:
    records: int
    ids: int
    fill_seconds: float
    idle: Cost
    busy: Cost
    ids_bytes: int
    by_kind: dict[str, int]


def fill(box: Sandbox, records: int, ids: int) -> None:
    """``records`` registrations: the first ``ids`` eligible, with their ID and invited; the
    rest screened not eligible (no rule of the bench applies to them)."""
    rows: list[dict[str, object]] = []
    counters = {"1": 3000, "2": 10200}
    for n in range(1, records + 1):
        row: dict[str, object] = {"record_id": str(n), "registration_complete": "2"}
        if n <= ids:
            group = "1" if n % 2 else "2"
            number = counters[group]
            counters[group] += 1
            row.update(
                eligible="1",
                study_group=group,
                study_id=f"HC-{number:05d}" if group == "1" else str(number),
                study_id_status="assigned",
                study_id_group="control" if group == "1" else "patient",
                study_id_assigned_at="2026-02-01 10:00:00",
                invitation_status="sent_email",
            )
        else:
            row.update(eligible="0", study_group="1")
        rows.append(row)
    import_rows(box.project, rows, overwrite=False, date_format="YMD", now=box.clock.local_naive())


def arrive(box: Sandbox, first: int) -> None:
    """BUSY new registrations screened eligible, the groups in turn."""
    rows: list[dict[str, object]] = [
        {
            "record_id": str(n),
            "registration_complete": "2",
            "eligible": "1",
            "study_group": "1" if n % 2 else "2",
        }
        for n in range(first, first + BUSY)
    ]
    import_rows(box.project, rows, overwrite=False, date_format="YMD", now=box.clock.local_naive())


def measure(records: int, ids: int, log: Callable[[str], None]) -> CaseResult:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rules.toml"
        path.write_text(RULES, encoding="utf-8")
        project = add_rule_fields(build_demo_project(), load_study(path, default_event=""))
        with Sandbox(project) as box:
            started = time.perf_counter()
            fill(box, records, ids)
            fill_seconds = time.perf_counter() - started
            env = box.settings(
                LOCK_DIR=tmp,
                RULES_FILE=str(path),
                REDCAP_MAX_PER_MINUTE="100000",
                HTTP_TIMEOUT_SECONDS="120",
            )
            clock = ManualClock(START)

            def ctx() -> Context:
                return build_context(Settings.from_env(env), needs_twilio=False, clock=clock)

            idle = idle_cost(box, ctx(), registration_detector.run_once)
            log(f"  detector idle: {describe(idle)}")
            logged = IdsExportLog(box.redcap.server.app, "[study_id] <> ''")
            box.redcap.server.app = logged
            arrive(box, records + 1)
            busy_ctx = ctx()
            busy, result = timed(box, lambda: registration_detector.run_once(busy_ctx))
            assert isinstance(result, CycleResult)
            assert result.counts["assigned"] == BUSY, result.summary()
            by_kind = dict(box.redcap.server.stats.requests)
            log(f"  detector busy ({BUSY} new): {describe(busy)} ({result.summary()})")
            log(f"    by kind: {by_kind}; the IDs export: {size_text(logged.bytes)}")
            return CaseResult(records, ids, fill_seconds, idle, busy, logged.bytes, by_kind)


HEADER = (
    "records | IDs given | idle cycle | busy cycle, 25 new | of which the IDs export | per ID given"
)


def table(results: list[CaseResult]) -> str:
    rows = []
    for r in results:
        rows.append(
            (
                f"{r.records:,}",
                f"{r.ids:,}",
                f"{r.idle.requests} request, {size_text(r.idle.bytes_out)}, "
                f"{duration(r.idle.seconds)}",
                f"{r.busy.requests} requests, {size_text(r.busy.bytes_out)}, "
                f"{duration(r.busy.seconds)}",
                size_text(r.ids_bytes),
                f"{r.ids_bytes / max(r.ids, 1):.0f} B",
            )
        )
    return markdown(HEADER, rows)


def run(cases: list[tuple[int, int]], seconds: float) -> int:
    measured = [
        (f"project of {records:,} records, {ids:,} IDs given:", partial(measure, records, ids))
        for records, ids in cases
    ]
    return run_cases("assign_cost", seconds, measured, table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--cases", default="1000:300,100000:300,100000:10000", help="RECORDS:IDS, comma-separated"
    )
    parser.add_argument("--budget", type=float, default=1500, help="seconds before giving up")
    args = parser.parse_args(argv)
    cases = [tuple(int(x) for x in case.split(":")) for case in args.cases.split(",")]
    return run([(records, ids) for records, ids in cases], args.budget)


if __name__ == "__main__":
    raise SystemExit(main())
