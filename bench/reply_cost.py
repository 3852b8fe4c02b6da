"""What a reply poller cycle costs Twilio and REDCap, by replies in the window and project size.

Run: ``.venv/bin/python -m bench.reply_cost [--sizes 1000,10000] [--windows 10,100]``.
For each project size the demo project gets a rule that takes replies (YES / NO, with
auto-answers) and that many records it has texted an hour ago (``delivered``, each its own
number). Then, with TWILIO_FROM_NUMBER (the list asks for messages ``To`` our number):

- an idle cycle with no inbound message in the window (the median of three after a warm-up);
- for each window N, the window topped up to N replies from distinct participants, one cycle
  to record them, then an idle cycle with those N already recorded;
- after the first window, a busy cycle: 25 new replies (the window also holds the first N).

Each cycle reports Twilio list requests and bytes, REDCap requests and bytes, the size of the
export's ``filterLogic`` and REDCap's time on it, and the wall time; one poller lives through a
size's cycles, as the service's does. Last, on the first size, the same idle cycle with
TWILIO_MESSAGING_SERVICE_SID instead, where the list cannot ask for ``To`` and reads the
account's outbound messages too: the first cycle (which also asks Twilio for the service's
numbers, then trusted for 15 minutes), 10 recorded replies, then 0, 250 and 1,000 outbound
messages sent after them. It prints a block per size, then the Markdown tables of
``docs/PERFORMANCE.md``. A window of 1,000 numbers is not in the default: the REDCap simulator
cannot answer that export (see ``docs/PERFORMANCE.md``). Every server it starts is stopped on
the way out.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.measure import (
    IDLE_RUNS,
    BudgetExceeded,
    budget,
    duration,
    machine,
    markdown,
    size_text,
)
from bench.rule_cost import FilterLog
from common.clock import ManualClock
from common.field_types import WITH_SECONDS
from common.pipeline import Status
from common.settings import Settings
from messaging.context import Context, build_context
from messaging.rules import Rule
from messaging.rules_file import load_rules
from sandbox.clock import SimClock
from sandbox.redcap.demo import build_demo_project
from sandbox.redcap.importer import import_rows
from sandbox.rehearsal import add_rule_fields
from sandbox.session import Sandbox
from services import reply_poller

START = datetime(2026, 3, 2, 12, tzinfo=UTC)
BUSY = 25
RULE = """
[[rule]]
name = "visit"
when = "[registration_complete] = '2'"
delay_minutes = 0
template = "Your visit is tomorrow. Reply YES to confirm or NO to cancel."
replies.confirmed = ["yes", "y", "si"]
replies.cancelled = ["no", "n"]
answer_confirmed = "Thank you, your visit is confirmed."
answer_cancelled = "Thank you. We will call you to find another time."
"""
LIST = "messages/GET/list"
NUMBERS = "service_numbers/GET/list"


def phone(n: int) -> str:
    return f"+1617555{n % 10000:04d}"


@dataclass(frozen=True)
class Cycle:
    """What one poller cycle cost."""

    twilio_lists: int
    twilio_bytes: int
    numbers_requests: int  # the Messaging Service's numbers asked of Twilio
    numbers_bytes: int
    redcap_requests: int
    redcap_bytes: int
    filter_bytes: int
    redcap_seconds: float
    seconds: float
    summary: str

    def line(self) -> str:
        return (
            f"Twilio {self.twilio_lists} list ({size_text(self.twilio_bytes)}); REDCap "
            f"{self.redcap_requests} req, {size_text(self.redcap_bytes)}, filterLogic "
            f"{size_text(self.filter_bytes)} ({self.redcap_seconds * 1000:.0f} ms); "
            f"{duration(self.seconds)}; {self.summary}"
        )


class Rig:
    """One sandbox with the reply rule, ``records`` texted records and a poller context."""

    def __init__(self, box: Sandbox, rule: Rule, env: dict[str, str]) -> None:
        self.box, self.rule = box, rule
        self.filters = FilterLog(box.redcap.server.app)
        box.redcap.server.app = self.filters
        self.clock = ManualClock(START)
        self.env = env
        self.ctx = self.context()
        self.replied = 0
        self.poller = reply_poller.ReplyPoller()  # one process: it remembers what it may

    def context(self, **overrides: str) -> Context:
        settings = Settings.from_env({**self.env, **overrides})
        return build_context(settings, needs_twilio=True, clock=self.clock)

    def later(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.box.clock.advance(seconds)

    def reply(self, count: int) -> None:
        """``count`` more participants (the next records in turn) text back, a second apart."""
        for n in range(self.replied + 1, self.replied + count + 1):
            self.later(1)
            body = "yes" if n % 2 else "no"
            self.box.twilio.inject_inbound(phone(n), self.box.twilio.from_number, body)
        self.replied += count

    def cycle(self, ctx: Context | None = None) -> Cycle:
        box = self.box
        box.redcap.server.reset_stats()
        box.twilio.server.reset_stats()
        self.filters.exports.clear()
        started = time.perf_counter()
        result = self.poller.run_once(ctx or self.ctx)
        seconds = time.perf_counter() - started
        redcap, twilio = box.redcap.server.stats, box.twilio.server.stats
        return Cycle(
            twilio_lists=twilio.requests[LIST],
            twilio_bytes=twilio.bytes_out[LIST],
            numbers_requests=twilio.requests[NUMBERS],
            numbers_bytes=twilio.bytes_out[NUMBERS],
            redcap_requests=redcap.total_requests(),
            redcap_bytes=sum(redcap.bytes_out.values()),
            filter_bytes=sum(size for size, _ in self.filters.exports),
            redcap_seconds=sum(took for _, took in self.filters.exports),
            seconds=seconds,
            summary=result.summary(),
        )

    def idle(self, ctx: Context | None = None) -> Cycle:
        self.cycle(ctx)  # warm-up: connections, and anything new is recorded
        runs = sorted((self.cycle(ctx) for _ in range(IDLE_RUNS)), key=lambda c: c.seconds)
        return runs[IDLE_RUNS // 2]


def texted(rule: Rule, first: int, count: int) -> list[dict[str, object]]:
    """Records the rule texted an hour before START, each at its own number."""
    f = rule.fields
    sent = (START - timedelta(hours=1)).strftime(WITH_SECONDS)
    return [
        {
            "record_id": str(n),
            "first_name": "Ada",
            "phone_number": phone(n),
            "registration_complete": "2",
            f.status: Status.DELIVERED,
            f.registered_at: sent,
            f.sent_at: sent,
            f.attempts: "1",
            f.sid: f"SM{n:032x}",
            f.to: phone(n),
            f.delivery_status: "delivered",
        }
        for n in range(first, first + count)
    ]


def fill(box: Sandbox, rule: Rule, records: int) -> None:
    for first in range(1, records + 1, 500):
        rows = texted(rule, first, min(500, records + 1 - first))
        import_rows(
            box.project, rows, overwrite=False, date_format="YMD", now=box.clock.local_naive()
        )


def open_rig(box: Sandbox, tmp: str, path: Path, rule: Rule, records: int) -> Rig:
    fill(box, rule, records)
    env = box.settings(
        LOCK_DIR=tmp,
        RULES_FILE=str(path),
        REDCAP_MAX_PER_MINUTE="100000",
        HTTP_TIMEOUT_SECONDS="120",
    )
    return Rig(box, rule, env)


def sandbox_for(tmp: str) -> tuple[Path, Rule, Sandbox]:
    path = Path(tmp) / "rules.toml"
    path.write_text(RULE, encoding="utf-8")
    [rule] = load_rules(path, default_event="")
    project = add_rule_fields(build_demo_project(), [rule])
    return path, rule, Sandbox(project, clock=SimClock(UTC, START))


def measure(
    records: int, windows: list[int], say: Callable[[str], None]
) -> list[tuple[str, Cycle]]:
    """Idle with nothing, idle with each window of recorded replies, busy with BUSY new."""
    rows: list[tuple[str, Cycle]] = []
    with tempfile.TemporaryDirectory() as tmp:
        path, rule, box = sandbox_for(tmp)
        with box:
            rig = open_rig(box, tmp, path, rule, records)

            def show(label: str, cycle: Cycle) -> None:
                rows.append((label, cycle))
                say(f"  {label}: {cycle.line()}")

            show("idle, no inbound", rig.idle())
            for number, window in enumerate(windows):
                rig.reply(window - rig.replied)
                rig.cycle()  # records them
                show(f"idle, {window:,} recorded replies in the window", rig.idle())
                if number == 0:
                    rig.reply(BUSY)
                    show(f"busy, {BUSY} new replies (+{window:,} recorded)", rig.cycle())
    return rows


def service_mode(records: int, say: Callable[[str], None]) -> list[tuple[str, Cycle]]:
    """With a Messaging Service the list is the account's: outbound messages page too."""
    rows: list[tuple[str, Cycle]] = []
    with tempfile.TemporaryDirectory() as tmp:
        path, rule, box = sandbox_for(tmp)
        with box:
            rig = open_rig(box, tmp, path, rule, records)
            service = box.twilio.messaging_service_sid
            ctx = rig.context(TWILIO_FROM_NUMBER="", TWILIO_MESSAGING_SERVICE_SID=service)
            rig.reply(10)
            first = rig.cycle(ctx)
            rows.append(("first cycle: 10 new replies", first))
            say(f"  first cycle: {first.line()}")
            sent = 0
            for total in (0, 250, 1000):
                for n in range(sent, total):
                    form = {
                        "To": [phone(5000 + n)],
                        "MessagingServiceSid": [service],
                        "Body": ["Hi"],
                    }
                    box.twilio.store.create(form)
                sent = total
                rig.later(10)  # they reach "sent": DateSent is set
                cycle = rig.idle(ctx)
                label = f"10 recorded replies, then {total:,} outbound messages"
                rows.append((label, cycle))
                say(f"  {label}: {cycle.line()}")
    return rows


