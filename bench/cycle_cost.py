"""What one service cycle costs REDCap, by project size: requests, bytes and time.

Run: ``.venv/bin/python -m bench.cycle_cost [--sizes 100,1000,5000]``. It starts the sandbox,
fills the demo project with N records already through the pipeline (status ``delivered``), then
measures an idle cycle of each service, and a busy sender cycle with 25 participants due.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime

from common.clock import ManualClock
from common.runner import Context, CycleResult, build_context
from common.settings import Settings
from sandbox.redcap.demo import build_demo_project
from sandbox.redcap.importer import import_rows
from sandbox.session import Sandbox
from services import delivery_checker, registration_detector
from services.sms_sender import Sender

BUSY = 25


def fill(box: Sandbox, count: int) -> None:
    rows: list[dict[str, object]] = [
        {
            "record_id": str(n),
            "phone_number": f"617555{n % 10000:04d}",
            "registration_complete": "2",
            "pipeline_status": "delivered",
            "pipeline_sms_sid": f"SM{n:032x}",
        }
        for n in range(1, count + 1)
    ]
    import_rows(box.project, rows, overwrite=False, date_format="YMD", now=box.clock.local_naive())


def measure(box: Sandbox, ctx: Context, cycle: Callable[[Context], CycleResult]) -> str:
    cycle(ctx)  # warm: first use reads metadata once per process
    box.redcap.server.reset_stats()
    started = time.perf_counter()
    result = cycle(ctx)
    seconds = time.perf_counter() - started
    stats = box.redcap.server.stats
    return (
        f"{stats.total_requests():>3} req  {sum(stats.bytes_out.values()):>9,} B out  "
        f"{seconds * 1000:>7.1f} ms  ({result.summary()})"
    )


def run(sizes: list[int]) -> None:
    for size in sizes:
        with Sandbox(build_demo_project()) as box, tempfile.TemporaryDirectory() as tmp:
            fill(box, size)
            env = box.settings(LOCK_DIR=tmp, SMS_MAX_PER_SECOND="1000", SMS_DELAY_MINUTES="0")
            clock = ManualClock(datetime(2026, 3, 2, 12, tzinfo=UTC))

            def ctx(
                twilio: bool = True, env: dict[str, str] = env, clock: ManualClock = clock
            ) -> Context:
                settings = Settings.from_env(env)
                return build_context(
                    settings, needs_twilio=twilio, needs_survey=twilio, clock=clock
                )

            sender = Sender(dry_run=False)
            print(f"project of {size} records (all delivered):")
            print("  detector idle: " + measure(box, ctx(False), registration_detector.run_once))
            print("  sender idle:   " + measure(box, ctx(), sender.run_once))
            print("  checker idle:  " + measure(box, ctx(), delivery_checker.run_once))
            due = [
                {
                    "record_id": str(size + n),
                    "phone_number": f"61755501{n:02d}",
                    "email": f"p{n}@example.org",
                    "registration_complete": "2",
                    "pipeline_status": "registered",
                }
                for n in range(BUSY)
            ]
            import_rows(
                box.project,
                list(due),
                overwrite=False,
                date_format="YMD",
                now=box.clock.local_naive(),
            )
            busy_ctx = ctx()
            box.redcap.server.reset_stats()
            started = time.perf_counter()
            result = sender.run_once(busy_ctx)
            seconds = time.perf_counter() - started
            stats = box.redcap.server.stats
            print(
                f"  sender busy ({BUSY} due): {stats.total_requests()} REDCap req "
                f"{dict(stats.requests)}  {sum(stats.bytes_out.values()):,} B out  "
                f"{seconds * 1000:.0f} ms  ({result.summary()})"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="100,1000,5000")
    args = parser.parse_args()
    run([int(s) for s in args.sizes.split(",")])


if __name__ == "__main__":
    main()
