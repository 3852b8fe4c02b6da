"""What REDCap evaluates for the services' polling, before (a full export every cycle) and after
change probes with a sweep every SWEEP_MINUTES (messaging.probes), by project size.

Run: ``.venv/bin/python -m bench.probe_cost [--sizes 1000,10000,100000] [--budget 1500]``.
For each size it starts the sandbox, fills the demo project with N records through the pipeline
(``delivered``, logged ten minutes before the services start), and counts, with the REDCap
simulator's ``filter_work`` (the rows each export evaluated, as REDCap's PHP does one by one):

- per service (detector, sender, delivery checker), an idle cycle of each mode: before
  (``SWEEP_MINUTES=0``: every cycle a full export), a sweep, and an idle probe; its requests and
  its time in the simulator;
- a busy cycle: 25 new registrations logged since the last cycle, marked by the detector and
  sent by the sender (rows evaluated by both, requests of both), before and after;
- the latency, in simulated time at POLL_INTERVAL_SECONDS=10, of a new registration (from its
  log entry to ``registered``) and of a time-based send (a 1-minute delay: from due to sent).

Rows per idle minute: before, 6 cycles x 3 services x N; after, 6 idle probes per service plus
each service's sweep divided by SWEEP_MINUTES (15). Every server it starts is stopped on the
way out; the whole run gives up after ``--budget`` seconds (exit 1).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from bench.measure import markdown, run_cases, size_options, sizes_of
from common.clock import ManualClock
from common.runner import CycleResult
from common.settings import Settings
from messaging.context import Context, build_context
from sandbox.participants import add_records
from sandbox.redcap.demo import build_demo_project
from sandbox.session import Sandbox
from services import delivery_checker, registration_detector
from services.sms_sender import Sender

BUSY = 25
POLL = 10.0  # seconds: POLL_INTERVAL_SECONDS' default
SWEEP = 15.0  # minutes: SWEEP_MINUTES' default
HTTP_TIMEOUT = "300"
SERVICES = ("detector", "sender", "checker")
Cycle = Callable[[Context], CycleResult]


@dataclass(frozen=True)
class Work:
    """One cycle as REDCap saw it."""

    rows: int
    requests: int
    seconds: float


@dataclass(frozen=True)
class SizeResult:
    size: int
    fill_seconds: float
    before: dict[str, Work]  # idle, full export
    sweep: dict[str, Work]
    probe: dict[str, Work]  # idle
    busy_before: Work  # detector + sender, 25 new and due
    busy_after: Work
    latency_new: float  # seconds, simulated
    latency_due: float

    def idle_minute_before(self) -> float:
        return sum(work.rows for work in self.before.values()) * 60 / POLL

    def idle_minute_after(self) -> float:
        probes = sum(work.rows for work in self.probe.values()) * 60 / POLL
        return probes + sum(work.rows for work in self.sweep.values()) / SWEEP


class Bench:
    """One sandbox of ``size`` records and the services' contexts on a shared manual clock."""

    def __init__(self, box: Sandbox, env: dict[str, str]) -> None:
        self.box = box
        self.env = env
        self.clock = ManualClock(box.clock.now().replace(microsecond=0))

    def ctx(self, twilio: bool, **overrides: str) -> Context:
        return build_context(
            Settings.from_env({**self.env, **overrides}),
            needs_twilio=twilio,
            needs_survey=twilio,
            clock=self.clock,
        )

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.box.clock.advance(seconds)

    def measure(self, cycles: list[tuple[Context, Cycle]]) -> Work:
        """Run ``cycles`` one after the other; the rows, requests and seconds of them all."""
        work = self.box.project.filter_work
        work.reset()
        self.box.redcap.server.reset_stats()
        started = time.perf_counter()
        for ctx, cycle in cycles:
            cycle(ctx)
        seconds = time.perf_counter() - started
        return Work(work.total, self.box.redcap.server.stats.total_requests(), seconds)

    def services(self, **overrides: str) -> dict[str, tuple[Context, Cycle]]:
        return {
            "detector": (self.ctx(False, **overrides), registration_detector.run_once),
            "sender": (self.ctx(True, **overrides), Sender(dry_run=False).run_once),
            "checker": (self.ctx(True, **overrides), delivery_checker.run_once),
        }


