"""Health for ``admin status``: what a running pipeline would have done by now and has not.

Each check compares REDCap's own timestamps (the one export ``admin status`` makes) with the
settings; *slack* is STALE_CYCLES poll intervals plus MARGIN:

- ``overdue``: ``registered`` and due (messaging.due; an auto-answer from its reply) longer
  than slack plus the time the sender needs for that backlog at its rate; quiet hours do not
  count. The sender is not running (or is failing before it sends).
- ``waiting_on_outage``: ``registered`` and due, and the sender's last try found Twilio or
  Graph unable to take it (reason ``unavailable``): the sender is running and retries on its
  own; these are not counted as ``overdue``.
- ``stuck_sending``: ``sending`` claimed longer ago than SMS_CLAIM_TIMEOUT_SECONDS + slack: the
  sender reconciles such claims every cycle, so it is not running or cannot reach Twilio.
- ``no_delivery_report``: ``sms_sent`` that the checker never looked at FIRST_REPORT + slack
  after it went, or sent longer ago than DELIVERY_CHECK_MAX_HOURS + slack (the checker would
  have made it ``unconfirmed``): the checker is not running or cannot reach Twilio.
- ``replies_not_polled``: one Twilio list request (one page: the newest INBOUND_PAGE_SIZE
  inbound messages of the REPLY_LOOKBACK_HOURS window) finds a reply older than slack, from a
  number a reply-taking rule texted before it, that no record holds (by SID, or a reply recorded
  at or after it). Needs the Twilio settings; without them, or if Twilio cannot be asked, the
  check is listed as not checked. Replies from numbers we never texted are ignored, as the
  poller ignores them. No replies at all shows nothing: silence is not evidence.
- ``conversation_waiting`` (CONVERSATION_LOG=1): records whose ``relay_conversation_waiting``
  is set, a participant's text no rule could read that nobody has answered; the count, the
  oldest record and its wait.

A stopped detector leaves no trace in REDCap (the records it would register carry nothing yet);
``last_activity`` shows when each service last wrote, for a person to judge. Findings name
record ids only, never a number or a text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from common import field_types
from common.contacts import normalize_phone
from common.errors import ConfigError, TwilioUnavailable
from common.pipeline import Status
from common.setting_values import QuietHours
from common.twilio_client import SmsGateway
from messaging.context import Context
from messaging.due import due_at
from messaging.inbound import attribute, book_of
from messaging.outages import GAVE_UP
from messaging.records import RuleRow, rows_for
from messaging.replies import AMBIGUOUS, REPLIES_READ
from messaging.rules import Rule
from messaging.thread import WAITING

STALE_CYCLES = 5  # poll intervals a healthy service may miss (a slow REDCap, a restart)
MARGIN = timedelta(minutes=5)
FIRST_REPORT = timedelta(hours=1)  # Twilio moves a message on within minutes
AMBIGUOUS_NAMED = 20  # records named in the ambiguous-reply finding (the count covers all)
UNKNOWN_DUE = datetime.min.year  # due_at's answer for a record with no registration time
SERVICE_FIELDS = {  # last activity: the newest time each service writes
    "detector": ("registered_at",),
    "sender": ("sent_at", "claimed_at"),
    "checker": ("checked_at",),
    "reply poller": ("reply_at",),
}


@dataclass(frozen=True)
class Finding:
    check: str
    rule: str
    count: int
    oldest_record: str
    oldest_minutes: float | None  # None: the record holds no time for it
    limit_minutes: float
    what: str
    fix: str


def slack(ctx: Context) -> timedelta:
    return timedelta(seconds=STALE_CYCLES * ctx.settings.poll_interval_seconds) + MARGIN


def health(
    ctx: Context, raw: Sequence[Mapping[str, str]], sms: SmsGateway | None, columns: set[str]
) -> dict[str, Any]:
    """``healthy``, the findings and what could not be checked, from the exported ``raw``
    (holding ``columns``) and, for replies, one Twilio request through ``sms``."""
    now, found, skipped = ctx.clock.now(), [], []
    checks = (
        ("overdue", _overdue),
        ("waiting_on_outage", _outage),
        ("stuck_sending", _sending),
        ("no_delivery_report", _report),
        ("ambiguous_reply", _ambiguous),
    )
    for rule in ctx.rules.every:
        if rule.fields.status not in columns:
            continue
        rows = rows_for(ctx, rule, raw)
        for check, run in checks:
            lacking = [name for name in _needs(ctx, rule, check) if name not in columns]
            if lacking:
                skipped.append(f"{check} for rule {rule.name}: no {', '.join(lacking)}")
            elif (finding := run(ctx, rule, rows, now)) is not None:
                found.append(finding)
    found += _unpolled(ctx, raw, sms, now, columns, skipped)
    if WAITING in columns and (waiting := _waiting(ctx, raw, now)) is not None:
        found.append(waiting)
    return {
        "healthy": not found,
        "checked_at": now.isoformat(timespec="seconds"),
        "findings": [asdict(f) for f in found],
        "not_checked": skipped,
    }


def _needs(ctx: Context, rule: Rule, check: str) -> list[str]:
    f = rule.fields
    if check == "overdue":
        if rule.answer_of:
            return [ctx.rules.parent(rule).fields.reply_at]
        names = [f.registered_at, *((f.count, f.sent_at) if rule.repeat else ()), rule.anchor]
        return [name for name in names if name]
    if check == "stuck_sending":
        return [f.claimed_at]
    if check == "waiting_on_outage":
        return [f.error_code]
    if check == "ambiguous_reply":
        return [f.reply, f.reply_at] if rule.replies is not None else []
    return [f.sent_at, f.checked_at]


def due_time(ctx: Context, row: RuleRow) -> datetime | None:
    tz = ctx.settings.timezone
    if row.rule.answer_of:  # registered by the poller with the reply: due from then
        return row.time(ctx.rules.parent(row.rule).fields.reply_at, tz)
    due = due_at(row, tz)
    return None if due is None or due.year == UNKNOWN_DUE else due


def _outage(ctx: Context, rule: Rule, rows: list[RuleRow], now: datetime) -> Finding | None:
    waiting = [
        (row, due_time(ctx, row))
        for row in rows
        if row.status == Status.REGISTERED and row.get(rule.fields.error_code) == GAVE_UP
    ]
    return _finding(
        "waiting_on_outage",
        rule,
        waiting,
        now,
        timedelta(0),
        "record(s) due and waiting: Twilio or Microsoft could not take their messages",
        "nothing to do here: the sender backs off and sends them once Twilio or Microsoft takes "
        "messages again (check their status pages); after SEND_GIVE_UP_HOURS a record still "
        "waiting becomes failed (unavailable), for admin requeue",
    )


def _overdue(ctx: Context, rule: Rule, rows: list[RuleRow], now: datetime) -> Finding | None:
    registered = [
        row
        for row in rows
        if row.status == Status.REGISTERED and row.get(rule.fields.error_code) != GAVE_UP
    ]
    waiting = [
        (row, at) for row in registered if (at := due_time(ctx, row)) is not None and at <= now
    ]
    per_second = (
        ctx.settings.sms_max_per_second
        if rule.sends_sms
        else ctx.settings.email_max_per_minute / 60
    )
    limit = slack(ctx) + timedelta(seconds=len(waiting) / per_second)
    quiet, tz = ctx.settings.quiet_hours, ctx.settings.timezone
    late = [(row, at) for row, at in waiting if _awake(at, now, quiet, tz, limit) > limit]
    return _finding(
        "overdue",
        rule,
        late,
        now,
        limit,
        "record(s) due to be sent and not sent",
        "the sender (.venv/bin/python -m services.sms_sender) is not running or fails before "
        "sending: check it is running and read its log "
        "(journalctl --user -u 'redcap-relay-sender*')",
    )


def _sending(ctx: Context, rule: Rule, rows: list[RuleRow], now: datetime) -> Finding | None:
    limit = timedelta(seconds=ctx.settings.sms_claim_timeout_seconds) + slack(ctx)
    tz = ctx.settings.timezone
    claimed = [
        (row, row.time(rule.fields.claimed_at, tz)) for row in rows if row.status == Status.SENDING
    ]
    late = [(row, at) for row, at in claimed if at is None or now - at > limit]
    return _finding(
        "stuck_sending",
        rule,
        late,
        now,
        limit,
        "record(s) stuck in sending",
        "the sender is not running, or cannot reach Twilio or Microsoft to reconcile its claims: "
        "check it is running and read its log; it settles them itself once it can (do not "
        "requeue by hand: the message may have gone)",
    )


def _report(ctx: Context, rule: Rule, rows: list[RuleRow], now: datetime) -> Finding | None:
    if not rule.sends_sms:
        return None
    f, tz = rule.fields, ctx.settings.timezone
    first = FIRST_REPORT + slack(ctx)
    final = timedelta(hours=ctx.settings.delivery_check_max_hours) + slack(ctx)
    late = []
    for row in rows:
        sent = row.time(f.sent_at, tz) if row.status == Status.SMS_SENT else None
        if sent is not None and (
            now - sent > final or (not row.get(f.checked_at) and now - sent > first)
        ):
            late.append((row, sent))
    return _finding(
        "no_delivery_report",
        rule,
        late,
        now,
        min(first, final),
        "SMS with no delivery report recorded",
        "the delivery checker (.venv/bin/python -m services.delivery_checker) is not running or "
        "cannot reach Twilio: check it is running and read its log; it records the outcomes once "
        "it runs",
    )


def _unpolled(
    ctx: Context,
    raw: Sequence[Mapping[str, str]],
    sms: SmsGateway | None,
    now: datetime,
    columns: set[str],
    skipped: list[str],
) -> list[Finding]:
    """Texts in Twilio, older than slack, to one of our numbers, that the poller would have
    recorded on a record and no record holds: the poller's own reading of them
    (:func:`messaging.inbound.book_of`, ``attribute``), from this export."""
    rules = [r for r in ctx.rules.replying if r.fields.status in columns]
    if not rules:
        return []
    f0 = rules[0].fields
    needed = (f0.to, f0.sent_at, f0.reply, f0.reply_at, REPLIES_READ)
    if any(name not in columns for name in needed):
        skipped.append("replies_not_polled: the rows lack the reply fields")
        return []
    if sms is None:
        skipped.append("replies_not_polled: no Twilio settings to ask which replies arrived")
        return []
    try:
        ours = sms.sender_numbers()
        inbound = sms.inbound_since(
            now - timedelta(hours=ctx.settings.reply_lookback_hours), max_pages=1
        )
    except (ConfigError, TwilioUnavailable) as exc:
        skipped.append(f"replies_not_polled: Twilio could not be asked ({exc})")
        return []
    book, region = book_of(ctx, raw), ctx.settings.phone_region
    late: dict[str, list[tuple[RuleRow, datetime | None]]] = {}
    for message in inbound:
        at = message.date_sent or message.date_created
        number = _e164(message.from_, region) if message.from_.startswith("+") else None
        if at is None or number is None or message.to not in ours or now - at <= slack(ctx):
            continue
        if book.done(message, number):
            continue
        verdict = attribute(book, message, number)
        if verdict.targets:  # else it answers nothing: the poller ignores it too
            owner = verdict.targets[0].row
            late.setdefault(owner.rule.name, []).append((owner, at))
    fix = (
        "the reply poller (.venv/bin/python -m services.reply_poller) is not running or failing: "
        "check it is running and read its log; it records these while they are within "
        "REPLY_LOOKBACK_HOURS"
    )
    found = [
        _finding("replies_not_polled", rows[0][0].rule, rows, now, slack(ctx), "", fix)
        for rows in late.values()
    ]
    return [f for f in found if f is not None]


def _ambiguous(ctx: Context, rule: Rule, rows: list[RuleRow], now: datetime) -> Finding | None:
    """Texts from a shared phone that could answer several records' messages: a person places
    them (the records are named)."""
    if rule.replies is None:
        return None
    tz = ctx.settings.timezone
    waiting = [
        (row, row.time(rule.fields.reply_at, tz))
        for row in rows
        if row.get(rule.fields.reply) == AMBIGUOUS
    ]
    finding = _finding(
        "ambiguous_reply",
        rule,
        waiting,
        now,
        timedelta(0),
        "record(s) whose reply came from a phone that several records share",
        "call the participant, then set the reply of the right record to its answer and blank "
        f"the others ({rule.fields.reply}, in REDCap); no auto-answer was sent",
    )
    if finding is not None:
        named = ", ".join(sorted(row.record_id for row, _ in waiting)[:AMBIGUOUS_NAMED])
        finding = replace(finding, what=f"{finding.what}: records {named}")
    return finding


def _waiting(ctx: Context, raw: Sequence[Mapping[str, str]], now: datetime) -> Finding | None:
    """Records whose conversation holds a text waiting for a person (unclear, free text or
    ambiguous: ``relay_conversation_waiting``), their count and the oldest wait."""
    key, home, tz = ctx.layout.record_id_field, ctx.layout.event, ctx.settings.timezone
    late = []
    for values in raw:
        if home is not None and values.get("redcap_event_name") != home:
            continue
        if text := values.get(WAITING, "").strip():
            late.append((values[key], field_types.parse_time(text, tz)))
    if not late:
        return None
    record, age = _oldest(late, now)
    how_long = f"waiting {human(age)}" if age is not None else "with no time recorded"
    what = (
        f"{len(late)} record(s) with a text from the participant waiting for a person; "
        f"oldest record {record}, {how_long}"
    )
    fix = (
        "read the thread (the conversations report, redcap/REPORTS.md), answer the participant, "
        f"then blank {WAITING} on the record"
    )
    return Finding("conversation_waiting", "", len(late), record, age, 0, what, fix)


def _e164(raw: str, region: str) -> str | None:
    try:
        return normalize_phone(raw, region) if raw.strip() else None
    except ValueError:
        return None


def _finding(
    check: str,
    rule: Rule,
    late: Sequence[tuple[RuleRow, datetime | None]],
    now: datetime,
    limit: timedelta,
    what: str,
    fix: str,
) -> Finding | None:
    if not late:
        return None
    record, age = _oldest([(row.record_id, at) for row, at in late], now)
    limit_minutes = round(limit.total_seconds() / 60, 1)
    what = what or "replies in Twilio not recorded in REDCap"
    how_long = f"for {human(age)}" if age is not None else "with no time recorded"
    longer = f" (longer than {human(limit_minutes)})" if limit else ""
    oldest = f"oldest record {record}, {how_long}"
    text = f"rule {rule.name}: {len(late)} {what}{longer}; {oldest}"
    return Finding(check, rule.name, len(late), record, age, limit_minutes, text, fix)


def _oldest(late: Sequence[tuple[str, datetime | None]], now: datetime) -> tuple[str, float | None]:
    """The oldest record of ``late`` (record id, since when) and its age in minutes: one with no
    time at all first (it is older than we can tell, age None), then the earliest."""
    record, at = min(late, key=lambda pair: pair[1] or datetime.min.replace(tzinfo=UTC))
    return record, round((now - at).total_seconds() / 60, 1) if at else None


def human(minutes: float) -> str:
    """``minutes`` as people say it: 45 s, 12 min, 3 h 20 min, 2 d 4 h."""
    if minutes < 1:
        return f"{round(minutes * 60)} s"
    whole = round(minutes)
    days, hours, mins = whole // 1440, whole % 1440 // 60, whole % 60
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {mins} min" if mins else f"{hours} h"
    return f"{mins} min"


def _awake(
    start: datetime, end: datetime, quiet: QuietHours | None, tz: ZoneInfo, limit: timedelta
) -> timedelta:
    """The time from ``start`` to ``end`` outside quiet hours; only the last ``limit`` + two
    days are looked at (enough to know whether it exceeds ``limit``)."""
    start = max(start, end - limit - timedelta(days=2))
    total = end - start
    if quiet is None or total <= timedelta(0):
        return total
    day = start.astimezone(tz).date() - timedelta(days=1)
    while day <= end.astimezone(tz).date():
        begins = _at(day, quiet.start, tz)
        ends = _at(day if quiet.start < quiet.end else day + timedelta(days=1), quiet.end, tz)
        total -= max(min(end, ends) - max(start, begins), timedelta(0))
        day += timedelta(days=1)
    return total


def _at(day: Any, moment: time, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, moment, tzinfo=tz)


def last_activity(ctx: Context, raw: Sequence[Mapping[str, str]]) -> dict[str, Any]:
    """Per service, the newest time it wrote on any record (ISO) and how many minutes ago."""
    tz, now = ctx.settings.timezone, ctx.clock.now()
    newest: dict[str, datetime] = {}
    for rule in ctx.rules.every:
        for row in rows_for(ctx, rule, raw):
            for service, suffixes in SERVICE_FIELDS.items():
                for suffix in suffixes:
                    at = row.time(getattr(rule.fields, suffix), tz)
                    if at is not None and (service not in newest or at > newest[service]):
                        newest[service] = at
    return {
        service: {
            "at": newest[service].astimezone(tz).isoformat(timespec="seconds"),
            "minutes_ago": round((now - newest[service]).total_seconds() / 60, 1),
        }
        if service in newest
        else None
        for service in SERVICE_FIELDS
    }
