"""``python -m services.admin``: the commands for people, one parser and its dispatch.

``check`` before go-live (:mod:`.check`), ``baseline`` once at go-live, ``status`` any time
(:mod:`.status`, with :mod:`.health` and the page of :mod:`.status_page`), ``report`` weekly
(:mod:`.report`, the mail of :mod:`.report_page`), ``instrument`` to get
the rules' fields; ``force RECORD`` sends one participant the rule's message now and ``requeue
RECORD`` gives a failed, undelivered, skipped, unconfirmed or needs_review record another go
(:mod:`.records`); ``install-systemd`` / ``uninstall-systemd`` (:mod:`.systemd`). Output goes to
stdout; logs and errors to stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from common import logs
from common.errors import ConfigError, RelayError
from common.runner import EXIT_OK, base_parser, load_settings, report_failure
from messaging.context import build_context
from messaging.instrument import instrument_csv
from messaging.rules import BUILTIN
from messaging.rules_file import rules_for
from services.admin.check import command_check
from services.admin.recipes import recipes
from services.admin.records import command_baseline, command_force, command_requeue
from services.admin.report import command_report
from services.admin.status import command_status
from services.admin.status_page import PUBLIC_HELP
from services.admin.systemd import add_parsers as add_systemd_parsers
from services.admin.systemd import command_systemd


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
    instrument = sub.add_parser(
        "instrument",
        help="print the data dictionary rows (CSV) of every rule's fields (needs no REDCap)",
    )
    instrument.add_argument(
        "--rules-file", metavar="PATH", help="these rules instead of RULES_FILE's"
    )
    instrument.add_argument(
        "--reports",
        action="store_true",
        help="print REDCap report recipes for the rules instead (fields and filters to paste)",
    )
    status = sub.add_parser(
        "status", help="print each rule's funnel and the health findings (exit 1 if unhealthy)"
    )
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.add_argument("--html", metavar="FILE", help="also write the status page to FILE")
    status.add_argument("--public", action="store_true", help=PUBLIC_HELP)
    status.add_argument(
        "--report-id", metavar="N", help="read this REDCap report's rows instead of our export"
    )
    report = sub.add_parser(
        "report", help="the weekly report: each rule's funnel and enrollment per group (text)"
    )
    report.add_argument("--html", metavar="FILE", help="also write it as an e-mail page to FILE")
    report.add_argument("--public", action="store_true", help=PUBLIC_HELP)
    report.add_argument(
        "--email", action="store_true", help="mail it to REPORT_EMAIL_TO (Microsoft Graph)"
    )
    report.add_argument("--json", action="store_true", help="machine-readable output")
    force = sub.add_parser(
        "force", help="send to one record now (ignores delay and quiet hours, not stop_when)"
    )
    force.add_argument("record")
    force.add_argument(
        "--resend", action="store_true", help="send even if this record was already messaged"
    )
    force.add_argument(
        "--ignore-stop",
        action="store_true",
        help="send even if the rule's stop_when holds for this record",
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
        command.add_argument(
            "--env-file", default=argparse.SUPPRESS, help="settings file (default .env)"
        )
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
        if args.command == "instrument":
            return command_instrument(args.env_file, args.rules_file, args.reports)
        settings = load_settings(args.env_file)
    except ConfigError as exc:
        return report_failure(exc, say)
    logs.configure(settings.log_level, settings.log_format)
    try:
        if args.command == "force":
            ctx = build_context(
                settings, needs_twilio=True, needs_survey=True, needs_mail=True, name="admin"
            )
            rule = ctx.rules.named(args.rule)
            return command_force(ctx, rule, args.record, args.resend, args.ignore_stop)
        ctx = build_context(settings, needs_twilio=False, name="admin")
        if args.command == "baseline":
            return command_baseline(ctx, args.rule)
        if args.command == "status":
            return command_status(ctx, args.json, args.html, args.report_id, public=args.public)
        if args.command == "report":
            return command_report(
                ctx, html=args.html, email=args.email, as_json=args.json, public=args.public
            )
        return command_requeue(ctx, ctx.rules.trigger(args.rule), args.record)
    except RelayError as exc:
        return report_failure(exc, say)


def command_instrument(env_file: str | None, rules_file: str | None, reports: bool) -> int:
    """The rules' fields as data dictionary rows, or ``--reports`` their report recipes. It is
    how a team gets the fields, so it runs before REDCap has them, and before there is a token:
    only the rules (and REDCAP_EVENT, ALERT_EMAIL_TO, CONVERSATION_LOG, TWILIO_LOOKUP) are
    read."""
    environ = {**os.environ, **({"RULES_FILE": rules_file} if rules_file else {})}
    settings = load_settings(env_file, environ, redcap=False)
    rules = rules_for(settings)
    if reports:
        sys.stdout.write(
            recipes(
                rules,
                home_event=settings.redcap_event,
                conversation_log=settings.conversation_log,
            )
        )
    else:
        sys.stdout.write(instrument_csv(rules, settings.conversation_log, settings.twilio_lookup))
    return EXIT_OK


def say(line: str) -> None:
    """Errors go to stderr as one line, so stdout stays the command's output."""
    sys.stderr.write(f"admin: {line}\n")


if __name__ == "__main__":
    raise SystemExit(main())
