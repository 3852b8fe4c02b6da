"""Delivery checker: asks Twilio how each sent message ended and records it in REDCap.

One cycle: one filtered export of every rule's ``sms_sent`` records (auto-answers' too: a sweep
every SWEEP_MINUTES, between sweeps the records changed since the last cycle and those still
waiting for their report, :mod:`messaging.probes`), one
Twilio fetch per message, and one batched import of what changed. A record is written only
when its Twilio status changed (so REDCap's log is not flooded); ``R_delivery_checked_at`` is
when that status was seen.
Final outcomes set ``delivered``, ``undelivered`` or ``failed`` with Twilio's error code; a message
still unconfirmed after ``DELIVERY_CHECK_MAX_HOURS`` becomes ``unconfirmed``. Nothing is resent.
With CONVERSATION_LOG=1 the same export finds staff messages sent from REDCap
(:mod:`messaging.staff`), whose report goes on their ``relay_message`` instance.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from common import logs
from common.errors import RedcapRejected, TwilioRejected
from common.field_types import parse_time
from common.pipeline import Status
from common.runner import CycleResult
from common.twilio_client import MessageInfo, describe_error
from messaging import conversation
from messaging.context import Context, serve
from messaging.conversation import instance_row
from messaging.records import (
    RuleRow,
    any_of,
    export_events,
    reason_row,
    ref,
    rows_for,
    values_row,
    write,
)
from messaging.rules import SMS, Rule
from messaging.thread import (
    AT,
    ERROR,
    OUT,
    RULE,
    SID,
    STAFF,
    STAFF_SENT_FIELDS,
    STAFF_SENT_LOGIC,
    STATUS,
    Entry,
    instance,
)

STAFF_KEPT = "relay_message"  # Watch.rows key of a staff message awaiting its report
SENT = Status.SMS_SENT


def _fields(rule: Rule) -> list[str]:
    f = rule.fields
    return [f.status, f.sid, f.sent_at, f.to, f.delivery_status]


OUTCOME = {
    "delivered": Status.DELIVERED,
    "undelivered": Status.UNDELIVERED,
    "failed": Status.FAILED,
    "canceled": Status.FAILED,
}


def run_once(ctx: Context) -> CycleResult:
    result = CycleResult()
    rules = [rule for rule in ctx.rules.every if rule.sends_sms]  # auto-answers too
    if not rules:
        return result  # e-mail only: Graph gives no delivery report to wait for
    assert ctx.sms is not None
    key = ctx.layout.record_id_field
    fields = [key, *(name for rule in rules for name in _fields(rule))]
    parts = [f"{ref(ctx, r, r.fields.status)} = '{Status.SMS_SENT}'" for r in rules]
    events = export_events(ctx, rules)
    staff = conversation.enabled(ctx)
    if staff:  # staff messages awaiting their report, in the same export (messaging.staff)
        parts.append(STAFF_SENT_LOGIC)
        fields += STAFF_SENT_FIELDS
        events = export_events(ctx, rules, home=True)
    logic = any_of(parts)

    def export(since: datetime | None, records: Sequence[str] | None) -> list[dict[str, str]]:
        return ctx.redcap.export(
            fields, logic, records=records, events=events, changed_since=since, instances=staff
        )

    watch = ctx.watch
    plan = watch.plan(ctx.settings, ctx.clock.now())
    raw = watch.fetch(ctx.redcap, plan, export, key)
    named = {row[key] for row in raw if not row.get("redcap_repeat_instrument")}
    if plan.sweep:
        watch.rows.clear()
    for rule in rules:
        fresh = [row for row in rows_for(ctx, rule, raw) if row.status == Status.SMS_SENT]
        kept: list[RuleRow] = [
            row
            for (name, record), row in watch.rows.items()
            if name == rule.name and record not in named
        ]
        updates: list[dict[str, str]] = []
        try:
            updates = _checked(ctx, rule, fresh, kept, export, result)
        finally:
            _log_finals(ctx, rule, [*fresh, *kept], updates)
            write(ctx, rule, updates)  # what was learned is kept even if cut short
        if ctx.stop.is_set():
            break
    if staff and not ctx.stop.is_set():
        _staff_reports(ctx, raw, result)
    return result


def _staff_reports(ctx: Context, raw: Sequence[Mapping[str, str]], result: CycleResult) -> None:
    """The delivery report of each staff message ``sms_sent`` on a thread: those the export
    named and those kept from earlier cycles (unchanged since, so no probe names them), each
    asked of Twilio; a final status (or ``unconfirmed`` after DELIVERY_CHECK_MAX_HOURS) is
    written on the instance, the rest kept for the next cycles."""
    assert ctx.sms is not None
    key, home, tz = ctx.layout.record_id_field, ctx.layout.event, ctx.settings.timezone
    fresh: dict[tuple[str, str], Mapping[str, str]] = {}
    for row in raw:
        number = instance(row, home)
        if number is not None and row.get(RULE) == STAFF and row.get(STATUS) == SENT:
            fresh[(STAFF_KEPT, f"{row[key]}#{number}")] = row
    watch = ctx.watch
    waiting = {k: v for k, v in watch.rows.items() if k[0] == STAFF_KEPT and k not in fresh}
    rows = []
    for slot, values in [*fresh.items(), *waiting.items()]:
        watch.rows.pop(slot, None)
        try:
            message = ctx.sms.fetch(values[SID])
        except TwilioRejected:
            status, why = str(Status.NEEDS_REVIEW), "Twilio does not know this message SID"
        else:
            final, why = verdict(ctx, message, parse_time(values.get(AT, ""), tz))
            status = str(final) if final is not None else ""
            if message.error_code and final != Status.UNCONFIRMED:
                why = f"{message.error_code}: {why}"
        if not status:
            watch.rows[slot] = values  # no final word yet: asked again next cycle
            continue
        record, _, numbered = slot[1].partition("#")
        rows.append(instance_row(ctx, record, int(numbered), {STATUS: status, ERROR: why}))
        result.add(f"staff_{status}")
    if rows:
        ctx.redcap.import_rows(rows)


def _checked(
    ctx: Context,
    rule: Rule,
    fresh: Sequence[RuleRow],
    kept: Sequence[RuleRow],
    export: Callable[[datetime | None, Sequence[str] | None], list[dict[str, str]]],
    result: CycleResult,
) -> list[dict[str, str]]:
    """The updates of one rule's messages: those REDCap just named (``fresh``) and those still
    awaiting a report from earlier cycles (``kept`` in memory, unchanged in REDCap since: no
    probe named them). Twilio is asked about each; a kept one whose report changed is read
    again from REDCap (one export) and written only if REDCap still holds it as it was."""
    watch = ctx.watch
    found: list[tuple[RuleRow, dict[str, str] | None]] = []
    for row in [*fresh, *kept]:
        if ctx.stop.is_set():
            break
        found.append((row, check(ctx, row, result)))
    old = {id(row) for row in kept}
    again = [row.record_id for row, update in found if update is not None and id(row) in old]
    current: dict[str, RuleRow] = {}
    if again:
        for row in rows_for(ctx, rule, export(None, again)):
            current[row.record_id] = row
    updates: list[dict[str, str]] = []
    for row, update in found:
        slot = (rule.name, row.record_id)
        watch.rows.pop(slot, None)
        if update is not None and id(row) in old:
            now_row = current.get(row.record_id)
            if now_row is None or any(now_row.get(f) != row.get(f) for f in _fields(rule)):
                continue  # REDCap changed meanwhile: the next probe brings the record fresh
        if update is None or update.get(rule.fields.status, Status.SMS_SENT) == Status.SMS_SENT:
            # No final word from Twilio yet: kept for the next cycles (a status that does not
            # change logs nothing a probe would see). Its delivery status as written.
            watch.rows[slot] = row if update is None else _as_written(row, update)
        if update is not None:
            updates.append(update)
    return updates


def _log_finals(
    ctx: Context, rule: Rule, rows: Sequence[RuleRow], updates: Sequence[Mapping[str, str]]
) -> None:
    """A message's final status on its conversation log entry, written before the record's
    (a crash between: the next cycle writes both again, on the same entry)."""
    if not conversation.enabled(ctx):
        return
    f, key, tz = rule.fields, ctx.layout.record_id_field, ctx.settings.timezone
    by_record = {row.record_id: row for row in rows}
    finals: dict[str, dict[str, str]] = {}
    make: dict[str, list[Entry]] = {}
    for update in updates:
        row = by_record.get(update.get(key, ""))
        final = update.get(f.status, Status.SMS_SENT)
        if row is None or final == Status.SMS_SENT or not row.get(f.sid):
            continue
        finals.setdefault(row.record_id, {})[row.get(f.sid)] = final
        at = row.time(f.sent_at, tz) or ctx.clock.now()
        make.setdefault(row.record_id, []).append(
            Entry(row.get(f.sid), OUT, at, SMS, rule.name, final)
        )
    try:
        conversation.statuses(ctx, finals, make)
    except RedcapRejected as exc:
        ctx.log.error("conversation log statuses refused by REDCap: %s", exc)


def _as_written(row: RuleRow, update: Mapping[str, str]) -> RuleRow:
    return replace(row, values={**row.values, **update})


def verdict(ctx: Context, message: MessageInfo, sent: datetime | None) -> tuple[Status | None, str]:
    """How a message sent at ``sent`` ended, from Twilio's answer: a final status and why
    (Twilio's error described), ``unconfirmed`` once DELIVERY_CHECK_MAX_HOURS passed without
    one, or None while it may still come."""
    final = OUTCOME.get(message.status)
    if final is not None:
        return final, describe_error(message.error_code) if message.error_code else ""
    hours = ctx.settings.delivery_check_max_hours
    if sent is not None and ctx.clock.now() - sent > timedelta(hours=hours):
        why = f"no delivery report after {hours:g} hours (last status {message.status})"
        return Status.UNCONFIRMED, why
    return None, ""


def check(ctx: Context, row: RuleRow, result: CycleResult) -> dict[str, str] | None:
    """The update for one record, or None when nothing changed."""
    assert ctx.sms is not None
    now = ctx.clock.now()
    tz = ctx.settings.timezone
    f, name = row.rule.fields, row.rule.name
    stamp = ctx.stamp(f.checked_at, now)
    sid = row.get(f.sid)
    if not sid:
        result.add("needs_review")
        why = "marked sms_sent but no Twilio SID is recorded"
        return reason_row(ctx, row, Status.NEEDS_REVIEW, "no_sid", why)
    try:
        message = ctx.sms.fetch(sid)
    except TwilioRejected as exc:  # 404: the SID is unknown to this Twilio account
        result.add("needs_review")
        why = "Twilio does not know this message SID"
        also = {f.checked_at: stamp}
        return reason_row(ctx, row, Status.NEEDS_REVIEW, exc.code, why, also=also)
    values: dict[str, str] = {}
    if message.status != row.get(f.delivery_status):
        values[f.delivery_status] = message.status
    final, why = verdict(ctx, message, row.time(f.sent_at, tz))
    if final is not None:
        values[f.status] = final
        if message.error_code and final != Status.UNCONFIRMED:
            values[f.error_code] = str(message.error_code)
        if why:
            values[f.error_message] = why
    if not values:
        result.add("pending")
        return None
    values[f.checked_at] = stamp
    if final is not None:
        result.add(str(final))
        logs.transition(
            ctx.log,
            row.record_id,
            row.status,
            final,
            reason=str(message.error_code or ""),
            rule=name,
        )
    else:
        result.add("pending")
    return values_row(ctx, row, values)


def main(argv: Sequence[str] | None = None) -> int:
    return serve("delivery_checker", __doc__, argv, run_once, needs_twilio=True, probes=True)


if __name__ == "__main__":
    raise SystemExit(main())
