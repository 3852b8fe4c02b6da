"""Admin commands for people: check, baseline, status, force, requeue.

``python -m services.admin check`` before go-live, ``baseline`` once at go-live, ``status`` any
time; ``force RECORD`` texts one participant now; ``requeue RECORD`` gives a failed, undelivered,
skipped, unconfirmed or needs_review record another go. Output goes to stdout; logs to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Sequence
from typing import Any

from common import logs, pipeline
from common.errors import ConfigError, RelayError
from common.pipeline import PipelineRow, Status
from common.runner import (
    EXIT_FAILURE,
    EXIT_OK,
    Context,
    base_parser,
    build_context,
    load_settings,
    report_failure,
)
from common.writes import write_rows
from messaging.pacing import SendPacer
from messaging.send import claim, export_fields, prepare, record_problems, send_batch
from services.admin_check import command_check
from services.registration_detector import find_new
from services.sms_sender import sender_lock

ALREADY_MESSAGED = frozenset(
    {
        Status.SENDING,
        Status.SMS_SENT,
        Status.DELIVERED,
        Status.UNDELIVERED,
        Status.UNCONFIRMED,
        Status.NEEDS_REVIEW,
    }
)


def parser() -> argparse.ArgumentParser:
    p = base_parser("python -m services.admin", "redcap-relay administration")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("check", help="verify settings, REDCap project and Twilio; print a checklist")
    sub.add_parser("baseline", help="mark complete, unstatused records 'baseline' (go-live)")
    status = sub.add_parser("status", help="print the pipeline funnel")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    force = sub.add_parser("force", help="send to one record now (ignores delay, quiet hours)")
    force.add_argument("record")
    force.add_argument(
        "--resend", action="store_true", help="send even if this record was already messaged"
    )
    requeue = sub.add_parser(
        "requeue", help="return a failed/undelivered/skipped record to 'registered'"
    )
    requeue.add_argument("record")
    for command in (sub.choices[name] for name in sub.choices):
        # Accept --env-file after the command too (admin status --env-file x): what people type.
        command.add_argument("--env-file", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "check":
        return command_check(args.env_file)  # reports bad settings as a checklist line
    try:
        settings = load_settings(args.env_file)
    except ConfigError as exc:
        return report_failure(exc, say)
    logs.configure(settings.log_level, settings.log_format)
    try:
        if args.command == "force":
            ctx = build_context(settings, needs_twilio=True, needs_survey=True, name="admin")
            return command_force(ctx, args.record, args.resend)
        ctx = build_context(settings, needs_twilio=False, name="admin")
        if args.command == "baseline":
            return command_baseline(ctx)
        if args.command == "status":
            return command_status(ctx, as_json=args.json)
        return command_requeue(ctx, args.record)
    except RelayError as exc:
        return report_failure(exc, say)


def say(line: str) -> None:
    """Errors go to stderr as one line, so stdout stays the command's output."""
    sys.stderr.write(f"admin: {line}\n")


# -- baseline, status ---------------------------------------------------------------------------
def command_baseline(ctx: Context) -> int:
    """Mark every complete registration without a status ``baseline``; idempotent."""
    records = find_new(ctx)
    rows = [ctx.layout.row(rid, {pipeline.STATUS: Status.BASELINE}) for rid in records]
    refused = write_rows(ctx.redcap, ctx.layout, rows)
    print(f"marked {len(records) - len(refused)} record(s) baseline; they will never be messaged")
    if refused:
        print(
            f"REDCap refused {len(refused)} record(s); they are needs_review: "
            + ", ".join(sorted(refused))
        )
        return EXIT_FAILURE
    return EXIT_OK


def funnel(ctx: Context) -> dict[str, Any]:
    key = ctx.layout.record_id_field
    rows = ctx.redcap.export(
        [key, pipeline.STATUS, pipeline.REGISTERED_AT, pipeline.ERROR_CODE, pipeline.INTERRUPTED],
        events=ctx.layout.events,
    )
    counts = Counter(row.get(pipeline.STATUS) or "(none)" for row in rows)
    errors = Counter(
        f"{row[pipeline.STATUS]}:{row.get(pipeline.ERROR_CODE) or 'unknown'}"
        for row in rows
        if row.get(pipeline.STATUS)
        in (
            Status.FAILED,
            Status.UNDELIVERED,
            Status.SKIPPED,
            Status.NEEDS_REVIEW,
            Status.UNCONFIRMED,
        )
    )
    waiting = [
        PipelineRow(row[key], row).time(pipeline.REGISTERED_AT, ctx.settings.timezone)
        for row in rows
        if row.get(pipeline.STATUS) == Status.REGISTERED
    ]
    oldest = min((w for w in waiting if w is not None), default=None)
    age = (ctx.clock.now() - oldest).total_seconds() / 60 if oldest else None
    return {
        "records": len(rows),
        "by_status": {s: counts.get(s, 0) for s in [*map(str, Status), "(none)"]},
        "oldest_waiting_minutes": round(age, 1) if age is not None else None,
        "problems_by_code": dict(sorted(errors.items())),
        # Records whose send a stopped sender (crash, kill -9) interrupted at least once.
        "interrupted_records": sum(PipelineRow(row[key], row).interrupted > 0 for row in rows),
    }


