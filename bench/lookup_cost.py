"""What TWILIO_LOOKUP=1 adds to a busy sender cycle, by project size: REDCap's side and Twilio's.

Run: ``.venv/bin/python -m bench.lookup_cost [--records 1000,100000] [--busy 25]
[--budget 1500]``. For each size and each mode (a sandbox of its own each time: the demo project
with the reply rule of :mod:`bench.reply_cost`, its fields and ``relay_line_types``), it fills
the project with N records the rule is done with, adds ``--busy`` records due now, each at its
own number, and measures one sender cycle that texts them:

- ``off``: TWILIO_LOOKUP=0;
- ``on, new numbers``: TWILIO_LOOKUP=1, no number looked up before (each is asked);
- ``on, known numbers``: TWILIO_LOOKUP=1, each record already holding its number's line type.

It counts REDCap's requests and bytes (the simulator's stats), the requests Twilio received
(creates and lookups) and the lookups Twilio would charge, and checks every due participant was
texted once. It prints a block per case, then the Markdown table of ``docs/PERFORMANCE.md``.
Every server it starts is stopped on the way out; the whole run gives up after ``--budget``
seconds (exit 1).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from functools import partial
from pathlib import Path

from bench.conversation_cost import add_due, busy_phone, cell, text
from bench.measure import Cost, markdown, run_cases, size_options, sizes_of, timed
from bench.reply_cost import RULE, START
from bench.rule_cost import fill
from common.clock import ManualClock
from common.runner import CycleResult
from common.settings import Settings
from messaging.context import build_context
from messaging.line_types import LINE_TYPES
from messaging.rules_file import load_rules
from sandbox.clock import SimClock
from sandbox.redcap.demo import build_demo_project
from sandbox.redcap.importer import import_rows
from sandbox.rehearsal import add_rule_fields
from sandbox.session import Sandbox
from services.sms_sender import Sender

MODES = ("off", "on, new numbers", "on, known numbers")


@dataclass(frozen=True)
class CaseResult:
    records: int
    mode: str
    fill_seconds: float
    redcap: Cost
    twilio: dict[str, int]  # requests by kind: creates, lookups
    charged: int


def measure(records: int, mode: str, busy: int, say: Callable[[str], None]) -> CaseResult:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rules.toml"
        path.write_text(RULE, encoding="utf-8")
        [rule] = load_rules(path, default_event="")
        project = add_rule_fields(build_demo_project(), [rule], line_types=True)
        with Sandbox(project, clock=SimClock(UTC, START)) as box:
            box.clock.freeze()  # moved only with the services' clock
            started = time.perf_counter()
            fill(box, (rule,), records, 0)
            fill_seconds = time.perf_counter() - started
            first = records + 1
            add_due(box, rule, first, busy)
            if mode == MODES[2]:
                known: list[dict[str, object]] = [
                    {"record_id": str(n), LINE_TYPES: f"{busy_phone(n)} mobile"}
                    for n in range(first, first + busy)
                ]
                now = box.clock.local_naive()
                import_rows(box.project, known, overwrite=False, date_format="YMD", now=now)
            env = box.settings(
                LOCK_DIR=tmp,
                RULES_FILE=str(path),
                TWILIO_LOOKUP="0" if mode == MODES[0] else "1",
                SMS_MAX_PER_SECOND="100",
                REDCAP_MAX_PER_MINUTE="100000",
                HTTP_TIMEOUT_SECONDS="300",
            )
            clock = ManualClock(START)
            ctx = build_context(Settings.from_env(env), needs_twilio=True, clock=clock)
            clock.advance(10)
            box.clock.advance(10)
            box.twilio.server.reset_stats()
            cost, result = timed(box, partial(Sender(dry_run=False).run_once, ctx))
            assert isinstance(result, CycleResult)
            asked = box.twilio.server.stats.requests
            twilio = {
                "creates": sum(n for key, n in asked.items() if key.endswith("/create")),
                "lookups": sum(n for key, n in asked.items() if key.startswith("lookups")),
            }
            charged = box.twilio.line_types.charged
            say(f"  sender, {busy} due: {text(cost)} ({result.summary()})")
            say(f"    by kind: {dict(box.redcap.server.stats.requests)}")
            say(f"    Twilio: {twilio}, lookups charged {charged}")
            texted = sorted(str(m["to"]) for m in box.twilio.sent())
            wanted = sorted(busy_phone(n) for n in range(first, first + busy))
            assert texted == wanted, "every due participant is texted once"
            return CaseResult(records, mode, fill_seconds, cost, twilio, charged)


def table(results: list[CaseResult], busy: int) -> str:
    rows = [
        (
            f"{r.records:,}",
            r.mode,
            cell(r.redcap),
            f"{r.twilio['creates']} creates, {r.twilio['lookups']} lookups",
            str(r.charged),
            f"{r.redcap.seconds * 1000:,.0f} ms",
        )
        for r in results
    ]
    header = f"records | TWILIO_LOOKUP | REDCap, sender cycle with {busy} due | Twilio | "
    return markdown(header + "lookups charged | wall time", rows)


def run(sizes: list[int], busy: int, seconds: float) -> int:
    cases = [
        (f"project of {size:,} records, lookup {mode}:", partial(measure, size, mode, busy))
        for size in sizes
        for mode in MODES
    ]
    return run_cases("lookup_cost", seconds, cases, partial(table, busy=busy))


def main(argv: list[str] | None = None) -> int:
    parser = size_options(__doc__ or "", "1000,100000", "--records")
    parser.add_argument("--busy", type=int, default=25, help="participants due, each texted")
    args = parser.parse_args(argv)
    return run(sizes_of(args.records), args.busy, args.budget)


if __name__ == "__main__":
    raise SystemExit(main())
