"""The send rate as Twilio receives it: achieved rate and the busiest 1-second window.

Run: ``.venv/bin/python -m bench.send_rate [--runs 200x10,60x1,20x1@0.2]``. Each run
``COUNTxRATE[@LATENCY]`` starts the sandbox, fills the demo project with COUNT participants due
now, and lets one real sender (real clock, ``SMS_MAX_PER_SECOND=RATE``) send them all in one
cycle, chunk after chunk. ``@LATENCY`` delays each create's answer by that many seconds at the
simulator, to stand in for the round trip to the real Twilio. The figures come from the
simulator's log of when each create arrived (``TwilioSim.arrivals``). A run is stopped (as SIGTERM
would) once it takes three times longer than it should.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import threading
import time
from dataclasses import dataclass

from common.settings import Settings
from messaging.context import build_context
from sandbox.faults import Fault
from sandbox.participants import add_records
from sandbox.redcap.demo import build_demo_project
from sandbox.session import Sandbox
from sandbox.twilio.arrivals import achieved_rate, busiest_window
from services.sms_sender import Sender


@dataclass(frozen=True)
class Run:
    count: int
    rate: float
    latency: float = 0.0

    @classmethod
    def parse(cls, text: str) -> Run:
        count, _, rest = text.partition("x")
        rate, _, latency = rest.partition("@")
        return cls(int(count), float(rate), float(latency or 0))


def fill(box: Sandbox, count: int) -> None:
    add_records(box.project, box.clock, range(1, count + 1), "registered")


def measure(run: Run) -> str:
    with Sandbox(build_demo_project()) as box, tempfile.TemporaryDirectory() as tmp:
        fill(box, run.count)
        if run.latency:
            box.twilio.server.faults.add(
                Fault(kind="latency", seconds=run.latency, times=run.count, match={"op": "create"})
            )
        env = box.settings(
            LOCK_DIR=tmp,
            SMS_MAX_PER_SECOND=f"{run.rate:g}",
            SMS_DELAY_MINUTES="0",
            REDCAP_MAX_PER_MINUTE="100000",  # the simulator's limiter is not what this measures
        )
        ctx = build_context(Settings.from_env(env), needs_twilio=True, needs_survey=True)
        bound = 3 * run.count / run.rate + 30
        timer = threading.Timer(bound, ctx.stop.set)  # bounded: stop as SIGTERM would
        timer.start()
        started = time.monotonic()
        try:
            result = Sender(dry_run=False).run_once(ctx)
        finally:
            timer.cancel()
        seconds = time.monotonic() - started
        times = [a.monotonic for a in box.twilio.arrivals()]
        return (
            f"{run.count} at SMS_MAX_PER_SECOND={run.rate:g}, {run.latency * 1000:.0f} ms added "
            f"per create: {len(times)} creates, achieved {achieved_rate(times):.3f}/s at Twilio "
            f"({achieved_rate(times) / run.rate:.1%} of the cap), busiest 1-s window "
            f"{busiest_window(times)}, cycle {seconds:.1f} s ({result.summary()})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", default="200x10,60x1,20x1@0.2,100x10@0.2")
    args = parser.parse_args()
    print(
        f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores, "
        f"Python {platform.python_version()}"
    )
    for text in args.runs.split(","):
        print(measure(Run.parse(text)), flush=True)


if __name__ == "__main__":
    main()
