"""What the sender has to do this cycle, for every rule at once, in one REDCap export.

The export's ``filterLogic`` ORs, per rule: records ``registered`` (waiting for their message:
only those whose delay is nearly over or whose anchor is near or past, so records waiting days
ahead cost nothing), records ``sending`` (claims to
reconcile), and for a rule with repeats, records whose last message is settled and old enough
for the next. Times in the filter are our clock's, as text (REDCap compares Y-M-D date-times as
strings), with a 61-minute margin for daylight saving and minute-only fields; the exact decision
is made here, per row, by :mod:`messaging.timing`.

With staff alerts on (ALERT_EMAIL_TO), each rule also ORs the records :mod:`messaging.alerts`
reads: in an alert status and not yet alerted, or alerted within its window. ``sort_rows``
passes them by (none is ``registered``, ``sending`` or settled), so they cost no request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from common import logs
from common.field_types import WITH_SECONDS
from common.pipeline import SETTLED, Status
from common.runner import Context
from messaging.alerts import ALERT_STATUSES, window
from messaging.answers import expanded
from messaging.records import values_row, write
from messaging.replies import OPTED_OUT
from messaging.rows import RuleRow
from messaging.rules import Rule
from messaging.timing import due_at, expires_at
from messaging.triggers import any_of, ref

# A daylight-saving change moves local time by an hour; minute-only fields lose up to a minute.
MARGIN = timedelta(minutes=61)


@dataclass
class RuleWork:
    """One rule's rows this cycle, sorted by what is to be done with them."""

    rule: Rule
    sending: list[RuleRow] = field(default_factory=list)
    due: list[RuleRow] = field(default_factory=list)
    waiting: list[RuleRow] = field(default_factory=list)
    expired: list[RuleRow] = field(default_factory=list)


def work_logic(ctx: Context, now: datetime, rules: Sequence[Rule] | None = None) -> str:
    """The one filter selecting the work of ``rules`` (every rule, auto-answers included, for
    the sender) and the records to alert about (see the module docstring)."""
    chosen = ctx.rules if rules is None else rules
    parts = [_rule_logic(ctx, rule, now) for rule in chosen]
    if ctx.settings.alert_email_to:
        parts += [_alert_logic(ctx, rule, now) for rule in expanded(ctx.rules)]
    return any_of(parts)


def _rule_logic(ctx: Context, rule: Rule, now: datetime) -> str:
    status = ref(ctx, rule, rule.fields.status)
    waiting = f"{status} = '{Status.REGISTERED}'"
    if not rule.anchor:
        # registered_at + delay <= now  <=>  registered_at <= now - delay (margin as above);
        # a record never registered is due at once, and a requeued series message follows its
        # last message instead.
        registered = ref(ctx, rule, rule.fields.registered_at)
        latest = _text(now - timedelta(minutes=rule.delay_minutes) + MARGIN, ctx)
        times = [f"{registered} = ''", f"{registered} <= '{latest}'"]
        if rule.repeat and rule.fields.count:
            times.append(f"{ref(ctx, rule, rule.fields.count)} > 0")
        waiting = f"{waiting} and ({' or '.join(times)})"
    if rule.anchor:
        # anchor + offset <= now  <=>  anchor <= now - offset (wall clock; margin for DST)
        latest = _text(now - timedelta(minutes=rule.offset_minutes) + MARGIN, ctx)
        anchor = ref(ctx, rule, rule.anchor)
        waiting = f"{waiting} and {anchor} <> '' and {anchor} <= '{latest}'"
    parts = [waiting, f"{status} = '{Status.SENDING}'"]
    if rule.repeat and rule.fields.count:
        settled = " or ".join(f"{status} = '{code}'" for code in sorted(SETTLED))
        last = _text(now - timedelta(minutes=rule.every_minutes) + MARGIN, ctx)
        parts.append(
            f"({settled}) and {ref(ctx, rule, rule.fields.count)} < {rule.messages} "
            f"and {ref(ctx, rule, rule.fields.sent_at)} <= '{last}'"
        )
    return any_of(parts)


