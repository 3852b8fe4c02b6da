"""What one service cycle costs REDCap, by project size, beside a poller that exports everything.

Run: ``.venv/bin/python -m bench.cycle_cost [--sizes 1000,10000,100000] [--budget 1500]``.
For each size it starts the sandbox, fills the demo project with N records already through the
pipeline (status ``delivered``), and measures against the REDCap simulator:

- an idle cycle of each service (the median of three, after one warm-up cycle);
- a busy sender cycle with 25 participants due;
- a naive poller's cycle: one export of every record with the fields the three services read,
  which is what a poller that filters on its own side moves every cycle, busy or idle.

It prints one block per size and then the Markdown table of ``docs/PERFORMANCE.md``. Every
server it starts is stopped on the way out, and the whole run gives up after ``--budget``
seconds (exit 1).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

from bench.measure import (
    Cost,
    describe,
    duration,
    idle_cost,
    markdown,
    run_cases,
    size_options,
    size_text,
    sizes_of,
    timed,
)
from common.clock import ManualClock
from common.runner import CycleResult
from common.settings import Settings
from messaging.context import Context, build_context
from messaging.records import export_fields
from sandbox.participants import add_records
from sandbox.redcap.demo import build_demo_project
from sandbox.session import Sandbox
from services import delivery_checker, registration_detector
from services.sms_sender import Sender

BUSY = 25
# The naive poller's answer at 100,000 records takes longer than the services' default 30 s.
HTTP_TIMEOUT = "300"
SERVICES = ("detector", "sender", "checker")


@dataclass(frozen=True)
class SizeResult:
    size: int
    fill_seconds: float
    idle: dict[str, Cost]
    busy: Cost
    naive: Cost


def fill(box: Sandbox, count: int) -> None:
    """``count`` records that finished the pipeline: registered, texted, delivered."""
    add_records(box.project, box.clock, range(1, count + 1), "delivered")


def add_due(box: Sandbox, size: int) -> None:
    """BUSY participants registered and due now (SMS_DELAY_MINUTES=0)."""
    add_records(box.project, box.clock, range(size + 1, size + BUSY + 1), "registered", "61755501")


def measure(size: int, log: Callable[[str], None]) -> SizeResult:
    with Sandbox(build_demo_project()) as box, tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        fill(box, size)
        fill_seconds = time.perf_counter() - started
        env = box.settings(
            LOCK_DIR=tmp,
            SMS_MAX_PER_SECOND="100",
            REDCAP_MAX_PER_MINUTE="100000",
            SMS_DELAY_MINUTES="0",
            HTTP_TIMEOUT_SECONDS=HTTP_TIMEOUT,
        )
        clock = ManualClock(datetime(2026, 3, 2, 12, tzinfo=UTC))

        def ctx(twilio: bool = True) -> Context:
            return build_context(
                Settings.from_env(env), needs_twilio=twilio, needs_survey=twilio, clock=clock
            )

        sender = Sender(dry_run=False)
        idle = {
            "detector": idle_cost(box, ctx(False), registration_detector.run_once),
            "sender": idle_cost(box, ctx(), sender.run_once),
            "checker": idle_cost(box, ctx(), delivery_checker.run_once),
        }
        for name in SERVICES:
            log(f"  {name} idle: {describe(idle[name])}")

        naive_ctx = ctx()
        fields = [
            *export_fields(naive_ctx, naive_ctx.rules.every),
            naive_ctx.settings.registration_complete_field,
        ]
        fields = list(dict.fromkeys(fields))
        naive, rows = timed(box, lambda: naive_ctx.redcap.export(fields))
        assert isinstance(rows, list)
        assert len(rows) == size, "the naive export lost records"
        log(f"  naive poller: {describe(naive)} ({len(fields)} fields, {len(rows):,} rows)")

        add_due(box, size)
        busy_ctx = ctx()
        busy, result = timed(box, lambda: sender.run_once(busy_ctx))
        assert isinstance(result, CycleResult)
        log(f"  sender busy ({BUSY} due): {describe(busy)} ({result.summary()})")
        log(f"    by kind: {dict(box.redcap.server.stats.requests)}")
        return SizeResult(size, fill_seconds, idle, busy, naive)


HEADER = (
    "records | idle cycle, each service | sender busy, 25 due | naive poller cycle "
    "| naive / ours, idle | naive / ours, busy"
)


def table(results: list[SizeResult]) -> str:
    return markdown(HEADER, [_cells(r) for r in results])


def _cells(r: SizeResult) -> tuple[str, ...]:
    """One size's row: our idle and busy cycles, the naive poller's, and the ratios."""
    idle_requests = {cost.requests for cost in r.idle.values()}
    idle_bytes = sum(cost.bytes_out for cost in r.idle.values())
    idle_ms = "/".join(f"{r.idle[name].seconds * 1000:.0f}" for name in SERVICES)
    idle_seconds = sum(cost.seconds for cost in r.idle.values())
    idle_text = (
        f"{'/'.join(map(str, sorted(idle_requests)))} request, "
        f"{size_text(idle_bytes / len(r.idle))}, {idle_ms} ms"
    )
    busy_text = (
        f"{r.busy.requests} requests, {size_text(r.busy.bytes_out)}, {duration(r.busy.seconds)}"
    )
    naive_text = f"{size_text(r.naive.bytes_out)}, {duration(r.naive.seconds)}"
    ratio_idle = (
        f"{r.naive.bytes_out / idle_bytes:,.0f}× bytes, {r.naive.seconds / idle_seconds:.1f}× time"
    )
    ratio_busy = (
        f"{r.naive.bytes_out / r.busy.bytes_out:,.0f}× bytes, "
        f"{r.naive.seconds / r.busy.seconds:.1f}× time"
    )
    return (f"{r.size:,}", idle_text, busy_text, naive_text, ratio_idle, ratio_busy)


def run(sizes: list[int], seconds: float) -> int:
    cases = [
        (f"project of {size:,} records (all delivered):", partial(measure, size)) for size in sizes
    ]
    return run_cases("cycle_cost", seconds, cases, table)


def main(argv: list[str] | None = None) -> int:
    args = size_options(__doc__ or "", "1000,10000,100000").parse_args(argv)
    return run(sizes_of(args.sizes), args.budget)


if __name__ == "__main__":
    raise SystemExit(main())
