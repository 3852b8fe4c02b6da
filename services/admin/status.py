"""``admin status``: the funnel of every rule, records per status, how many were sent (by SMS
and by e-mail), oldest waiting, problems; for a rule that takes replies, its participants' latest
reply by meaning and its auto-answers sent; how many participants opted out (STOP); the health
findings (:mod:`services.admin.health`) and each service's last activity. Exit 0 healthy, 1
unhealthy.

``--html FILE`` also writes the status page (:mod:`services.admin.status_page`);
``--report-id N`` reads a saved REDCap report instead of our export: its filter picks the
records (one site, one arm) and it must hold the rules' fields for the funnel; without any
rule's status field only its size and columns are shown. Health checks whose fields the report
lacks are listed as not checked."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from common.errors import ConfigError
from common.pipeline import Status
from common.runner import EXIT_FAILURE, EXIT_OK
from common.twilio_client import SmsGateway
from messaging import conversation
from messaging.context import Context
from messaging.ids import AssignRule, AssignStatus
from messaging.records import RuleRow, export_events, rows_for
from messaging.replies import (
    AMBIGUOUS,
    HELP,
    OPT_OUT,
    OPT_SID,
    OPTED_IN,
    OPTED_OUT,
    REPLIES_READ,
    UNCLEAR,
)
from messaging.rules import EMAIL, SMS, Rule
from messaging.thread import WAITING
from services.admin import health as admin_health
from services.admin import status_page

EXIT_UNHEALTHY = EXIT_FAILURE  # some finding: page someone (config errors stay 2, project 3)

PROBLEMS = (
    Status.FAILED,
    Status.UNDELIVERED,
    Status.SKIPPED,
    Status.NEEDS_REVIEW,
    Status.UNCONFIRMED,
    Status.EXPIRED,  # a reminder that never went: worth a look; cancelled is stop_when at work
)
# Twilio or Graph took the message: what "sent" counts, whatever became of it after.
SENT = (
    Status.SMS_SENT,
    Status.SENT_EMAIL,
    Status.DELIVERED,
    Status.UNDELIVERED,
    Status.UNCONFIRMED,
)


WAITING_SHOWN = 50  # per rule, the longest waiting records listed (the count covers all)


def status_fields(ctx: Context) -> list[str]:
    """What the one export reads: per rule (auto-answers too) its state, times and counts, the
    reply fields of rules that take replies, what due times need (an anchor), the opt-out."""
    fields = [ctx.layout.record_id_field]
    for rule in ctx.rules.every:
        f = rule.fields
        fields += [f.status, f.registered_at, f.claimed_at, f.sent_at, f.checked_at]
        fields += [f.error_code, f.interrupted]
        fields += [name for name in (f.channel, f.count, rule.anchor) if name]
        if rule.sends_sms and ctx.rules.replying:
            fields.append(f.to)  # who was texted at a number: what a reply is read against
        if rule.replies is not None:
            fields += [f.reply, f.reply_at, f.reply_sid]
    for ids in ctx.rules.assign:
        fields += [ids.fields.status, ids.fields.error_code]
    if ctx.layout.opt_out:
        fields.append(OPT_OUT)
    if ctx.rules.replying:
        fields += [OPT_SID, REPLIES_READ]
    if conversation.enabled(ctx):
        fields.append(WAITING)
    return list(dict.fromkeys(fields))


def export(ctx: Context) -> list[dict[str, str]]:
    # The opt-out lives in REDCAP_EVENT.
    home = ctx.layout.opt_out or conversation.enabled(ctx)
    events = export_events(ctx, ctx.rules.triggers, home=home)
    return ctx.redcap.export(status_fields(ctx), events=events)


def funnel(
    ctx: Context,
    raw: list[dict[str, str]] | None = None,
    sms: SmsGateway | None = None,
    columns: set[str] | None = None,
) -> dict[str, Any]:
    """Per rule, the funnel; the first rule's also at the top level (what scripts of the
    single-message version read); the health findings and each service's last activity. One
    export (or the rows given, holding ``columns``), and one Twilio list where ``sms`` is given
    and a rule takes replies."""
    if raw is None:
        raw, columns = export(ctx), set(status_fields(ctx))
    columns = columns if columns is not None else set(status_fields(ctx))
    key = ctx.layout.record_id_field
    rules: dict[str, dict[str, Any]] = {}
    for rule in ctx.rules.written:
        if rule.fields.status not in columns:
            continue  # a report without this rule's fields
        rows = rows_for(ctx, rule, raw)
        rules[rule.name] = _rule_funnel(ctx, rule, rows)
        if rule.replies is not None:
            rules[rule.name]["replies"] = _replies(ctx, rule, rows, raw)
    ids = {
        rule.name: _ids(ctx, rule, raw)
        for rule in ctx.rules.assign
        if rule.fields.status in columns
    }
    first = rules.get(ctx.rules.written[0].name, {})
    records = len({row[key] for row in raw if key in row})
    opted = _opted_out(ctx, raw) if OPT_OUT in columns else None
    health = admin_health.health(ctx, raw, sms, columns)
    return {
        "records": records,
        "opted_out": opted,
        **first,
        "rules": rules,
        "ids": ids,
        "health": health,
        "last_activity": admin_health.last_activity(ctx, raw),
    }


def _ids(ctx: Context, rule: AssignRule, raw: list[dict[str, str]]) -> dict[str, Any]:
    """A study ID rule's records by status (blank: it does not apply, or not yet), and why the
    skipped and needs_review ones got no ID."""
    f, event = rule.fields, ctx.layout.event_for(rule.event)
    rows = [r for r in raw if event is None or r.get("redcap_event_name") == event]
    counts = Counter(row.get(f.status) or "(none)" for row in rows)
    problems = Counter(
        f"{row[f.status]}:{row.get(f.error_code) or 'unknown'}"
        for row in rows
        if row.get(f.status) in (AssignStatus.SKIPPED, AssignStatus.NEEDS_REVIEW)
    )
    return {
        "field": rule.field,
        "by_status": {code: counts.get(code, 0) for code in [*f.codes, "(none)"]},
        "problems_by_code": dict(sorted(problems.items())),
    }


def _opted_out(ctx: Context, raw: list[dict[str, str]]) -> int | None:
    """Participants with relay_opted_out = 1 (in REDCAP_EVENT); None if the project lacks the
    opt-out fields."""
    if not ctx.layout.opt_out:
        return None
    key, home = ctx.layout.record_id_field, ctx.layout.event
    return len(
        {
            row[key]
            for row in raw
            if (home is None or row.get("redcap_event_name") == home)
            and row.get(OPT_OUT, "").strip() == "1"
        }
    )


def _replies(
    ctx: Context, rule: Rule, rows: list[RuleRow], raw: list[dict[str, str]]
) -> dict[str, Any]:
    """The latest reply of each participant (R_reply keeps only the last) by meaning: the
    rule's answers, then unclear and Twilio's keywords, then any other value found; and how
    many auto-answers Twilio took (the companion rule's series count: every answer, not only
    the latest)."""
    assert rule.replies is not None
    said = Counter(row.get(rule.fields.reply) for row in rows if row.get(rule.fields.reply))
    meanings = [*rule.replies.answers, UNCLEAR, AMBIGUOUS, HELP, OPTED_OUT, OPTED_IN, *sorted(said)]
    sent = 0
    if (companion := ctx.rules.companion(rule)) is not None:
        sent = sum(row.sent for row in rows_for(ctx, companion, raw))
    return {
        "by_meaning": {meaning: said.get(meaning, 0) for meaning in dict.fromkeys(meanings)},
        "auto_answers_sent": sent,
    }


def _rule_funnel(ctx: Context, rule: Rule, rows: list[RuleRow]) -> dict[str, Any]:
    counts = Counter(row.status or "(none)" for row in rows)
    errors = Counter(
        f"{row.status}:{row.get(rule.fields.error_code) or 'unknown'}"
        for row in rows
        if row.status in PROBLEMS
    )
    tz, now = ctx.settings.timezone, ctx.clock.now()
    registered = [row for row in rows if row.status == Status.REGISTERED]
    times = [row.time(rule.fields.registered_at, tz) for row in registered]
    oldest = min((w for w in times if w is not None), default=None)
    age = (now - oldest).total_seconds() / 60 if oldest else None
    codes = [code for code in rule.fields.codes]
    # R_channel is what the last claim used; rules without it (SMS only) send SMS only.
    sent = Counter(row.get(rule.fields.channel) or SMS for row in rows if row.status in SENT)
    waiting = _waiting(ctx, rows, now)
    not_due = sum(w.get("minutes") is None for w in waiting)  # registered, due later
    waiting = [w for w in waiting if w.get("minutes") is not None or w["status"] != "registered"]
    started = sum(n for status, n in counts.items() if status not in ("(none)", Status.BASELINE))
    replied = sum(bool(row.get(rule.fields.reply)) for row in rows)
    return {
        "by_status": {s: counts.get(s, 0) for s in [*codes, "(none)"]},
        "sent": sum(sent.values()),
        "sent_by_channel": {SMS: sent.get(SMS, 0), EMAIL: sent.get(EMAIL, 0)},
        "oldest_waiting_minutes": round(age, 1) if age is not None else None,
        "problems_by_code": dict(sorted(errors.items())),
        # Records whose send a stopped sender (crash, kill -9) interrupted at least once.
        "interrupted_records": sum(row.interrupted > 0 for row in rows),
        # due: the rule's time came (all but blank, baseline and registered for later).
        "funnel": {
            "due": started - not_due,
            "sent": sum(sent.values()),
            "delivered": counts.get(Status.DELIVERED, 0),
            "replied": replied if rule.replies is not None else None,
        },
        "waiting_total": len(waiting),
        "waiting": waiting[:WAITING_SHOWN],
    }


def _waiting(ctx: Context, rows: list[RuleRow], now: datetime) -> list[dict[str, Any]]:
    """Records the pipeline has still to move, longest first: registered and due (minutes since
    due; None when due later), sending (since the claim), sms_sent (since it went)."""
    tz, out = ctx.settings.timezone, list[dict[str, Any]]()
    since = {Status.SENDING: "claimed_at", Status.SMS_SENT: "sent_at"}
    for row in rows:
        if row.status == Status.REGISTERED:
            at = admin_health.due_time(ctx, row)
            at = at if at is None or at <= now else None
            if at is None:
                out.append({"record": row.record_id, "status": row.status, "minutes": None})
                continue
        elif row.status in since:
            at = row.time(getattr(row.rule.fields, since[Status(row.status)]), tz)
        else:
            continue
        minutes = round((now - at).total_seconds() / 60, 1) if at else None
        out.append({"record": row.record_id, "status": row.status, "minutes": minutes})
    return sorted(out, key=lambda w: -(w["minutes"] if w["minutes"] is not None else 1e12))


def command_status(
    ctx: Context,
    as_json: bool,
    html: str | None = None,
    report_id: str | None = None,
    sms: SmsGateway | None = None,
    *,
    public: bool = False,
) -> int:
    """Print the funnel and the health findings (text or JSON), write the page if asked (0644
    if ``public``, else 0600); exit EXIT_UNHEALTHY when there are findings. ``report_id``: the
    rows of that REDCap report."""
    sms = sms or ctx.sms or gateway(ctx)
    data = funnel(ctx, sms=sms) if report_id is None else _from_report(ctx, report_id, sms)
    if html:
        status_page.write(Path(html), status_page.render(ctx, data), public=public)
    if as_json:
        print(json.dumps(data, indent=2))
    else:
        _print(ctx, data)
    healthy = data["health"]["healthy"] if "health" in data else True
    return EXIT_OK if healthy else EXIT_UNHEALTHY


def _from_report(ctx: Context, report_id: str, sms: SmsGateway | None) -> dict[str, Any]:
    """The funnel and health of a REDCap report's rows, for the rules whose status field it
    holds (its filter picks the records: a site, an arm); otherwise only its size."""
    try:
        rows = ctx.redcap.report(report_id)
    except ConfigError as exc:
        raise ConfigError(f"--report-id {report_id}: {exc}") from None
    columns = sorted({name for row in rows for name in row})
    covered = [rule.name for rule in ctx.rules.written if rule.fields.status in columns]
    about = {"id": report_id, "rows": len(rows), "columns": columns, "rules": covered}
    if not covered:
        return {"report": about}
    return {"report": about, **funnel(ctx, rows, sms, set(columns))}


def gateway(ctx: Context) -> SmsGateway | None:
    """Twilio, for the replies check: only when a rule takes replies and the settings are there."""
    if not ctx.rules.replying:
        return None
    try:
        return SmsGateway.from_settings(ctx.settings)
    except ConfigError:
        return None


def _print(ctx: Context, data: dict[str, Any]) -> None:
    print(f"project {ctx.layout.project_id} ({ctx.layout.title}): {data.get('records', 0)} records")
    if "report" in data:
        report = data["report"]
        columns = ", ".join(report["columns"]) or "(none: a report of no rows shows none)"
        print(f"report {report['id']}: {report['rows']} row(s); columns: {columns}")
        if not report["rules"]:
            fields = ", ".join(rule.fields.status for rule in ctx.rules.written)
            print(f"it holds no rule's status field ({fields}): add them to see the funnel here")
            return
    _print_health(data["health"], data["last_activity"])
    if data["opted_out"] is not None:
        print(f"opted out (replied STOP, or Twilio refused with 21610): {data['opted_out']}")
    for name, rule in data["rules"].items():
        if len(data["rules"]) > 1 or name != "pipeline":
            print(f"rule {name}:")
        _print_rule(rule, ctx.rules.named(name).sends_email)
    for name, ids in data.get("ids", {}).items():
        print(f"rule {name} (study IDs in {ids['field']}):")
        for status, n in ids["by_status"].items():
            print(f"  {status:<13} {n:>6}")
        if ids["problems_by_code"]:
            print("no ID given, by reason:")
            for code, n in ids["problems_by_code"].items():
                print(f"  {code:<30} {n:>6}")


def _print_health(health: dict[str, Any], activity: dict[str, Any]) -> None:
    findings = health["findings"]
    print(f"health: {'ok' if health['healthy'] else f'UNHEALTHY ({len(findings)} finding(s))'}")
    for finding in findings:
        print(f"  [{finding['check']}] {finding['what']}")
        print(f"    what to do: {finding['fix']}")
    for note in health["not_checked"]:
        print(f"  not checked: {note}")
    seen = [
        f"{service} {admin_health.human(last['minutes_ago'])} ago" if last else f"{service} never"
        for service, last in activity.items()
    ]
    print(f"last activity: {', '.join(seen)}")


def _print_rule(data: dict[str, Any], sends_email: bool) -> None:
    for status, n in data["by_status"].items():
        print(f"  {status:<13} {n:>6}")
    by = data["sent_by_channel"]
    split = f" (SMS {by[SMS]}, e-mail {by[EMAIL]})" if sends_email else ""
    print(f"sent: {data['sent']}{split}")
    if data["oldest_waiting_minutes"] is not None:
        print(f"oldest waiting to be sent: {data['oldest_waiting_minutes']} minutes")
    if data["interrupted_records"]:
        print(
            f"sends interrupted by a stopped sender: {data['interrupted_records']} record(s) "
            "(failed:interrupted once SMS_MAX_INTERRUPTED is reached; see the sender's log)"
        )
    if data["problems_by_code"]:
        print("problems by reason:")
        for code, n in data["problems_by_code"].items():
            print(f"  {code:<30} {n:>6}")
    if "replies" in data:
        replies = data["replies"]
        said = ", ".join(f"{meaning} {n}" for meaning, n in replies["by_meaning"].items())
        print(f"latest reply per participant: {said}")
        print(f"auto-answers sent: {replies['auto_answers_sent']}")
