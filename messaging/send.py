"""The send path shared by the sender service and ``admin force``: prepare, claim, send, record.

Order matters for "never twice, never lost" (README "Crash safety"), for every rule alike:

1. **prepare** (:mod:`messaging.prepare`): pick the channel and its address (the rule's
   ``channel``: the phone, else the e-mail address, or the reverse), fetch the survey link,
   render the text. Nothing is written.
2. **claim**: one import sets the rule's ``R_status`` to ``sending``, the claim time, the number
   (``R_sms_to``) or address (``R_email_to``) and ``R_channel``, attempts + 1 and (file rules)
   ``R_sms_ref``, what reconciliation matches on: the SMS body's fingerprint, or the id the mail
   carries in its ``x-redcap-relay-id`` header.
3. **send**: one Twilio create or Graph sendMail per record, paced per channel
   (:mod:`messaging.pacing`).
4. **record**: one import with each outcome (``sms_sent`` + SID, or ``sent_email``, with
   ``R_sms_count`` + 1; ``failed``; or back to ``registered``). A send whose outcome is unknown
   stays ``sending`` for :mod:`messaging.reconcile`.

A crash before 2 leaves the record as it was; between 2 and 4 it is ``sending`` and
reconciliation looks the message up in Twilio before anything is sent again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from common import logs
from common.errors import (
    ConfigError,
    GraphOutcomeUnknown,
    GraphUnavailable,
    PermanentError,
    TwilioOutcomeUnknown,
    TwilioUnavailable,
)
from common.pipeline import SETTLED, Status
from common.redcap_client import chunked
from common.runner import Context
from common.twilio_client import MessageInfo
from messaging.pacing import Pacers
from messaging.prepare import Prepared
from messaging.records import values_row, write
from messaging.replies import OPT_OUT, OPT_OUT_AT
from messaging.rows import RuleRow
from messaging.rules import EMAIL, SMS

CHUNK = 10  # records claimed per import: bounds how many a crash leaves in "sending"
OUTCOME_UNKNOWN = "outcome_unknown"  # error code on a claim whose create got no answer

UNSUBSCRIBED = "21610"  # Twilio: the recipient has replied STOP to this number


def claimed_attempts(row: RuleRow) -> int:
    """The attempts a claim of ``row`` records: one more, or 1 for the next message of a series
    (which starts its own count of attempts and interruptions)."""
    return 1 if row.status in SETTLED else row.attempts + 1


def batches(due: Sequence[RuleRow]) -> list[Sequence[RuleRow]]:
    """Groups of CHUNK records, each prepared, claimed and sent before the next is prepared (so
    REDCap's link requests keep the send pace: a backlog never fires them all at once). A record
    whose send a stopped sender interrupted before goes alone and last, so a record that crashes
    the sender every time takes no one down with it."""
    suspects = [row for row in due if row.interrupted]
    others = [row for row in due if not row.interrupted]
    return [*chunked(others, CHUNK), *([row] for row in suspects)]


def pacers_for(ctx: Context) -> Pacers:
    """The send pacers of one process (a sender keeps its own across cycles)."""
    s = ctx.settings
    return Pacers(s.sms_max_per_second, s.email_max_per_minute, ctx.clock)


def claim_groups(ctx: Context, ready: Sequence[Prepared]) -> list[list[Prepared]]:
    """How a prepared chunk is claimed: its SMS together, its e-mails together when Sent Items
    can settle a crash, else each e-mail alone just before it is sent (a crash then leaves at
    most one e-mail for a person to check, not a chunk)."""
    sms = [p for p in ready if p.channel == SMS]
    mail = [p for p in ready if p.channel == EMAIL]
    groups = [sms] if sms else []
    if ctx.settings.graph_can_read_sent:
        return groups + ([mail] if mail else [])
    return groups + [[p] for p in mail]


def claim(ctx: Context, batch: Sequence[Prepared]) -> list[Prepared]:
    """Mark a batch of one rule ``sending`` in one import; returns those REDCap accepted."""
    if not batch:
        return []
    rule = batch[0].row.rule
    f = rule.fields
    now = ctx.stamp(f.claimed_at)
    rows = []
    for p in batch:
        fresh = p.row.status in SETTLED
        values = {
            f.status: Status.SENDING,
            f.claimed_at: now,
            f.to: p.to if p.channel == SMS else "",
            f.attempts: str(claimed_attempts(p.row)),
            f.error_code: "",
            f.error_message: "",
        }
        if fresh:
            values[f.interrupted] = ""
        if f.ref:
            values[f.ref] = p.ref
        if f.channel and f.email_to:
            values[f.channel] = p.channel
            values[f.email_to] = p.to if p.channel == EMAIL else ""
        if f.alerted_at:
            values[f.alerted_at] = ""  # a new problem of this message is alerted anew
        rows.append(values_row(ctx, p.row, values))
    # overwrite: the blank error fields erase a previous attempt's reason.
    refused = write(ctx, rule, rows, overwrite=True)
    claimed = [p for p in batch if p.row.record_id not in refused]
    for p in claimed:
        logs.transition(
            ctx.log, p.row.record_id, p.row.status, Status.SENDING, to=p.to, rule=rule.name
        )
    return claimed


def send_batch(
    ctx: Context,
    claimed: Sequence[Prepared],
    pacers: Pacers,
    should_stop: Callable[[], bool],
) -> dict[str, int]:
    """Send each claimed record (one rule) and record every outcome in one import.

    Stops early (and un-claims the rest) on a stop request or when Twilio or Graph is
    unavailable.
    """
    if not claimed:
        return {}
    rule = claimed[0].row.rule
    counts: dict[str, int] = {}
    rows: list[dict[str, str]] = []
    pending = list(claimed)
    auth_error: ConfigError | None = None
    opted_out: list[str] = []
    while pending:
        p = pending.pop(0)
        row, rid = p.row, p.row.record_id
        try:
            with pacers.for_channel(p.channel).paced():
                done = _deliver(ctx, p)
        except PermanentError as exc:  # Twilio or Graph refused this one message
            if exc.code == UNSUBSCRIBED and ctx.layout.opt_out:
                rows.append(_opted_out_row(ctx, row, str(exc)))
                opted_out.append(rid)
                new = Status.SKIPPED
            else:
                rows.append(failed_row(ctx, row, exc.code, str(exc)))
                new = Status.FAILED
            logs.transition(
                ctx.log, rid, Status.SENDING, new, to=p.to, reason=exc.code, rule=rule.name
            )
            counts[str(new)] = counts.get(str(new), 0) + 1
        except (TwilioOutcomeUnknown, GraphOutcomeUnknown) as exc:
            ctx.log.warning("record=%s rule=%s outcome unknown (%s); will reconcile", rid,
                            rule.name, exc)  # fmt: skip
            rows.append(_outcome_unknown(ctx, p, str(exc)))
            counts["unknown"] = counts.get("unknown", 0) + 1
            pending = _release(ctx, pending, rows)
        except (TwilioUnavailable, GraphUnavailable) as exc:
            rows.append(retry_or_fail(ctx, row, str(exc)))
            counts["deferred"] = counts.get("deferred", 0) + 1
            pending = _release(ctx, pending, rows)
        except ConfigError as exc:
            rows.append(_unclaim(ctx, p))
            auth_error = exc
            pending = _release(ctx, pending, rows)
        else:
            rows.append(done)
            new = Status.SENT_EMAIL if p.channel == EMAIL else Status.SMS_SENT
            logs.transition(ctx.log, rid, Status.SENDING, new, to=p.to, rule=rule.name)
            counts["sent"] = counts.get("sent", 0) + 1
        if pending and should_stop():
            pending = _release(ctx, pending, rows)
    write(ctx, rule, rows)
    if opted_out:
        record_opt_out(ctx, opted_out)
    if auth_error is not None:
        raise auth_error
    return counts


def _opted_out_row(ctx: Context, row: RuleRow, reason: str) -> dict[str, str]:
    f = row.rule.fields
    return values_row(
        ctx,
        row,
        {f.status: Status.SKIPPED, f.error_code: UNSUBSCRIBED, f.error_message: reason[:1000]},
    )


def record_opt_out(ctx: Context, records: Sequence[str]) -> None:
    """Twilio refused with 21610 (the participant replied STOP, perhaps before the reply poller
    saw it): the record is opted out of every rule, from now on."""
    now = ctx.stamp(OPT_OUT_AT)
    rows = [ctx.layout.row(rid, {OPT_OUT: "1", OPT_OUT_AT: now}) for rid in records]
    for start in range(0, len(rows), CHUNK):
        ctx.redcap.import_rows(rows[start : start + CHUNK])


def _deliver(ctx: Context, p: Prepared) -> dict[str, str]:
    """Hand one message to Twilio or Graph; the row recording that it was accepted."""
    if p.channel == EMAIL:
        assert ctx.mail is not None
        ctx.mail.send(p.to, p.subject, p.body, p.html, message_id=p.mail_id)
        return mailed_row(ctx, p.row)
    assert ctx.sms is not None
    return sent_row(ctx, p.row, ctx.sms.send(p.to, p.body))


def mailed_row(ctx: Context, row: RuleRow, when: datetime | None = None) -> dict[str, str]:
    """``sent_email``: Graph accepted the mail (or Sent Items holds it, ``when`` it was sent).
    Graph reports no delivery, so this is final; the series count goes up as for an SMS."""
    f = row.rule.fields
    values = {
        f.status: Status.SENT_EMAIL,
        f.sent_at: ctx.stamp(f.sent_at, when or ctx.clock.now()),
        f.delivery_status: "",
    }
    if f.count:
        values[f.count] = str(row.sent + 1)
    return values_row(ctx, row, values)


def sent_row(
    ctx: Context, row: RuleRow, message: MessageInfo, adopted: bool = False
) -> dict[str, str]:
    """``sms_sent`` with the SID and the series count. The time is ours when we saw Twilio
    accept it, or Twilio's creation time for a message adopted by reconciliation."""
    f = row.rule.fields
    when = (message.date_created if adopted else None) or ctx.clock.now()
    values = {
        f.status: Status.SMS_SENT,
        f.sid: message.sid,
        f.sent_at: ctx.stamp(f.sent_at, when),
        f.delivery_status: message.status,
    }
    if f.count:
        values[f.count] = str(row.sent + 1)
    return values_row(ctx, row, values)


def failed_row(ctx: Context, row: RuleRow, code: str, message: str) -> dict[str, str]:
    f = row.rule.fields
    return values_row(
        ctx, row, {f.status: Status.FAILED, f.error_code: code, f.error_message: message[:1000]}
    )


def retry_or_fail(ctx: Context, row: RuleRow, reason: str) -> dict[str, str]:
    """Nothing was sent and it used an attempt: back to ``registered``, or ``failed`` once
    SMS_MAX_ATTEMPTS run out. ``row`` is as claimed (its attempts include this one)."""
    attempts = row.attempts if row.status == Status.SENDING else claimed_attempts(row)
    rid, name = row.record_id, row.rule.name
    if attempts >= ctx.settings.sms_max_attempts:
        logs.transition(
            ctx.log, rid, Status.SENDING, Status.FAILED, reason="max_attempts", rule=name
        )
        return failed_row(
            ctx, row, "max_attempts", f"not sent after {attempts} attempts; last: {reason}"
        )
    logs.transition(ctx.log, rid, Status.SENDING, Status.REGISTERED, reason="retry", rule=name)
    return values_row(ctx, row, {row.rule.fields.status: Status.REGISTERED})


def _outcome_unknown(ctx: Context, p: Prepared, reason: str) -> dict[str, str]:
    """Still ``sending``, marked so that reconciliation counts an attempt if nothing went out:
    Twilio's or Graph's trouble, unlike our own process stopping, uses up SMS_MAX_ATTEMPTS."""
    f = p.row.rule.fields
    who = "Graph" if p.channel == EMAIL else "Twilio"
    return values_row(
        ctx,
        p.row,
        {
            f.error_code: OUTCOME_UNKNOWN,
            f.error_message: f"{who}'s answer to the send was lost ({reason})"[:1000],
        },
    )


def _unclaim(ctx: Context, p: Prepared) -> dict[str, str]:
    """Give a claimed, unsent record back untouched: status and attempts as they were."""
    row, f = p.row, p.row.rule.fields
    logs.transition(
        ctx.log, row.record_id, Status.SENDING, row.status, reason="not_attempted",
        rule=row.rule.name,
    )  # fmt: skip
    return values_row(ctx, row, {f.status: row.status, f.attempts: str(row.attempts)})


def _release(ctx: Context, pending: list[Prepared], rows: list[dict[str, str]]) -> list[Prepared]:
    rows.extend(_unclaim(ctx, p) for p in pending)
    return []