HEADER = (
    "records | cycle | Twilio lists | service numbers | REDCap | filterLogic (REDCap's time) "
    "| time | outcome"
)


def table(results: dict[int, list[tuple[str, Cycle]]]) -> str:
    rows = []
    for records, cycles in results.items():
        for label, c in cycles:
            plural = "" if c.redcap_requests == 1 else "s"
            filter_cell = (
                f"{size_text(c.filter_bytes)} ({duration(c.redcap_seconds)})"
                if c.filter_bytes
                else "-"
            )
            numbers = (
                f"{c.numbers_requests} ({size_text(c.numbers_bytes)})"
                if c.numbers_requests
                else "-"
            )
            rows.append(
                (
                    f"{records:,}",
                    label,
                    f"{c.twilio_lists} ({size_text(c.twilio_bytes)})",
                    numbers,
                    f"{c.redcap_requests} request{plural}, {size_text(c.redcap_bytes)}",
                    filter_cell,
                    duration(c.seconds),
                    c.summary,
                )
            )
    return markdown(HEADER, rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reply_cost", description=__doc__)
    parser.add_argument("--sizes", default="1000,10000", help="project sizes (records)")
    parser.add_argument("--windows", default="10,100", help="recorded replies in the window")
    parser.add_argument("--budget", type=float, default=900, help="seconds before giving up")
    args = parser.parse_args(argv)
    sizes = [int(n) for n in args.sizes.split(",")]
    windows = sorted(int(n) for n in args.windows.split(","))
    if max(windows[-1], windows[0] + BUSY) > min(sizes):
        parser.error("a window passes the smallest size: each reply comes from its own record")
    results: dict[int, list[tuple[str, Cycle]]] = {}
    try:
        with budget(args.budget):
            for records in sizes:
                print(f"{records:,} records, TWILIO_FROM_NUMBER:", flush=True)
                results[records] = measure(records, windows, lambda s: print(s, flush=True))
            print(f"{sizes[0]:,} records, TWILIO_MESSAGING_SERVICE_SID:", flush=True)
            service = {sizes[0]: service_mode(sizes[0], lambda s: print(s, flush=True))}
    except BudgetExceeded as exc:
        print(f"reply_cost: {exc}; the sandbox was stopped", file=sys.stderr)
        return 1
    print(f"\n{machine()}\n")
    print(table(results))
    print()
    print(table(service))
    return 0


if __name__ == "__main__":
    sys.exit(main())