def command_status(ctx: Context, as_json: bool) -> int:
    data = funnel(ctx)
    if as_json:
        print(json.dumps(data, indent=2))
        return EXIT_OK
    print(f"project {ctx.layout.project_id} ({ctx.layout.title}): {data['records']} records")
    for status, n in data["by_status"].items():
        print(f"  {status:<13} {n:>6}")
    if data["oldest_waiting_minutes"] is not None:
        print(f"oldest waiting to be texted: {data['oldest_waiting_minutes']} minutes")
    if data["interrupted_records"]:
        print(
            f"sends interrupted by a stopped sender: {data['interrupted_records']} record(s) "
            "(failed:interrupted once SMS_MAX_INTERRUPTED is reached; see the sender's log)"
        )
    if data["problems_by_code"]:
        print("problems by reason:")
        for code, n in data["problems_by_code"].items():
            print(f"  {code:<30} {n:>6}")
    return EXIT_OK


# -- force, requeue -----------------------------------------------------------------------------
def _one(ctx: Context, record: str, fields: list[str]) -> PipelineRow:
    key = ctx.layout.record_id_field
    rows = ctx.redcap.export(fields, records=[record], events=ctx.layout.events)
    if not rows:
        raise RelayError(f"record {record!r} does not exist in project {ctx.layout.project_id}")
    return PipelineRow(rows[0][key], rows[0])


def command_force(ctx: Context, record: str, resend: bool) -> int:
    lock = sender_lock(ctx).acquire()
    try:
        row = _one(ctx, record, export_fields(ctx))
        if row.status in ALREADY_MESSAGED and not resend:
            print(
                f"record {record} is {row.status}: it was already messaged; "
                "add --resend to text it again anyway"
            )
            return EXIT_FAILURE
        if row.status == Status.BASELINE:
            print(f"note: record {record} is baseline (pre-go-live); sending because you asked")
        ready, problems = prepare(ctx, [row])
        if problems:
            record_problems(ctx, problems)
            print(f"record {record} not sent: {problems[0][1]}")
            return EXIT_FAILURE
        claimed = claim(ctx, ready)
        if not claimed:
            print(f"record {record}: REDCap refused the claim; see pipeline_error_message")
            return EXIT_FAILURE
        counts = send_batch(
            ctx, claimed, SendPacer(ctx.settings.sms_max_per_second, ctx.clock), lambda: False
        )
    finally:
        lock.release()
    if counts.get("sent"):
        print(f"record {record}: sent")
        return EXIT_OK
    print(f"record {record}: not sent ({', '.join(counts)}); see its pipeline fields")
    return EXIT_FAILURE


def command_requeue(ctx: Context, record: str) -> int:
    row = _one(ctx, record, [ctx.layout.record_id_field, pipeline.STATUS])
    if row.status not in pipeline.REQUEUEABLE:
        allowed = ", ".join(sorted(pipeline.REQUEUEABLE))
        print(
            f"record {record} is {row.status or 'not registered'}; only {allowed} can be requeued"
        )
        return EXIT_FAILURE
    cleared = {
        name: ""
        for name in pipeline.PIPELINE_FIELDS
        if name not in (pipeline.STATUS, pipeline.REGISTERED_AT)
    }
    cleared.update({pipeline.STATUS: Status.REGISTERED, pipeline.ATTEMPTS: "0"})
    # overwrite: the blank values erase the previous attempt's SID, times and error.
    ctx.redcap.import_rows([ctx.layout.row(record, cleared)], overwrite=True)
    logs.transition(ctx.log, record, row.status, Status.REGISTERED, reason="requeued")
    print(f"record {record}: {row.status} -> registered; the sender will text it next cycle")
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
