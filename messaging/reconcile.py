"""Reconciliation: settle ``sending`` records a crashed or interrupted sender left behind.

A record stays ``sending`` when the sender died between its claim and its result, or when a
create got no answer. Once the claim is older than ``SMS_CLAIM_TIMEOUT_SECONDS`` we ask Twilio for
messages to ``pipeline_sms_to`` created since the claim and carrying this record's survey link:

- found: adopt its SID (``sms_sent``) - the participant got it, never send again;
- none: nothing went out - back to ``registered``. If the create got no answer (marked
  ``outcome_unknown``), that was Twilio's trouble and used an attempt (``failed`` once
  SMS_MAX_ATTEMPTS run out). Otherwise our own sender stopped while holding the claim: the
  attempt is given back and ``pipeline_sms_interrupted`` counts it (``failed``, reason
  ``interrupted``, once SMS_MAX_INTERRUPTED is reached: a record that crashes the sender);
- Twilio cannot be asked: leave it for the next cycle; after ``SMS_REVIEW_AFTER_HOURS``,
  ``needs_review`` for a person to decide.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from common import logs, pipeline
from common.errors import PermanentError, TwilioUnavailable
from common.pipeline import PipelineRow, Status
from common.runner import Context
from common.writes import write_rows
from messaging.links import survey_links
from messaging.send import OUTCOME_UNKNOWN, failed_row, sent_row

# Twilio's clock and ours may disagree a little; look this far before the claim time.
CLOCK_SKEW = timedelta(minutes=5)


def reconcile(ctx: Context, rows: Sequence[PipelineRow]) -> dict[str, int]:
    """Resolve stale ``sending`` rows; returns counts by outcome."""
    assert ctx.sms is not None
    now = ctx.clock.now()
    tz = ctx.settings.timezone
    timeout = timedelta(seconds=ctx.settings.sms_claim_timeout_seconds)
    stale = []
    for row in rows:
        claimed = row.time(pipeline.CLAIMED_AT, tz) or row.time(pipeline.REGISTERED_AT, tz)
        if claimed is None or now - claimed >= timeout:
            stale.append((row, claimed))
    if not stale:
        return {}
    counts: dict[str, int] = {}
    links = survey_links(ctx, [row.record_id for row, _ in stale])
    out: list[dict[str, str]] = []
    for row, claimed in stale:
        outcome = _settle(ctx, row, claimed, links.get(row.record_id), out)
        counts[outcome] = counts.get(outcome, 0) + 1
    write_rows(ctx.redcap, ctx.layout, out)
    return counts


def _settle(
    ctx: Context,
    row: PipelineRow,
    since: datetime | None,
    link: str | PermanentError | None,
    out: list[dict[str, str]],
) -> str:
    assert ctx.sms is not None
    rid, to = row.record_id, row.get(pipeline.SMS_TO)
    if since is None or not to:
        return _review(ctx, row, "the claim lacks its time or number", out)
    too_old = ctx.clock.now() - since > timedelta(hours=ctx.settings.sms_review_after_hours)
    if not isinstance(link, str):
        if too_old:
            return _review(ctx, row, "no survey link to match the message against", out)
        return "waiting"
    try:
        found = ctx.sms.messages_to(to, since - CLOCK_SKEW)
    except TwilioUnavailable:
        if too_old:
            return _review(ctx, row, "Twilio could not be asked whether it was sent", out)
        return "waiting"
    mine = [m for m in found if link in m.body]
    if mine:
        message = min(mine, key=lambda m: m.date_created or since)
        out.append(sent_row(ctx, rid, message, adopted=True))
        logs.transition(ctx.log, rid, Status.SENDING, Status.SMS_SENT, to=to, reason="reconciled")
        return "adopted"
    if row.get(pipeline.ERROR_CODE) != OUTCOME_UNKNOWN:
        return _interrupted(ctx, row, out)
    if row.attempts >= ctx.settings.sms_max_attempts:
        out.append(
            failed_row(
                ctx,
                rid,
                "max_attempts",
                f"not sent after {row.attempts} attempts (Twilio's answers were lost)",
            )
        )
        logs.transition(ctx.log, rid, Status.SENDING, Status.FAILED, reason="max_attempts")
        return "failed"
    out.append(ctx.layout.row(rid, {pipeline.STATUS: Status.REGISTERED}))
    logs.transition(ctx.log, rid, Status.SENDING, Status.REGISTERED, reason="not_sent")
    return "requeued"


def _interrupted(ctx: Context, row: PipelineRow, out: list[dict[str, str]]) -> str:
    """Our own sender stopped while it held the claim and nothing went out: give the attempt
    back, count the interruption, and give up only past SMS_MAX_INTERRUPTED (a record that
    crashes the sender every time must not crash it for ever)."""
    rid, times = row.record_id, row.interrupted + 1
    if times >= ctx.settings.sms_max_interrupted:
        out.append(
            failed_row(
                ctx,
                rid,
                "interrupted",
                f"the sender stopped {times} times while sending to this record; look at its "
                "log around those sends, then run admin requeue",
            )
        )
        out[-1][pipeline.INTERRUPTED] = str(times)
        logs.transition(ctx.log, rid, Status.SENDING, Status.FAILED, reason="interrupted")
        return "failed_interrupted"
    values = {
        pipeline.STATUS: Status.REGISTERED,
        pipeline.ATTEMPTS: str(max(row.attempts - 1, 0)),
        pipeline.INTERRUPTED: str(times),
    }
    out.append(ctx.layout.row(rid, values))
    logs.transition(ctx.log, rid, Status.SENDING, Status.REGISTERED, reason="interrupted")
    return "interrupted"


def _review(ctx: Context, row: PipelineRow, reason: str, out: list[dict[str, str]]) -> str:
    out.append(
        ctx.layout.row(
            row.record_id,
            {
                pipeline.STATUS: Status.NEEDS_REVIEW,
                pipeline.ERROR_CODE: "unresolved_send",
                pipeline.ERROR_MESSAGE: f"send interrupted and not resolved: {reason}; "
                "check Twilio's message log, then set the status by hand or run admin requeue",
            },
        )
    )
    logs.transition(ctx.log, row.record_id, Status.SENDING, Status.NEEDS_REVIEW, reason=reason)
    return "needs_review"
