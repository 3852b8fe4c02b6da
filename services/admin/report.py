"""``admin report``: the study team's weekly report, the figures and the command.

Per message rule, the funnel for the past seven days and in total: records the rule newly applied
to, messages sent, delivered, replied (rules that take replies) and the problems by reason; per
study ID rule, the IDs given per calendar week (Monday to Sunday, TIMEZONE) and per group, the
records it kept or skipped; and which records need a person. Counts and record ids only: the
export behind it reads statuses, times, groups and reason codes, never a phone number, an address,
a link, a message or a study ID.

One export, of the records some rule has touched (a filter on the rules' statuses), whatever the
number of rules. ``--html FILE`` writes the report as an e-mail page
(:mod:`services.admin.report_page`), ``--email`` mails it to REPORT_EMAIL_TO through the Graph
channel (``redcap-relay-report@.timer`` runs that weekly); without either it is printed as text.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from common.contacts import mask_email
from common.errors import ConfigError, GraphOutcomeUnknown
from common.field_types import parse_time
from common.graph_client import GraphMailer
from common.pipeline import Status
from common.runner import EXIT_FAILURE, EXIT_OK
from messaging.context import Context
from messaging.ids import AssignRule, AssignStatus
from messaging.records import RuleRow, any_of, ref, rows_for
from messaging.rules import Rule
from services.admin import report_page
from services.admin.status import PROBLEMS, SENT
from services.admin.status_page import write

DAYS = 7  # "the past week": the seven days up to now
WEEKS = 8  # calendar weeks of enrollment shown
ATTENTION_SHOWN = 50  # records listed as needing a person (the count covers all)
OTHER = "(other)"  # a kept ID of no group of the rule


def report(ctx: Context, now: datetime | None = None) -> dict[str, Any]:
    """The report's figures (what ``--json`` prints): one export."""
    now = now or ctx.clock.now()
    since = now - timedelta(days=DAYS)
    raw = _export(ctx)
    tz = ctx.settings.timezone
    rules = {
        rule.name: _funnel(ctx, rule, rows_for(ctx, rule, raw), since) for rule in ctx.rules.written
    }
    ids = {rule.name: _enrollment(ctx, rule, raw, since, now) for rule in ctx.rules.assign}
    attention = _attention(ctx, raw)
    return {
        "project": {"id": ctx.layout.project_id, "title": ctx.layout.title},
        "generated_at": f"{now.astimezone(tz):%Y-%m-%d %H:%M}",
        "since": f"{since.astimezone(tz):%Y-%m-%d %H:%M}",
        "timezone": str(tz),
        "rules": rules,
        "ids": ids,
        "attention": attention[:ATTENTION_SHOWN],
        "attention_total": len(attention),
    }


def _fields(ctx: Context) -> list[str]:
    names = [ctx.layout.record_id_field]
    for rule in ctx.rules.written:
        f = rule.fields
        names += [f.status, f.registered_at, f.claimed_at, f.sent_at, f.checked_at, f.error_code]
        if rule.replies is not None:
            names += [f.reply, f.reply_at]
    for ids in ctx.rules.assign:
        names += [
            ids.fields.status,
            ids.fields.group,
            ids.fields.assigned_at,
            ids.fields.error_code,
        ]
    return list(dict.fromkeys(names))


def _export(ctx: Context) -> list[dict[str, str]]:
    """The records some rule has touched (a status set), with only the fields counted."""
    triggers = ctx.rules.triggers
    touched = any_of([f"{ref(ctx, rule, rule.fields.status)} <> ''" for rule in triggers])
    events = [e for e in dict.fromkeys(ctx.layout.event_for(r.event) for r in triggers) if e]
    return ctx.redcap.export(_fields(ctx), touched, events=events or None)


def _funnel(ctx: Context, rule: Rule, rows: Sequence[RuleRow], since: datetime) -> dict[str, Any]:
    f, tz = rule.fields, ctx.settings.timezone
    started = [r for r in rows if r.status not in ("", Status.BASELINE)]
    sent = [r for r in rows if r.status in SENT]
    # E-mail has no delivery report: for a rule that only mails "delivered" means nothing.
    delivered = [r for r in rows if r.status == Status.DELIVERED] if rule.sends_sms else None
    replied = [r for r in rows if r.get(f.reply)] if rule.replies is not None else None
    failed = [r for r in rows if r.status in PROBLEMS]
    touched = (f.registered_at, f.claimed_at, f.sent_at, f.checked_at)

    def reasons(chosen: Sequence[RuleRow]) -> dict[str, int]:
        counts = Counter(f"{r.status}:{r.get(f.error_code) or 'unknown'}" for r in chosen)
        return dict(sorted(counts.items()))

    def recent(row: RuleRow, *names: str) -> bool:
        """The newest of ``names`` on ``row`` is within the past week."""
        times = [t for t in (row.time(name, tz) for name in names) if t is not None]
        return bool(times) and max(times) >= since

    week = {
        "new": sum(recent(r, f.registered_at) for r in started),
        "sent": sum(recent(r, f.sent_at) for r in sent),
        "delivered": None
        if delivered is None
        else sum(recent(r, f.checked_at, f.sent_at) for r in delivered),
        "replied": None if replied is None else sum(recent(r, f.reply_at) for r in replied),
        "failed": reasons([r for r in failed if recent(r, *touched)]),
    }
    total = {
        "new": len(started),
        "sent": len(sent),
        "delivered": None if delivered is None else len(delivered),
        "replied": None if replied is None else len(replied),
        "failed": reasons(failed),
    }
    return {
        "week": week,
        "total": total,
        "baseline": sum(r.status == Status.BASELINE for r in rows),
    }