def _alert_logic(ctx: Context, rule: Rule, now: datetime) -> str:
    """A problem not yet alerted, or a record alerted within the window (times as text)."""
    assert rule.fields.alerted_at is not None  # ALERT_EMAIL_TO gives every rule the field
    status, alerted = ref(ctx, rule, rule.fields.status), ref(ctx, rule, rule.fields.alerted_at)
    problems = [f"{status} = '{code}'" for code in sorted(ALERT_STATUSES)]
    if rule.replies is not None:  # a STOP is news for the coordinators too
        problems.append(f"{ref(ctx, rule, rule.fields.reply)} = '{OPTED_OUT}'")
    problem = " or ".join(problems)
    since = _text(now - window(ctx.settings), ctx)
    return f"(({problem}) and {alerted} = '') or {alerted} >= '{since}'"


def sort_rows(ctx: Context, rows: Sequence[RuleRow], now: datetime) -> RuleWork:
    """Rows of one rule: to reconcile, due now, still waiting, or too late (expired)."""
    tz = ctx.settings.timezone
    work = RuleWork(rows[0].rule) if rows else None
    assert work is not None
    for row in rows:
        if row.status == Status.SENDING:
            work.sending.append(row)
            continue
        if not _wants_next(row):
            continue
        expiry = expires_at(row, tz)
        due = due_at(row, tz)
        if expiry is not None and now >= expiry:
            work.expired.append(row)
        elif due is None or now < due:
            work.waiting.append(row)
        else:
            work.due.append(row)
    return work


def _wants_next(row: RuleRow) -> bool:
    """Waiting for a message: registered, or the last of a series settled and more to come."""
    if row.status == Status.REGISTERED:
        return True
    return row.status in SETTLED and row.rule.repeat > 0 and 0 < row.sent < row.rule.messages


def record_expired(ctx: Context, rows: Sequence[RuleRow]) -> None:
    """Anchored messages whose anchor passed before they could go: ``expired``, never sent."""
    if not rows:
        return
    rule = rows[0].rule
    f = rule.fields
    out = []
    for row in rows:
        out.append(
            values_row(
                ctx,
                row,
                {
                    f.status: Status.EXPIRED,
                    f.error_code: "expired",
                    f.error_message: f"[{rule.anchor}] had passed before the message could be "
                    "sent (the service was stopped, or quiet hours held it)",
                },
            )
        )
        logs.transition(ctx.log, row.record_id, row.status, Status.EXPIRED, rule=rule.name)
    write(ctx, rule, out)


def cancel_stopped(ctx: Context, rows: Sequence[RuleRow]) -> list[RuleRow]:
    """Ask REDCap whose ``stop_when`` holds now (one export for the rule's due records); mark
    those ``cancelled`` and return the rest."""
    if not rows or not rows[0].rule.stop_when:
        return list(rows)
    rule = rows[0].rule
    key = ctx.layout.record_id_field
    event = ctx.layout.event_for(rule.event)
    held = {
        r[key]
        for r in ctx.redcap.export(
            [key],
            rule.stop_when,
            records=[row.record_id for row in rows],
            events=[event] if event else None,
        )
    }
    f = rule.fields
    cancelled = [row for row in rows if row.record_id in held]
    write(
        ctx,
        rule,
        [
            values_row(
                ctx,
                row,
                {
                    f.status: Status.CANCELLED,
                    f.error_code: "stop_when",
                    f.error_message: "the rule's stop_when held when the message was due",
                },
            )
            for row in cancelled
        ],
    )
    for row in cancelled:
        logs.transition(ctx.log, row.record_id, row.status, Status.CANCELLED, rule=rule.name)
    return [row for row in rows if row.record_id not in held]


def _text(moment: datetime, ctx: Context) -> str:
    return moment.astimezone(ctx.settings.timezone).strftime(WITH_SECONDS)
