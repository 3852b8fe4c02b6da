"""What a service cycle costs REDCap as the number of message rules grows.

Run: ``.venv/bin/python -m bench.rule_cost [--rules 1,5,20] [--records 1000] [--waiting 300]``.
For each rule count N it writes a RULES_FILE of N rules of three kinds in turn (a delay rule with
``stop_when`` and a survey link, a visit reminder anchored on ``visit_datetime``, a repeating
reminder), gives the demo project their fields (``add_rule_fields``) and fills it with
``--records`` records every rule has finished with (``delivered``, repeats done) and ``--waiting``
records waiting far ahead (registered for the delay and visit rules, a visit months away, between
two repeats of the repeating ones). Then, per service (detector, sender, checker):

- an idle cycle (the median of three after a warm-up): requests, bytes REDCap sent back, time,
  the size of the ``filterLogic`` sent, and how long REDCap took to answer that export;
- a busy cycle with 25 records due for the first rule only, one service after the other: the
  detector marks 25 new registrations, the sender texts 25 whose delay has passed, and the
  checker (a minute later) records their delivery.

It prints one block per rule count, then the Markdown table of ``docs/PERFORMANCE.md``. Every
server it starts is stopped on the way out; the run gives up after ``--budget`` seconds (exit 1).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

from bench.measure import (
    IDLE_RUNS,
    Cost,
    describe,
    duration,
    markdown,
    median_run,
    run_cases,
    size_text,
    timed,
)
from common.clock import ManualClock
from common.field_types import WITH_SECONDS
from common.pipeline import Status
from common.runner import CycleResult
from common.settings import Settings
from messaging.context import Context, build_context
from messaging.rules import Rule
from messaging.rules_file import load_rules
from sandbox.clock import SimClock
from sandbox.httpserver import App, Request, Response
from sandbox.redcap.demo import build_demo_project
from sandbox.redcap.importer import import_rows
from sandbox.rehearsal import add_rule_fields
from sandbox.session import Sandbox
from services import delivery_checker, registration_detector
from services.sms_sender import Sender

BUSY = 25
START = datetime(2026, 3, 2, 12, tzinfo=UTC)
SERVICES = ("detector", "sender", "checker")
FAR_VISIT = "2026-09-15 10:00"  # months ahead: no visit reminder is near
PAST_VISIT = "2026-02-10 10:00"

DELAY = """
[[rule]]
name = "r{n:02d}_delay"
when = "[registration_complete] = '2'"
delay_minutes = {delay}
survey = "interest_form"
stop_when = "[interest_form_complete] = '2'"
template = "Hi {{field:first_name}}, your survey is at {{survey_link}}"
"""
VISIT = """
[[rule]]
name = "r{n:02d}_visit"
when = "[visit_datetime] <> ''"
anchor = "visit_datetime"
offset_minutes = -{offset}
template = "See you {{field:visit_datetime:datetime}}. Reply STOP to opt out."
"""
REPEAT = """
[[rule]]
name = "r{n:02d}_repeat"
when = "[registration_complete] = '2' and [consent] = '1'"
delay_minutes = 1440
survey = "interest_form"
stop_when = "[interest_form_complete] = '2'"
repeat = 2
every_minutes = 10080
template = "A reminder: your survey is waiting at {{survey_link}}"
"""


def rules_text(count: int) -> str:
    """``count`` rules, delay / visit / repeat in turn; the first (the busy one) is due a day
    after registration, so records that registered just now wait well beyond the sender's
    61-minute look-ahead."""
    tables = []
    for i in range(count):
        kind, n = i % 3, i + 1
        if kind == 0:
            tables.append(DELAY.format(n=n, delay=1440 * (1 + i)))
        elif kind == 1:
            tables.append(VISIT.format(n=n, offset=1440 * (1 + i // 3)))
        else:
            tables.append(REPEAT.format(n=n))
    return "".join(tables)


class FilterLog:
    """The REDCap simulator's app, wrapped: each export's ``filterLogic`` and the time REDCap
    took to answer it (evaluating the filter record by record, then rendering the rows)."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.exports: list[tuple[int, float]] = []  # (filterLogic bytes, seconds)

    def describe(self, request: Request) -> dict[str, str]:
        return self.app.describe(request)

    def handle(self, request: Request) -> Response:
        logic = request.form().get("filterLogic", [""])[0]
        started = time.perf_counter()
        response = self.app.handle(request)
        if logic:
            self.exports.append((len(logic.encode("utf-8")), time.perf_counter() - started))
        return response


