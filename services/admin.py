"""Admin commands for people: check, baseline, status, force, requeue.

``python -m services.admin check`` before go-live, ``baseline`` once at go-live, ``status`` any
time; ``force RECORD`` sends one participant the rule's message now (SMS or e-mail, as the rule
says); ``requeue RECORD`` gives a failed, undelivered, skipped, unconfirmed or needs_review
record another go. Output goes to stdout; logs to stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from common import logs
from common.errors import ConfigError, RelayError
from common.pipeline import REQUEUEABLE, Status
from common.runner import (
    EXIT_FAILURE,
    EXIT_OK,
    Context,
    base_parser,
    build_context,
    load_settings,
    report_failure,
)
from messaging.instrument import instrument_csv
from messaging.prepare import prepare, record_problems
from messaging.records import export_fields, rows_for, write
from messaging.rows import RuleRow
from messaging.rules import BUILTIN, EMAIL, Rule
from messaging.send import claim, pacers_for, send_batch
from messaging.triggers import export_events, newly_true
from services.admin_check import command_check
from services.admin_status import command_status
from services.admin_systemd import add_parsers as add_systemd_parsers
from services.admin_systemd import command_systemd
from services.sms_sender import sender_lock

ALREADY_MESSAGED = frozenset(
    {
        Status.SENDING,
        Status.SMS_SENT,
        Status.SENT_EMAIL,
        Status.DELIVERED,
        Status.UNDELIVERED,
        Status.UNCONFIRMED,
        Status.NEEDS_REVIEW,
    }
)


def parser() -> argparse.ArgumentParser:
    p = base_parser("python -m services.admin", "redcap-relay administration")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "check", help="verify settings, REDCap project, Twilio and Graph; print a checklist"
    )
    baseline = sub.add_parser(
        "baseline", help="mark records the rules already apply to 'baseline' (go-live)"
    )
    baseline.add_argument("--rule", help="only this rule (one added to a live study)")
    sub.add_parser("instrument", help="print the data dictionary rows (CSV) of every rule's fields")
    status = sub.add_parser(
        "status", help="print each rule's funnel and the health findings (exit 1 if unhealthy)"
    )
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.add_argument("--html", metavar="FILE", help="also write the status page to FILE")
    status.add_argument(
        "--report-id", metavar="N", help="read this REDCap report's rows instead of our export"
    )
    force = sub.add_parser("force", help="send to one record now (ignores delay, quiet hours)")
    force.add_argument("record")
    force.add_argument(
        "--resend", action="store_true", help="send even if this record was already messaged"
    )
    requeue = sub.add_parser(
        "requeue", help="return a failed/undelivered/skipped record to 'registered'"
    )
    requeue.add_argument("record")
    for command in (force, requeue):
        command.add_argument("--rule", default=BUILTIN, help="the rule (default pipeline)")
    add_systemd_parsers(sub)  # install-systemd, uninstall-systemd
    for command in (sub.choices[name] for name in sub.choices):
        # Accept --env-file after the command too (admin status --env-file x): what people type.
        command.add_argument("--env-file", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "check":
        return command_check(args.env_file)  # reports bad settings as a checklist line
    if args.command in ("install-systemd", "uninstall-systemd"):
        try:  # writes a study's settings file rather than reading one
            return command_systemd(args, os.environ)
        except ConfigError as exc:
            return report_failure(exc, say)
    try:
        settings = load_settings(args.env_file)
        if args.command == "instrument":
            # Works before the fields exist (it is how a team gets them): no REDCap needed.
            sys.stdout.write(instrument_csv(settings.rules))
            return EXIT_OK
    except ConfigError as exc:
        return report_failure(exc, say)
    logs.configure(settings.log_level, settings.log_format)
    try:
        if args.command == "force":
            ctx = build_context(
                settings, needs_twilio=True, needs_survey=True, needs_mail=True, name="admin"
            )
            return command_force(ctx, settings.rule(args.rule), args.record, args.resend)
        ctx = build_context(settings, needs_twilio=False, name="admin")
        if args.command == "baseline":
            return command_baseline(ctx, args.rule)
        if args.command == "status":
            return command_status(ctx, args.json, args.html, args.report_id)
        return command_requeue(ctx, settings.rule(args.rule), args.record)
    except RelayError as exc:
        return report_failure(exc, say)


def say(line: str) -> None:
    """Errors go to stderr as one line, so stdout stays the command's output."""
    sys.stderr.write(f"admin: {line}\n")


