"""What sending e-mail costs REDCap and Microsoft, with and without Sent Items.

Run: ``.venv/bin/python -m bench.email_cost [--records 1000] [--due 25]``. The demo project gets an
e-mail-only rule and ``--records`` records it has finished with (``sent_email``); then, for
``GRAPH_CAN_READ_SENT`` = 1 and = 0 in turn, ``--due`` new records whose message is due. It
measures the sender's idle cycle and its busy cycle (REDCap requests and bytes, Graph and identity
requests, wall time), and a crash recovery: ``--due`` claims left ``sending`` (a killed sender)
settled by the next cycle. It prints a block per setting, then the Markdown table of
``docs/PERFORMANCE.md``. Every server it starts is stopped on the way out.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.measure import Cost, budget, describe, duration, machine, size_text, timed
from common.clock import ManualClock
from common.field_types import WITH_SECONDS
from common.pipeline import Status
from common.runner import CycleResult
from common.settings import Settings
from messaging.context import build_context
from messaging.rules import Rule
from messaging.rules_file import load_rules
from sandbox.clock import SimClock
from sandbox.redcap.demo import build_demo_project
from sandbox.redcap.importer import import_rows
from sandbox.rehearsal import add_rule_fields
from sandbox.session import Sandbox
from services.sms_sender import Sender

START = datetime(2026, 3, 2, 12, tzinfo=UTC)
RULE = """
[[rule]]
name = "invite"
when = "[registration_complete] = '2'"
delay_minutes = 0
survey = "interest_form"
channel = "email"
subject = "Your survey, {field:first_name}"
email_template = "Dear {field:first_name}, your survey: {survey_link}"
"""
GRAPH_OPS = ("token", "sendMail", "listSent")


def rows(rule: Rule, first: int, count: int, status: str) -> list[dict[str, object]]:
    f = rule.fields
    out: list[dict[str, object]] = []
    for n in range(first, first + count):
        row: dict[str, object] = {
            "record_id": str(n),
            "first_name": "Ada",
            "email": f"p{n}@example.org",
            "registration_complete": "2",
            f.status: status,
            f.registered_at: START.strftime(WITH_SECONDS),
        }
        if status == Status.SENT_EMAIL:
            row.update({f.sent_at: "2026-02-01 12:00:00", f.attempts: "1", f.count or "": "1"})
        out.append(row)
    return out


def graph_requests(box: Sandbox) -> dict[str, int]:
    return {op: box.microsoft.requests(op) for op in GRAPH_OPS}


@dataclass(frozen=True)
class Measured:
    cost: Cost
    graph: dict[str, int]
    summary: str


def measured(box: Sandbox, work: Callable[[], CycleResult]) -> Measured:
    before = graph_requests(box)
    cost, result = timed(box, work)
    assert isinstance(result, CycleResult)
    graph = {op: n - before[op] for op, n in graph_requests(box).items()}
    return Measured(cost, graph, result.summary())


def stale_claims(rule: Rule, first: int, count: int) -> list[dict[str, object]]:
    """What a killed sender leaves: ``count`` e-mail claims still ``sending``."""
    f = rule.fields
    assert f.channel is not None
    assert f.email_to is not None
    assert f.ref is not None
    claims = rows(rule, first, count, Status.SENDING)
    for row in claims:
        row.update(
            {
                f.claimed_at: START.strftime(WITH_SECONDS),
                f.channel: "email",
                f.email_to: row["email"],
                f.ref: f"{int(str(row['record_id'])):032x}",
                f.attempts: "1",
            }
        )
    return claims


def measure(records: int, due: int, can_read: bool, say: Callable[[str], None]) -> list[Measured]:
    """Idle, busy (``due`` to send) and recovery (``due`` stale claims, half of them sent)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rules.toml"
        path.write_text(RULE, encoding="utf-8")
        [rule] = load_rules(path, default_event="")
        project = add_rule_fields(build_demo_project(), [rule])
        with Sandbox(project, clock=SimClock(UTC, START)) as box:

            def store(batch: list[dict[str, object]]) -> None:
                now = box.clock.local_naive()
                import_rows(box.project, batch, overwrite=False, date_format="YMD", now=now)

            store(rows(rule, 1, records, Status.SENT_EMAIL))
            env = box.settings(
                LOCK_DIR=tmp,
                RULES_FILE=str(path),
                REDCAP_MAX_PER_MINUTE="100000",
                EMAIL_MAX_PER_MINUTE="6000",
                GRAPH_CAN_READ_SENT="1" if can_read else "0",
                SMS_CLAIM_TIMEOUT_SECONDS="60",
            )
            clock = ManualClock(START)
            ctx = build_context(
                Settings.from_env(env),
                needs_twilio=True,
                needs_survey=True,
                needs_mail=True,
                clock=clock,
            )
            assert ctx.mail is not None
            sender = Sender(dry_run=False)
            sender.run_once(ctx)  # warm-up: the token, the connections
            results = [measured(box, lambda: sender.run_once(ctx))]
            store(rows(rule, records + 1, due, Status.REGISTERED))
            results.append(measured(box, lambda: sender.run_once(ctx)))
            claims = stale_claims(rule, records + due + 1, due)
            ref = rule.fields.ref
            assert ref is not None
            for row in claims[::2]:  # half of the killed sender's mails had gone
                ctx.mail.send(str(row["email"]), "s", "t", message_id=str(row[ref]))
            store(claims)
            clock.advance(120)
            box.clock.advance(120)
            results.append(measured(box, lambda: sender.run_once(ctx)))
            for label, r in zip(("idle", f"busy, {due} due", "recovery"), results, strict=True):
                say(f"  {label}: {describe(r.cost)}; Microsoft {r.graph}; {r.summary}")
            return results


def microsoft(graph: dict[str, int]) -> str:
    return ", ".join(f"{n} {op}" for op, n in graph.items() if n) or "none"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.email_cost", description=__doc__)
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--due", type=int, default=25)
    parser.add_argument("--budget", type=float, default=300)
    args = parser.parse_args(argv)
    table = [
        "| GRAPH_CAN_READ_SENT | cycle | REDCap | Microsoft | outcome |",
        "|---|---|---|---|---|",
    ]
    labels = ("idle", f"busy, {args.due} due", f"next cycle after a kill: {args.due} stale claims")
    with budget(args.budget):
        for can_read in (True, False):
            print(f"GRAPH_CAN_READ_SENT={int(can_read)}, {args.records:,} records finished:")
            for label, r in zip(
                labels, measure(args.records, args.due, can_read, print), strict=True
            ):
                cost = r.cost
                plural = "" if cost.requests == 1 else "s"
                redcap = f"{cost.requests} request{plural}, {size_text(cost.bytes_out)}"
                table.append(
                    f"| {int(can_read)} | {label} | {redcap}, {duration(cost.seconds)} | "
                    f"{microsoft(r.graph)} | {r.summary} |"
                )
    print(f"\n{machine()}\n")
    print("\n".join(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
