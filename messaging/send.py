"""The send path shared by the sender service and ``admin force``: prepare, claim, send, record.

Order matters for "never twice, never lost" (README "Crash safety"):

1. **prepare**: pick the phone, fetch the survey link, render the body. Nothing is written.
2. **claim**: one import sets ``sending``, the claim time, ``pipeline_sms_to`` and attempts + 1.
3. **send**: one Twilio create per record, paced (:mod:`messaging.pacing`).
4. **record**: one import with each outcome (``sms_sent`` + SID, ``failed``, or back to
   ``registered``). A create whose outcome is unknown stays ``sending`` for :mod:`reconcile`.

A crash before 2 leaves the record ``registered``; between 2 and 4 it is ``sending`` and
reconciliation looks the message up in Twilio before anything is sent again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from common import logs, pipeline
from common.errors import (
    ConfigError,
    PermanentError,
    SurveyLinkError,
    TwilioOutcomeUnknown,
    TwilioRejected,
    TwilioUnavailable,
)
from common.phones import pick_phone
from common.pipeline import PipelineRow, Status
from common.redcap_client import chunked
from common.runner import Context
from common.template import MAX_BODY
from common.twilio_client import MessageInfo
from common.writes import write_rows
from messaging.links import survey_links
from messaging.pacing import SendPacer

CHUNK = 10  # records claimed per import: bounds how many a crash leaves in "sending"
OUTCOME_UNKNOWN = "outcome_unknown"  # error code on a claim whose create got no answer


@dataclass(frozen=True)
class Prepared:
    row: PipelineRow
    to: str
    body: str
    link: str


def export_fields(ctx: Context) -> list[str]:
    """What the sender reads: the pipeline fields, the phone fields, the template's fields."""
    names = [ctx.layout.record_id_field, *pipeline.PIPELINE_FIELDS]
    names += list(ctx.layout.phone_fields) + list(ctx.settings.sms_template.fields)
    return list(dict.fromkeys(names))


def to_rows(ctx: Context, raw: Iterable[dict[str, str]]) -> list[PipelineRow]:
    key = ctx.layout.record_id_field
    return [PipelineRow(r[key], r) for r in raw]


def prepare(
    ctx: Context, rows: Sequence[PipelineRow]
) -> tuple[list[Prepared], list[tuple[PipelineRow, PermanentError]]]:
    """Phones, links and bodies; records that cannot be texted come back with their error."""
    ready: list[Prepared] = []
    problems: list[tuple[PipelineRow, PermanentError]] = []
    phones: dict[str, str] = {}
    for row in rows:
        try:
            _, phones[row.record_id] = pick_phone(
                row.values, ctx.layout.phone_fields, ctx.settings.phone_region
            )
        except PermanentError as exc:
            problems.append((row, exc))
            continue
        allowed = ctx.settings.sms_allowed_numbers
        if allowed is not None and phones[row.record_id] not in allowed:
            problems.append(
                (row, PermanentError("not_allowed", "number is not in SMS_ALLOWED_NUMBERS"))
            )
            del phones[row.record_id]
    links = survey_links(ctx, list(phones)) if phones else {}
    for row in rows:
        if row.record_id not in phones:
            continue
        link = links.get(row.record_id)
        if isinstance(link, PermanentError) or link is None:
            problems.append((row, link or SurveyLinkError("survey_link", "no survey link")))
            continue
        body = ctx.settings.sms_template.render(link, row.record_id, row.values)
        if len(body) > MAX_BODY:
            problems.append((row, PermanentError("too_long", "message over 1600 characters")))
            continue
        ready.append(Prepared(row, phones[row.record_id], body, link))
    return ready, problems


def record_problems(ctx: Context, problems: Sequence[tuple[PipelineRow, PermanentError]]) -> None:
    """Write ``skipped`` (no usable phone / not allowed) or ``failed`` with the reason."""
    rows = []
    for row, exc in problems:
        status = (
            Status.SKIPPED
            if exc.code in ("no_phone", "invalid_phone", "not_allowed")
            else Status.FAILED
        )
        rows.append(
            ctx.layout.row(
                row.record_id,
                {
                    pipeline.STATUS: status,
                    pipeline.ERROR_CODE: exc.code,
                    pipeline.ERROR_MESSAGE: str(exc)[:1000],
                },
            )
        )
        logs.transition(ctx.log, row.record_id, row.status, status, reason=exc.code)
    write_rows(ctx.redcap, ctx.layout, rows)


def batches(due: Sequence[PipelineRow]) -> list[Sequence[PipelineRow]]:
    """Groups of CHUNK records, each prepared, claimed and sent before the next is prepared (so
    REDCap's link requests keep the send pace: a backlog never fires them all at once). A record
    whose send a stopped sender interrupted before goes alone and last, so a record that crashes
    the sender every time takes no one down with it."""
    suspects = [row for row in due if row.interrupted]
    others = [row for row in due if not row.interrupted]
    return [*chunked(others, CHUNK), *([row] for row in suspects)]


def claim(ctx: Context, batch: Sequence[Prepared]) -> list[Prepared]:
    """Mark the batch ``sending`` in one import; returns those REDCap accepted."""
    now = ctx.stamp(pipeline.CLAIMED_AT)
    rows = [
        ctx.layout.row(
            p.row.record_id,
            {
                pipeline.STATUS: Status.SENDING,
                pipeline.CLAIMED_AT: now,
                pipeline.SMS_TO: p.to,
                pipeline.ATTEMPTS: str(p.row.attempts + 1),
                pipeline.ERROR_CODE: "",
                pipeline.ERROR_MESSAGE: "",
            },
        )
        for p in batch
    ]
    # overwrite: the blank error fields erase a previous attempt's reason.
    refused = write_rows(ctx.redcap, ctx.layout, rows, overwrite=True)
    claimed = [p for p in batch if p.row.record_id not in refused]
    for p in claimed:
        logs.transition(ctx.log, p.row.record_id, p.row.status, Status.SENDING, to=p.to)
    return claimed