def measure(size: int, log: Callable[[str], None]) -> SizeResult:
    with Sandbox(build_demo_project()) as box, tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        add_records(box.project, box.clock, range(1, size + 1), "delivered")
        fill_seconds = time.perf_counter() - started
        env = box.settings(
            LOCK_DIR=tmp,
            SMS_MAX_PER_SECOND="100",
            REDCAP_MAX_PER_MINUTE="100000",
            SMS_DELAY_MINUTES="0",
            HTTP_TIMEOUT_SECONDS=HTTP_TIMEOUT,
            MAX_NEW_PER_CYCLE="1000",
        )
        bench = Bench(box, env)
        bench.advance(600)  # the fill is old news: ten minutes before the services start
        before_services = bench.services(SWEEP_MINUTES="0")
        after_services = bench.services(SWEEP_MINUTES=f"{SWEEP:g}")
        before = {name: bench.measure([pair]) for name, pair in before_services.items()}
        sweep = {name: bench.measure([pair]) for name, pair in after_services.items()}
        bench.advance(POLL)
        probe = {name: bench.measure([pair]) for name, pair in after_services.items()}
        for name in SERVICES:
            log(
                f"  {name}: idle full export {_text(before[name])}; sweep {_text(sweep[name])}; "
                f"idle probe {_text(probe[name])}"
            )
        busy_before = _busy(bench, before_services, size + 1)
        bench.advance(180)  # past the probes' margin, then one cycle sees those changes
        bench.measure(list(after_services.values()))
        busy_after = _busy(bench, after_services, size + 1 + BUSY)
        log(f"  busy ({BUSY} new, due at once): before {_text(busy_before)}")
        log(f"  busy ({BUSY} new, due at once): after {_text(busy_after)}")
        new, due = _latency(bench, size + 1 + 2 * BUSY)
        log(
            f"  latency (simulated, poll {POLL:g} s): new registration {new:g} s, "
            f"due send {due:g} s"
        )
        return SizeResult(
            size, fill_seconds, before, sweep, probe, busy_before, busy_after, new, due
        )


def _text(work: Work) -> str:
    return f"{work.rows:,} rows, {work.requests} req, {work.seconds * 1000:,.0f} ms"


def _busy(bench: Bench, services: dict[str, tuple[Context, Cycle]], first: int) -> Work:
    """BUSY registrations logged now, then a detector and a sender cycle."""
    add_records(
        bench.box.project, bench.box.clock, range(first, first + BUSY), "", "61755501"
    )  # registration complete, no status yet
    bench.advance(POLL)
    return bench.measure([services["detector"], services["sender"]])


def _latency(bench: Bench, record: int) -> tuple[float, float]:
    """Simulated seconds from a registration's log entry to ``registered`` (probe), and from
    its 1-minute delay's end to ``sms_sent`` (schedule), cycles every POLL seconds."""
    delayed = bench.services(SWEEP_MINUTES=f"{SWEEP:g}", SMS_DELAY_MINUTES="1")
    for ctx, cycle in delayed.values():
        cycle(ctx)  # each one's sweep
    add_records(bench.box.project, bench.box.clock, range(record, record + 1), "", "61755502")
    logged = bench.clock.now()
    marked = due = None
    for _ in range(40):
        bench.advance(POLL)
        for ctx, cycle in delayed.values():
            cycle(ctx)
        status = _status(bench, str(record))
        if marked is None and status:
            marked = bench.clock.now()
            due = marked  # stamped by the detector at this cycle's time; due a minute later
        if status == "sms_sent":
            assert marked is not None
            assert due is not None
            sent = bench.clock.now()
            return (marked - logged).total_seconds(), (sent - due).total_seconds() - 60
    raise RuntimeError("the delayed message was never sent")


def _status(bench: Bench, record: str) -> str:
    with bench.box.project.lock:
        stored = bench.box.project.records[record]
        return next(
            (v["pipeline_status"] for v in stored.slots.values() if "pipeline_status" in v), ""
        )


HEADER = (
    "records | rows REDCap evaluated per idle minute, before | after | idle cycle, each service: "
    "requests before / after | busy cycle, detector + sender: rows before / after "
    "| full export / probe time (sender)"
)


def table(results: list[SizeResult]) -> str:
    return markdown(HEADER, [_cells(r) for r in results])


def _cells(r: SizeResult) -> tuple[str, ...]:
    requests_before = "/".join(str(r.before[name].requests) for name in SERVICES)
    requests_after = "/".join(str(r.probe[name].requests) for name in SERVICES)
    return (
        f"{r.size:,}",
        f"{r.idle_minute_before():,.0f}",
        f"{r.idle_minute_after():,.0f}",
        f"{requests_before} / {requests_after}",
        f"{r.busy_before.rows:,} / {r.busy_after.rows:,}",
        f"{r.before['sender'].seconds * 1000:,.0f} ms / {r.probe['sender'].seconds * 1000:,.0f} ms",
    )


def run(sizes: list[int], seconds: float) -> int:
    cases = [(f"project of {size:,} records:", partial(measure, size)) for size in sizes]
    return run_cases("probe_cost", seconds, cases, table)


def main(argv: list[str] | None = None) -> int:
    args = size_options(__doc__ or "", "1000,10000,100000").parse_args(argv)
    return run(sizes_of(args.sizes), args.budget)


if __name__ == "__main__":
    raise SystemExit(main())