@dataclass(frozen=True)
class Idle:
    cost: Cost
    filter_bytes: int
    redcap_seconds: float


@dataclass
class CountResult:
    rules: int
    fill_seconds: float
    idle: dict[str, Idle] = field(default_factory=dict)
    busy: dict[str, Cost] = field(default_factory=dict)


def stamp(moment: datetime) -> str:
    return moment.strftime(WITH_SECONDS)


def finished(rule: Rule) -> dict[str, object]:
    """A rule's fields once it is done with a record: delivered, every repeat sent."""
    f = rule.fields
    values: dict[str, object] = {
        f.status: Status.DELIVERED,
        f.registered_at: "2026-02-01 11:00:00",
        f.sent_at: "2026-02-01 12:00:00",
        f.checked_at: "2026-02-01 12:01:00",
        f.attempts: "1",
        f.delivery_status: "delivered",
    }
    if f.count:
        values[f.count] = str(rule.messages)
    return values


def waiting(rule: Rule, now: datetime) -> dict[str, object]:
    """A rule's fields for a record it has not texted yet (delay, visit) or is between two
    messages of (repeat: one sent a day ago, the next a week after it)."""
    f = rule.fields
    if not rule.repeat:
        return {f.status: Status.REGISTERED, f.registered_at: stamp(now)}
    return {
        **finished(rule),
        f.sent_at: stamp(now - timedelta(days=1)),
        **({f.count: "1"} if f.count else {}),
    }


def person(n: int, phone: str) -> dict[str, object]:
    return {
        "record_id": str(n),
        "first_name": "Ada",
        "phone_number": phone,
        "email": f"p{n}@example.org",
        "consent": "1",
        "registration_complete": "2",
    }


def fill(box: Sandbox, rules: tuple[Rule, ...], records: int, waiters: int) -> None:
    """``records`` records every rule is done with, then ``waiters`` waiting far ahead."""
    rows: list[dict[str, object]] = []
    for n in range(1, records + 1):
        row = {**person(n, f"617555{n % 10000:04d}"), "visit_datetime": PAST_VISIT}
        for rule in rules:
            row.update(finished(rule))
            row[rule.fields.sid] = f"SM{n:032x}"
        rows.append(row)
    for n in range(records + 1, records + waiters + 1):
        row = {**person(n, f"617555{n % 10000:04d}"), "visit_datetime": FAR_VISIT}
        for rule in rules:
            row.update(waiting(rule, START))
        rows.append(row)
    for start in range(0, len(rows), 500):
        import_rows(
            box.project,
            rows[start : start + 500],
            overwrite=False,
            date_format="YMD",
            now=box.clock.local_naive(),
        )


def add_busy(box: Sandbox, rules: tuple[Rule, ...], first: int) -> None:
    """2 x BUSY records for the first rule only (every other rule settled with them,
    ``baseline``, and no visit date): BUSY new registrations it now applies to (the detector's
    work), and BUSY it registered before its delay, due now (the sender's, then the checker's)."""
    f = rules[0].fields
    ago = START - timedelta(minutes=rules[0].delay_minutes + 1)
    rows: list[dict[str, object]] = []
    for n in range(first, first + 2 * BUSY):
        row = person(n, f"61755501{n % 100:02d}")
        for rule in rules[1:]:
            row[rule.fields.status] = Status.BASELINE
        if n >= first + BUSY:
            row.update({f.status: Status.REGISTERED, f.registered_at: stamp(ago)})
        rows.append(row)
    import_rows(box.project, rows, overwrite=False, date_format="YMD", now=box.clock.local_naive())


def idle(
    box: Sandbox, log: FilterLog, ctx: Context, cycle: Callable[[Context], CycleResult]
) -> Idle:
    cycle(ctx)  # warm-up: the first request of a client also opens its connection
    runs: list[tuple[Cost, tuple[int, float]]] = []
    for _ in range(IDLE_RUNS):
        log.exports.clear()
        cost, _ = timed(box, lambda: cycle(ctx))
        [export] = log.exports  # an idle cycle is one filtered export
        runs.append((cost, export))
    cost, (filter_bytes, redcap_seconds) = median_run(runs)
    return Idle(cost, filter_bytes, redcap_seconds)