# -- baseline -----------------------------------------------------------------------------------
def command_baseline(ctx: Context, rule_name: str | None) -> int:
    """Mark every record a rule already applies to (status blank) ``baseline``; idempotent.
    Every rule, or only ``--rule`` (a rule added to a live study)."""
    rules = [ctx.settings.rule(rule_name)] if rule_name else list(ctx.rules)
    if rules[0].answer_of:
        raise ConfigError(
            f"--rule {rule_name}: auto-answers follow replies, they have no when to baseline; "
            f"baseline rule {rules[0].answer_of} instead"
        )
    failed = False
    found = newly_true(ctx, rules)
    for rule in rules:
        records = found.get(rule.name, [])
        rows = [
            ctx.layout.row(rid, {rule.fields.status: Status.BASELINE}, rule.event)
            for rid in records
        ]
        refused = write(ctx, rule, rows)
        where = "" if rule.builtin else f" for rule {rule.name}"
        print(
            f"marked {len(records) - len(refused)} record(s) baseline{where}; they will never be "
            "messaged by it"
        )
        if refused:
            print(
                f"REDCap refused {len(refused)} record(s); they are needs_review: "
                + ", ".join(sorted(refused))
            )
            failed = True
    return EXIT_FAILURE if failed else EXIT_OK


# -- force, requeue -----------------------------------------------------------------------------
def _one(ctx: Context, rule: Rule, record: str) -> RuleRow:
    rows = ctx.redcap.export(
        export_fields(ctx, [rule]), records=[record], events=export_events(ctx, [rule])
    )
    mine = rows_for(ctx, rule, rows)
    if not mine:
        raise RelayError(f"record {record!r} does not exist in project {ctx.layout.project_id}")
    return mine[0]


def command_force(ctx: Context, rule: Rule, record: str, resend: bool) -> int:
    lock = sender_lock(ctx).acquire()
    try:
        row = _one(ctx, rule, record)
        if row.status in ALREADY_MESSAGED and not resend:
            print(
                f"record {record} is {row.status}: it was already messaged; "
                "add --resend to send it again anyway"
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
            print(f"record {record}: REDCap refused the claim; see {rule.fields.error_message}")
            return EXIT_FAILURE
        counts = send_batch(ctx, claimed, pacers_for(ctx), lambda: False)
    finally:
        lock.release()
    if counts.get("sent"):
        how = "by e-mail" if claimed[0].channel == EMAIL else "by SMS"
        print(f"record {record}: sent {how}")
        return EXIT_OK
    print(f"record {record}: not sent ({', '.join(counts)}); see its {rule.name}_* fields")
    return EXIT_FAILURE


def command_requeue(ctx: Context, rule: Rule, record: str) -> int:
    row = _one(ctx, rule, record)
    if row.status not in REQUEUEABLE:
        allowed = ", ".join(sorted(REQUEUEABLE))
        print(
            f"record {record} is {row.status or 'not registered'}; only {allowed} can be requeued"
        )
        return EXIT_FAILURE
    f = rule.fields
    # The series count stays: a requeued record gets the message it did not get, not a repeat.
    kept = (f.status, f.registered_at, f.count)
    cleared = {name: "" for name in f.kinds() if name not in kept}
    cleared.update({f.status: Status.REGISTERED, f.attempts: "0"})
    # overwrite: the blank values erase the previous attempt's SID, times and error.
    ctx.redcap.import_rows([ctx.layout.row(record, cleared, rule.event)], overwrite=True)
    logs.transition(
        ctx.log, record, row.status, Status.REGISTERED, reason="requeued", rule=rule.name
    )
    print(f"record {record}: {row.status} -> registered; the sender will message it next cycle")
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
