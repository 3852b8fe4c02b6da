"""Delivery checker: asks Twilio how each sent message ended and records it in REDCap.

One cycle: one filtered export of ``sms_sent`` records, one Twilio fetch per message, and one
batched import of what changed. A record is written only when its Twilio status changed (so
REDCap's log is not flooded); ``pipeline_delivery_checked_at`` is when that status was seen.
Final outcomes set ``delivered``, ``undelivered`` or ``failed`` with Twilio's error code; a message
still unconfirmed after ``DELIVERY_CHECK_MAX_HOURS`` becomes ``unconfirmed``. Nothing is resent.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from common import logs, pipeline
from common.errors import TwilioRejected
from common.pipeline import PipelineRow, Status
from common.runner import Context, CycleResult, run_service
from common.twilio_client import describe_error
from common.writes import write_rows

FIELDS = [
    pipeline.STATUS,
    pipeline.SID,
    pipeline.SENT_AT,
    pipeline.SMS_TO,
    pipeline.DELIVERY_STATUS,
]
OUTCOME = {
    "delivered": Status.DELIVERED,
    "undelivered": Status.UNDELIVERED,
    "failed": Status.FAILED,
    "canceled": Status.FAILED,
}


def run_once(ctx: Context) -> CycleResult:
    assert ctx.sms is not None
    result = CycleResult()
    key = ctx.layout.record_id_field
    raw = ctx.redcap.export(
        [key, *FIELDS], f"[{pipeline.STATUS}] = '{Status.SMS_SENT}'", events=ctx.layout.events
    )
    rows = [PipelineRow(r[key], r) for r in raw]
    updates: list[dict[str, str]] = []
    try:
        for row in rows:
            if ctx.stop.is_set():
                break
            update = check(ctx, row, result)
            if update is not None:
                updates.append(update)
    finally:
        write_rows(ctx.redcap, ctx.layout, updates)  # what was learned is kept even if cut short
    return result


def check(ctx: Context, row: PipelineRow, result: CycleResult) -> dict[str, str] | None:
    """The update for one record, or None when nothing changed."""
    assert ctx.sms is not None
    now = ctx.clock.now()
    tz = ctx.settings.timezone
    stamp = ctx.stamp(pipeline.CHECKED_AT, now)
    sid = row.get(pipeline.SID)
    if not sid:
        result.add("needs_review")
        logs.transition(ctx.log, row.record_id, row.status, Status.NEEDS_REVIEW, reason="no_sid")
        return ctx.layout.row(
            row.record_id,
            {
                pipeline.STATUS: Status.NEEDS_REVIEW,
                pipeline.ERROR_CODE: "no_sid",
                pipeline.ERROR_MESSAGE: "marked sms_sent but no Twilio SID is recorded",
            },
        )
    try:
        message = ctx.sms.fetch(sid)
    except TwilioRejected as exc:  # 404: the SID is unknown to this Twilio account
        result.add("needs_review")
        logs.transition(ctx.log, row.record_id, row.status, Status.NEEDS_REVIEW, reason=exc.code)
        return ctx.layout.row(
            row.record_id,
            {
                pipeline.STATUS: Status.NEEDS_REVIEW,
                pipeline.ERROR_CODE: exc.code,
                pipeline.ERROR_MESSAGE: "Twilio does not know this message SID",
                pipeline.CHECKED_AT: stamp,
            },
        )
    values: dict[str, str] = {}
    if message.status != row.get(pipeline.DELIVERY_STATUS):
        values[pipeline.DELIVERY_STATUS] = message.status
    final = OUTCOME.get(message.status)
    if final is not None:
        values[pipeline.STATUS] = final
        if message.error_code:
            values[pipeline.ERROR_CODE] = str(message.error_code)
            values[pipeline.ERROR_MESSAGE] = describe_error(message.error_code)
    else:
        sent = row.time(pipeline.SENT_AT, tz)
        if sent is not None and now - sent > timedelta(hours=ctx.settings.delivery_check_max_hours):
            final = Status.UNCONFIRMED
            values[pipeline.STATUS] = final
            values[pipeline.ERROR_MESSAGE] = (
                f"no delivery report after {ctx.settings.delivery_check_max_hours:g} hours "
                f"(last status {message.status})"
            )
    if not values:
        result.add("pending")
        return None
    values[pipeline.CHECKED_AT] = stamp
    if final is not None:
        result.add(str(final))
        logs.transition(
            ctx.log, row.record_id, row.status, final, reason=str(message.error_code or "")
        )
    else:
        result.add("pending")
    return ctx.layout.row(row.record_id, values)


def main(argv: Sequence[str] | None = None) -> int:
    return run_service(
        "delivery_checker",
        "Record how each sent SMS ended (delivered, undelivered, failed).",
        argv,
        run_once,
        needs_twilio=True,
    )


if __name__ == "__main__":
    raise SystemExit(main())
