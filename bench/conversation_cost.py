"""What the conversation log (CONVERSATION_LOG=1) costs REDCap, by project size, log off and on.

Run: ``.venv/bin/python -m bench.conversation_cost [--records 1000,100000] [--busy 25]
[--budget 1500]``. For each size, and for the log off then on (a sandbox of its own each time,
the same project: the reply rule of :mod:`bench.reply_cost` with its fields and the log's
instrument), it fills the demo project with N records the rule texted a month ago
(``delivered``, outside any reply window) and counts, with the REDCap simulator's stats, the
requests and the bytes sent to REDCap (the requests' bodies) and received from it (its answers):

- an idle sender cycle and an idle reply poller cycle (the median of three after a warm-up);
- a busy sender cycle: ``--busy`` records due now, each at its own number, texted;
- a busy poller cycle: those participants text back (YES or NO, the rule's auto-answers left
  to the next sender cycle), one cycle records their replies;
- an idle poller cycle again, those replies still in its window (the median of three after a
  warm-up).

With the log on it checks REDCap holds each message sent and each text read on the busy
records' threads (and nothing with it off). It prints a block per case, then the Markdown table
of ``docs/PERFORMANCE.md``, with a row of what the log added at each size. Every server it
starts is stopped on the way out; the whole run gives up after ``--budget`` seconds (exit 1).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, timedelta
from functools import partial
from pathlib import Path

from bench.measure import (
    Cost,
    idle_cost,
    markdown,
    run_cases,
    size_options,
    size_text,
    sizes_of,
    timed,
)
from bench.reply_cost import RULE, START
from bench.rule_cost import fill, person, stamp
from common.clock import ManualClock
from common.pipeline import Status
from common.runner import CycleResult
from common.settings import Settings
from messaging import thread
from messaging.context import Context, build_context
from messaging.rules import Rule
from messaging.rules_file import load_rules
from sandbox.clock import SimClock
from sandbox.redcap.demo import build_demo_project
from sandbox.redcap.importer import import_rows
from sandbox.rehearsal import add_rule_fields
from sandbox.session import Sandbox
from services.reply_poller import ReplyPoller
from services.sms_sender import Sender

MODES = ("off", "on")
CYCLES = (
    "idle sender",
    "idle poller",
    "busy sender",
    "busy poller",
    "idle poller, replies in window",
)


def labels(busy: int) -> tuple[str, ...]:
    """The table's names of CYCLES with ``busy`` messages."""
    return (
        *CYCLES[:2],
        f"sender, {busy} sent",
        f"poller, {busy} replies",
        f"idle poller, those {busy} in its window",
    )


def busy_phone(n: int) -> str:
    """The due participants' numbers: none of the filled records' (617 555 ....)."""
    return f"+1212555{n % 10000:04d}"


@dataclass(frozen=True)
class CaseResult:
    records: int
    log: str  # "off" or "on"
    fill_seconds: float
    costs: dict[str, Cost]  # by CYCLES


def add_due(box: Sandbox, rule: Rule, first: int, busy: int) -> None:
    """``busy`` records the rule registered a minute ago (no delay): due now."""
    f = rule.fields
    ago = stamp(START - timedelta(minutes=1))
    rows: list[dict[str, object]] = [
        {**person(n, busy_phone(n)), f.status: Status.REGISTERED, f.registered_at: ago}
        for n in range(first, first + busy)
    ]
    import_rows(box.project, rows, overwrite=False, date_format="YMD", now=box.clock.local_naive())


def reply(box: Sandbox, first: int, busy: int) -> None:
    """The ``busy`` due participants text back, a second apart."""
    for n in range(first, first + busy):
        box.clock.advance(1)
        body = "yes" if n % 2 else "no"
        box.twilio.inject_inbound(busy_phone(n), box.twilio.from_number, body)


def logged(box: Sandbox, first: int, busy: int) -> tuple[int, int]:
    """The busy records' thread entries in REDCap: (messages sent, texts read)."""
    counts = {thread.OUT: 0, thread.IN: 0}
    with box.project.lock:
        for n in range(first, first + busy):
            for (_event, form, _instance), values in box.project.records[str(n)].slots.items():
                if form == thread.FORM:
                    counts[values[thread.DIRECTION]] += 1
    return counts[thread.OUT], counts[thread.IN]


