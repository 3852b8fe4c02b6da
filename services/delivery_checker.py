"""Delivery checker: asks Twilio how each sent message ended and records it in REDCap.

One cycle: one filtered export of every rule's ``sms_sent`` records (auto-answers' too), one
Twilio fetch per message, and one batched import of what changed. A record is written only
when its Twilio status changed (so REDCap's log is not flooded); ``R_delivery_checked_at`` is
when that status was seen.
Final outcomes set ``delivered``, ``undelivered`` or ``failed`` with Twilio's error code; a message
still unconfirmed after ``DELIVERY_CHECK_MAX_HOURS`` becomes ``unconfirmed``. Nothing is resent.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from common import logs
from common.errors import TwilioRejected
from common.pipeline import Status
from common.runner import CycleResult
from common.twilio_client import describe_error
from messaging.context import Context, serve
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
from messaging.rules import Rule


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
    logic = any_of([f"{ref(ctx, r, r.fields.status)} = '{Status.SMS_SENT}'" for r in rules])
    raw = ctx.redcap.export(fields, logic, events=export_events(ctx, rules))
    for rule in rules:
        rows = [row for row in rows_for(ctx, rule, raw) if row.status == Status.SMS_SENT]
        updates: list[dict[str, str]] = []
        try:
            for row in rows:
                if ctx.stop.is_set():
                    break
                update = check(ctx, row, result)
                if update is not None:
                    updates.append(update)
        finally:
            write(ctx, rule, updates)  # what was learned is kept even if cut short
        if ctx.stop.is_set():
            break
    return result


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
    final = OUTCOME.get(message.status)
    if final is not None:
        values[f.status] = final
        if message.error_code:
            values[f.error_code] = str(message.error_code)
            values[f.error_message] = describe_error(message.error_code)
    else:
        sent = row.time(f.sent_at, tz)
        if sent is not None and now - sent > timedelta(hours=ctx.settings.delivery_check_max_hours):
            final = Status.UNCONFIRMED
            values[f.status] = final
            values[f.error_message] = (
                f"no delivery report after {ctx.settings.delivery_check_max_hours:g} hours "
                f"(last status {message.status})"
            )
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
    return serve("delivery_checker", __doc__, argv, run_once, needs_twilio=True)


if __name__ == "__main__":
    raise SystemExit(main())