def measure(count: int, records: int, waiters: int, log: Callable[[str], None]) -> CountResult:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rules.toml"
        path.write_text(rules_text(count), encoding="utf-8")
        rules = load_rules(path, default_event="")
        project = add_rule_fields(build_demo_project(), rules)
        with Sandbox(project, clock=SimClock(UTC, START)) as box:
            started = time.perf_counter()
            fill(box, rules, records, waiters)
            result = CountResult(count, time.perf_counter() - started)
            filters = FilterLog(box.redcap.server.app)
            box.redcap.server.app = filters
            env = box.settings(
                LOCK_DIR=tmp,
                RULES_FILE=str(path),
                SMS_MAX_PER_SECOND="100",
                REDCAP_MAX_PER_MINUTE="100000",
                HTTP_TIMEOUT_SECONDS="120",
            )
            clock = ManualClock(START)

            def ctx(twilio: bool = True) -> Context:
                return build_context(
                    Settings.from_env(env), needs_twilio=twilio, needs_survey=twilio, clock=clock
                )

            def later(minutes: float) -> None:
                clock.advance(minutes * 60)
                box.clock.advance(minutes * 60)

            sender = Sender(dry_run=False)
            cycles: dict[str, Callable[[Context], CycleResult]] = {
                "detector": registration_detector.run_once,
                "sender": sender.run_once,
                "checker": delivery_checker.run_once,
            }
            for name, cycle in cycles.items():
                result.idle[name] = idle(box, filters, ctx(name != "detector"), cycle)
                shown = result.idle[name]
                log(
                    f"  {name} idle: {describe(shown.cost)}; filterLogic "
                    f"{shown.filter_bytes:,} B, REDCap answered in "
                    f"{shown.redcap_seconds * 1000:.0f} ms"
                )

            add_busy(box, rules, records + waiters + 1)
            for name, cycle in cycles.items():
                busy_ctx = ctx(name != "detector")
                cost, counts = timed(box, partial(cycle, busy_ctx))
                assert isinstance(counts, CycleResult)
                result.busy[name] = cost
                log(f"  {name} busy ({BUSY} due for one rule): {describe(cost)}")
                log(f"    {counts.summary()}; by kind: {dict(box.redcap.server.stats.requests)}")
                later(1)  # what the sender sent is delivered a minute later
            return result


HEADER = (
    "rules | service | idle cycle | filterLogic sent | REDCap's time on it "
    "| busy, 25 due for one rule"
)


def table(results: list[CountResult]) -> str:
    rows = []
    for r in results:
        for name in SERVICES:
            i, b = r.idle[name], r.busy[name]
            plural = "" if i.cost.requests == 1 else "s"
            idle = (
                f"{i.cost.requests} request{plural}, {size_text(i.cost.bytes_out)}, "
                f"{i.cost.seconds * 1000:.0f} ms"
            )
            busy = f"{b.requests} requests, {size_text(b.bytes_out)}, {duration(b.seconds)}"
            filtered = size_text(i.filter_bytes)
            rows.append((r.rules, name, idle, filtered, f"{i.redcap_seconds * 1000:.0f} ms", busy))
    return markdown(HEADER, rows)


def run(counts: list[int], records: int, waiters: int, seconds: float) -> int:
    cases = [
        (
            f"{count} rules, {records:,} records done + {waiters:,} waiting:",
            partial(measure, count, records, waiters),
        )
        for count in counts
    ]
    return run_cases("rule_cost", seconds, cases, table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rules", default="1,5,20", help="rule counts to measure")
    parser.add_argument("--records", type=int, default=1000, help="records every rule is done with")
    parser.add_argument("--waiting", type=int, default=300, help="records waiting far ahead")
    parser.add_argument("--budget", type=float, default=900, help="seconds before giving up")
    args = parser.parse_args(argv)
    counts = [int(n) for n in args.rules.split(",")]
    return run(counts, args.records, args.waiting, args.budget)


if __name__ == "__main__":
    raise SystemExit(main())