def measure(records: int, log: str, busy: int, say: Callable[[str], None]) -> CaseResult:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rules.toml"
        path.write_text(RULE, encoding="utf-8")
        [rule] = load_rules(path, default_event="")
        project = add_rule_fields(build_demo_project(), [rule], conversation_log=True)
        with Sandbox(project, clock=SimClock(UTC, START)) as box:
            box.clock.freeze()  # moved only with the services' clock
            started = time.perf_counter()
            fill(box, (rule,), records, 0)
            fill_seconds = time.perf_counter() - started
            env = box.settings(
                LOCK_DIR=tmp,
                RULES_FILE=str(path),
                CONVERSATION_LOG="1" if log == "on" else "0",
                SMS_MAX_PER_SECOND="100",
                REDCAP_MAX_PER_MINUTE="100000",
                HTTP_TIMEOUT_SECONDS="300",
            )
            clock = ManualClock(START)

            def ctx() -> Context:
                return build_context(Settings.from_env(env), needs_twilio=True, clock=clock)

            def later(seconds: float) -> None:
                clock.advance(seconds)
                box.clock.advance(seconds)

            sender, poller = Sender(dry_run=False), ReplyPoller()
            sender_ctx, poller_ctx = ctx(), ctx()
            costs = {
                CYCLES[0]: idle_cost(box, sender_ctx, sender.run_once),
                CYCLES[1]: idle_cost(box, poller_ctx, poller.run_once),
            }
            names = labels(busy)
            for name in CYCLES[:2]:
                say(f"  {name}: {text(costs[name])}")
            first = records + 1
            add_due(box, rule, first, busy)
            later(10)
            costs[CYCLES[2]] = worked(box, say, names[2], partial(sender.run_once, sender_ctx))
            later(60)
            reply(box, first, busy)
            clock.advance(busy)  # the services' clock caught up with the texts
            later(10)
            costs[CYCLES[3]] = worked(box, say, names[3], partial(poller.run_once, poller_ctx))
            later(10)
            costs[CYCLES[4]] = idle_cost(box, poller_ctx, poller.run_once)
            say(f"  {names[4]}: {text(costs[CYCLES[4]])}")
            sent, read = logged(box, first, busy)
            say(f"  on the busy records' threads: {sent} messages sent, {read} texts read")
            expected = (busy, busy) if log == "on" else (0, 0)
            assert (sent, read) == expected, f"the log holds {(sent, read)}, not {expected}"
            return CaseResult(records, log, fill_seconds, costs)


def worked(
    box: Sandbox, say: Callable[[str], None], name: str, cycle: Callable[[], CycleResult]
) -> Cost:
    cost, result = timed(box, cycle)
    assert isinstance(result, CycleResult)
    say(f"  {name}: {text(cost)} ({result.summary()})")
    say(f"    by kind: {dict(box.redcap.server.stats.requests)}")
    return cost


def text(cost: Cost) -> str:
    return (
        f"{cost.requests} req, {cost.bytes_in:,} B sent, {cost.bytes_out:,} B received, "
        f"{cost.seconds * 1000:,.0f} ms"
    )


def cell(cost: Cost) -> str:
    plural = "" if cost.requests == 1 else "s"
    return (
        f"{cost.requests} request{plural}, {size_text(cost.bytes_in)} sent / "
        f"{size_text(cost.bytes_out)} received"
    )


def added(on: Cost, off: Cost) -> str:
    return (
        f"+{on.requests - off.requests}, {size_text(on.bytes_in - off.bytes_in)} / "
        f"{size_text(on.bytes_out - off.bytes_out)}"
    )


def table(results: list[CaseResult], busy: int) -> str:
    rows: list[tuple[str, ...]] = []
    by_case = {(r.records, r.log): r for r in results}
    for r in results:
        rows.append((f"{r.records:,}", r.log, *(cell(r.costs[name]) for name in CYCLES)))
        off = by_case.get((r.records, "off"))
        if r.log == "on" and off is not None:
            deltas = (added(r.costs[name], off.costs[name]) for name in CYCLES)
            rows.append((f"{r.records:,}", "added by the log", *deltas))
    return markdown("records | log | " + " | ".join(labels(busy)), rows)


def run(sizes: list[int], busy: int, seconds: float) -> int:
    cases = [
        (f"project of {size:,} records, log {log}:", partial(measure, size, log, busy))
        for size in sizes
        for log in MODES
    ]
    return run_cases("conversation_cost", seconds, cases, partial(table, busy=busy))


def main(argv: list[str] | None = None) -> int:
    parser = size_options(__doc__ or "", "1000,100000", "--records")
    parser.add_argument("--busy", type=int, default=25, help="messages sent, then replies read")
    args = parser.parse_args(argv)
    return run(sizes_of(args.records), args.busy, args.budget)


if __name__ == "__main__":
    raise SystemExit(main())