def send_batch(
    ctx: Context,
    claimed: Sequence[Prepared],
    pacer: SendPacer,
    should_stop: Callable[[], bool],
) -> dict[str, int]:
    """Send each claimed record and record every outcome in one import.

    Stops early (and un-claims the rest) on a stop request or when Twilio is unavailable.
    """
    assert ctx.sms is not None
    counts: dict[str, int] = {}
    rows: list[dict[str, str]] = []
    pending = list(claimed)
    auth_error: ConfigError | None = None
    while pending:
        p = pending.pop(0)
        rid, attempts = p.row.record_id, p.row.attempts + 1
        try:
            with pacer.paced():
                message = ctx.sms.send(p.to, p.body)
        except TwilioRejected as exc:
            rows.append(failed_row(ctx, rid, exc.code, str(exc)))
            logs.transition(ctx.log, rid, Status.SENDING, Status.FAILED, to=p.to, reason=exc.code)
            counts["failed"] = counts.get("failed", 0) + 1
        except TwilioOutcomeUnknown as exc:
            ctx.log.warning("record=%s outcome unknown (%s); will reconcile", rid, exc)
            rows.append(_outcome_unknown(ctx, rid, str(exc)))
            counts["unknown"] = counts.get("unknown", 0) + 1
            pending = _release(ctx, pending, rows)
        except TwilioUnavailable as exc:
            rows.append(_retry_or_fail(ctx, rid, attempts, str(exc)))
            counts["deferred"] = counts.get("deferred", 0) + 1
            pending = _release(ctx, pending, rows)
        except ConfigError as exc:
            rows.append(_unclaim(ctx, p))
            auth_error = exc
            pending = _release(ctx, pending, rows)
        else:
            rows.append(sent_row(ctx, rid, message))
            logs.transition(ctx.log, rid, Status.SENDING, Status.SMS_SENT, to=p.to)
            counts["sent"] = counts.get("sent", 0) + 1
        if pending and should_stop():
            pending = _release(ctx, pending, rows)
    write_rows(ctx.redcap, ctx.layout, rows)
    if auth_error is not None:
        raise auth_error
    return counts


def sent_row(
    ctx: Context, record_id: str, message: MessageInfo, adopted: bool = False
) -> dict[str, str]:
    """``sms_sent`` with the SID. The time is ours when we saw Twilio accept it, or Twilio's
    creation time for a message adopted by reconciliation."""
    when = (message.date_created if adopted else None) or ctx.clock.now()
    return ctx.layout.row(
        record_id,
        {
            pipeline.STATUS: Status.SMS_SENT,
            pipeline.SID: message.sid,
            pipeline.SENT_AT: ctx.stamp(pipeline.SENT_AT, when),
            pipeline.DELIVERY_STATUS: message.status,
        },
    )


def failed_row(ctx: Context, record_id: str, code: str, message: str) -> dict[str, str]:
    return ctx.layout.row(
        record_id,
        {
            pipeline.STATUS: Status.FAILED,
            pipeline.ERROR_CODE: code,
            pipeline.ERROR_MESSAGE: message[:1000],
        },
    )


def _retry_or_fail(ctx: Context, record_id: str, attempts: int, reason: str) -> dict[str, str]:
    """Nothing was sent: back to ``registered``, or ``failed`` once attempts run out."""
    if attempts >= ctx.settings.sms_max_attempts:
        logs.transition(ctx.log, record_id, Status.SENDING, Status.FAILED, reason="max_attempts")
        return failed_row(
            ctx, record_id, "max_attempts", f"not sent after {attempts} attempts; last: {reason}"
        )
    logs.transition(ctx.log, record_id, Status.SENDING, Status.REGISTERED, reason="retry")
    return ctx.layout.row(record_id, {pipeline.STATUS: Status.REGISTERED})


def _outcome_unknown(ctx: Context, record_id: str, reason: str) -> dict[str, str]:
    """Still ``sending``, marked so that reconciliation counts an attempt if nothing went out:
    Twilio's trouble, unlike our own process stopping, uses up SMS_MAX_ATTEMPTS."""
    return ctx.layout.row(
        record_id,
        {
            pipeline.ERROR_CODE: OUTCOME_UNKNOWN,
            pipeline.ERROR_MESSAGE: f"Twilio's answer to the send was lost ({reason})"[:1000],
        },
    )


def _unclaim(ctx: Context, p: Prepared) -> dict[str, str]:
    """Give a claimed, unsent record back untouched: status and attempts as they were."""
    logs.transition(
        ctx.log, p.row.record_id, Status.SENDING, Status.REGISTERED, reason="not_attempted"
    )
    return ctx.layout.row(
        p.row.record_id,
        {
            pipeline.STATUS: Status.REGISTERED,
            pipeline.ATTEMPTS: str(p.row.attempts),
        },
    )


def _release(ctx: Context, pending: list[Prepared], rows: list[dict[str, str]]) -> list[Prepared]:
    rows.extend(_unclaim(ctx, p) for p in pending)
    return []