def _assign_rows(
    ctx: Context, rule: AssignRule, raw: Sequence[Mapping[str, str]]
) -> list[Mapping[str, str]]:
    event = ctx.layout.event_for(rule.event)
    status = rule.fields.status
    return [
        r for r in raw if (event is None or r.get("redcap_event_name") == event) and r.get(status)
    ]


def _enrollment(
    ctx: Context, rule: AssignRule, raw: Sequence[Mapping[str, str]], since: datetime, now: datetime
) -> dict[str, Any]:
    """IDs given (assigned or kept) per calendar week and group, in total, and who was
    skipped."""
    f, tz = rule.fields, ctx.settings.timezone
    rows = _assign_rows(ctx, rule, raw)
    groups = [group.name for group in rule.groups]
    this_monday = _monday(now.astimezone(tz).date())
    weeks = [this_monday - timedelta(weeks=n) for n in reversed(range(WEEKS))]
    per_week: dict[date, Counter[str]] = {week: Counter() for week in weeks}
    total: Counter[str] = Counter()
    recent: Counter[str] = Counter()
    given = (AssignStatus.ASSIGNED, AssignStatus.KEPT)
    for row in rows:
        if row.get(f.status) not in given:
            continue
        group = row.get(f.group) or OTHER
        total[group] += 1
        at = parse_time(row.get(f.assigned_at, ""), tz)
        if at is None:
            continue
        if at >= since:
            recent[group] += 1
        week = _monday(at.date())
        if week in per_week:
            per_week[week][group] += 1
    shown = [*groups, *([OTHER] if total[OTHER] else [])]
    skipped = Counter(
        row.get(f.error_code) or "unknown"
        for row in rows
        if row.get(f.status) == AssignStatus.SKIPPED
    )
    statuses = Counter(row.get(f.status, "") for row in rows)
    return {
        "field": rule.field,
        "groups": shown,
        "weeks": [
            {"week": week.isoformat(), "counts": {g: per_week[week][g] for g in shown}}
            for week in weeks
        ],
        "week": {g: recent[g] for g in shown},
        "total": {g: total[g] for g in shown},
        "by_status": {code.value: statuses.get(code.value, 0) for code in AssignStatus},
        "skipped_by_reason": dict(sorted(skipped.items())),
    }


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _attention(ctx: Context, raw: Sequence[Mapping[str, str]]) -> list[dict[str, str]]:
    """Records in a problem status (message rules) or skipped / needs_review (ID rules):
    record id, rule, status and reason code."""
    found: list[dict[str, str]] = []
    for rule in ctx.rules.written:
        f = rule.fields
        for row in rows_for(ctx, rule, raw):
            if row.status in PROBLEMS:
                found.append(
                    {
                        "record": row.record_id,
                        "rule": rule.name,
                        "status": row.status,
                        "code": row.get(f.error_code),
                    }
                )
    key = ctx.layout.record_id_field
    for ids in ctx.rules.assign:
        for values in _assign_rows(ctx, ids, raw):
            status = values.get(ids.fields.status, "")
            if status in (AssignStatus.SKIPPED, AssignStatus.NEEDS_REVIEW):
                found.append(
                    {
                        "record": values[key],
                        "rule": ids.name,
                        "status": status,
                        "code": values.get(ids.fields.error_code, ""),
                    }
                )
    return found


# -- the command --------------------------------------------------------------------------------
def command_report(
    ctx: Context, *, html: str | None, email: bool, as_json: bool, public: bool = False
) -> int:
    """Print the report (text or JSON), write it as a page (0644 if ``public``, else 0600), mail
    it; EXIT_FAILURE when the mail may not have gone."""
    to = ctx.settings.report_email_to
    if email and not to:
        raise ConfigError(
            "--email: REPORT_EMAIL_TO is not set; set it to the study team's address(es), "
            "comma-separated"
        )
    # Before any REDCap request: a GRAPH_* setting missing is said at once.
    mailer = GraphMailer.from_settings(ctx.settings) if email else None
    data = report(ctx)
    page = report_page.render(data)
    if html:
        write(Path(html), page, public=public)
    print(
        json.dumps(data, indent=2) if as_json else report_page.text(data),
        end="\n" if as_json else "",
    )
    if mailer is None:
        return EXIT_OK
    stamp = ctx.clock.now().astimezone(ctx.settings.timezone)
    mail_id = f"report-{ctx.layout.project_id}-{stamp:%Y%m%d%H%M%S}"
    try:
        mailer.send(to, report_page.subject(data), report_page.text(data), page, message_id=mail_id)
    except GraphOutcomeUnknown as exc:
        print(f"report {mail_id}: {exc}; look in the sender's Sent Items before sending it again")
        return EXIT_FAILURE
    finally:
        mailer.close()
    sent = f"report {mail_id} sent to {', '.join(mask_email(a) for a in to)}"
    print(sent, file=sys.stderr if as_json else sys.stdout)  # --json: stdout stays JSON
    return EXIT_OK
