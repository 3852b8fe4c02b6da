"""Reconciliation: settle ``sending`` records a crashed or interrupted sender left behind.

A record stays ``sending`` when the sender died between its claim and its result, or when a
create got no answer. Once the claim is older than ``SMS_CLAIM_TIMEOUT_SECONDS`` we ask Twilio for
messages to ``R_sms_to`` created since the claim that are this claim's message: for file rules
the body's fingerprint equals ``R_sms_ref`` (so a welcome and its reminder, same number and same
link, are never confused); for the built-in rule, the body carries the record's survey link:

- found: adopt its SID (``sms_sent``) - the participant got it, never send again;
- none: nothing went out - back to ``registered``. If the create got no answer (marked
  ``outcome_unknown``), that was Twilio's trouble and used an attempt (``failed`` once
  SMS_MAX_ATTEMPTS run out). Otherwise our own sender stopped while holding the claim: the
  attempt is given back and ``pipeline_sms_interrupted`` counts it (``failed``, reason
  ``interrupted``, once SMS_MAX_INTERRUPTED is reached: a record that crashes the sender);
- Twilio cannot be asked: leave it for the next cycle; after ``SMS_REVIEW_AFTER_HOURS``,
  ``needs_review`` for a person to decide.

An e-mail claim (``R_channel`` = ``email``) is matched on the id its ``x-redcap-relay-id``
header carries (``R_sms_ref``), looked for in the sender's Sent Items when
``GRAPH_CAN_READ_SENT=1``: found, ``sent_email``. A missing copy proves nothing (Exchange saves
it late under load, and a claim cannot tell whether its sendMail left), so it is looked for again
every cycle for EMAIL_SENT_ITEMS_GRACE_MINUTES after the claim went stale, then the claim is
``needs_review`` with the header id to search for. Without Sent Items a stale e-mail claim goes
to ``needs_review`` at once. An e-mail is never sent again on the strength of a missing copy;
only a claim that provably never reached Graph goes back: one the sender gave back itself (a
429, no connection, no token), or one without a mail id (the sender writes it just before the
sendMail, :mod:`messaging.send`), which counts as an interruption like an unsent SMS.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from common import logs
from common.clock import SKEW
from common.errors import GraphUnavailable, PermanentError, TwilioUnavailable
from common.graph_client import MESSAGE_ID_HEADER
from common.pipeline import Status
from common.twilio_client import MessageInfo
from messaging import conversation
from messaging.claims import CLAIM_SLOW, settle
from messaging.context import Context
from messaging.records import (
    OUTCOME_UNKNOWN,
    RuleRow,
    attempt_used,
    fingerprint,
    mailed_row,
    reason_row,
    sent_row,
    survey_links,
    values_row,
)
from messaging.rules import EMAIL, SMS
from messaging.thread import OUT, Entry


def reconcile(ctx: Context, rows: Sequence[RuleRow]) -> dict[str, int]:
    """Resolve stale ``sending`` rows of one rule; returns counts by outcome."""
    if not rows:
        return {}
    rule = rows[0].rule
    now = ctx.clock.now()
    tz = ctx.settings.timezone
    timeout = timedelta(seconds=ctx.settings.sms_claim_timeout_seconds)
    stale = []
    for row in rows:
        # Its age on the later reading of a daylight-saving hour (it never looks older than it
        # is), the search from the earlier one (it misses nothing).
        claimed = row.time(rule.fields.claimed_at, tz) or row.time(rule.fields.registered_at, tz)
        if claimed is None or now - claimed >= timeout:
            early = row.time(rule.fields.claimed_at, tz, earliest=True)
            stale.append((row, early or row.time(rule.fields.registered_at, tz, earliest=True)))
    if not stale:
        return {}
    counts: dict[str, int] = {}
    links: dict[str, str | PermanentError] = {}
    if not rule.fields.ref and rule.survey:  # the built-in rule matches on the survey link
        links = survey_links(ctx, rule, [row.record_id for row, _ in stale])
    out: list[dict[str, str]] = []
    logged: dict[str, list[Entry]] = {}  # messages found sent, for the conversation log
    for row, claimed in stale:
        if row.rule.fields.channel and row.get(row.rule.fields.channel) == EMAIL:
            outcome = _settle_mail(ctx, row, claimed, out, logged)
        else:
            outcome = _settle(ctx, row, claimed, links.get(row.record_id), out, logged)
        counts[outcome] = counts.get(outcome, 0) + 1
    conversation.log_sent(ctx, logged)  # before the outcomes (an entry is found by its id)
    left = settle(ctx, rule, [row for row, _ in stale], out)
    if left:
        counts["left_to_another_sender"] = len(left)
    return counts


def _is_mine(row: RuleRow, message: MessageInfo, link: str | PermanentError | None) -> bool:
    ref_field = row.rule.fields.ref
    if ref_field:
        return bool(row.get(ref_field)) and fingerprint(message.body) == row.get(ref_field)
    return isinstance(link, str) and bool(link) and link in message.body


def _settle(
    ctx: Context,
    row: RuleRow,
    since: datetime | None,
    link: str | PermanentError | None,
    out: list[dict[str, str]],
    logged: dict[str, list[Entry]],
) -> str:
    assert ctx.sms is not None
    f, name = row.rule.fields, row.rule.name
    rid, to = row.record_id, row.get(f.to)
    if since is None or not to:
        return _review(ctx, row, "the claim lacks its time or number", out)
    too_old = ctx.clock.now() - since > timedelta(hours=ctx.settings.sms_review_after_hours)
    if not f.ref and not (isinstance(link, str) and link):
        if too_old:
            return _review(ctx, row, "no survey link to match the message against", out)
        return "waiting"
    try:
        found = ctx.sms.messages_to(to, since - SKEW)
    except TwilioUnavailable:
        if too_old:
            return _review(ctx, row, "Twilio could not be asked whether it was sent", out)
        return "waiting"
    mine = [m for m in found if _is_mine(row, m, link)]
    if mine:
        message = min(mine, key=lambda m: m.date_created or since)
        out.append(sent_row(ctx, row, message))
        at = message.date_created or since
        entry = Entry(message.sid, OUT, at, SMS, name, Status.SMS_SENT, message.body)
        logged.setdefault(rid, []).append(entry)
        logs.transition(
            ctx.log, rid, Status.SENDING, Status.SMS_SENT, to=to, reason="reconciled", rule=name
        )
        return "adopted"
    return _not_sent(ctx, row, out)


def _settle_mail(
    ctx: Context,
    row: RuleRow,
    since: datetime | None,
    out: list[dict[str, str]],
    logged: dict[str, list[Entry]],
) -> str:
    f, name = row.rule.fields, row.rule.name
    rid, to, ref = row.record_id, row.get(f.email_to), row.get(f.ref)
    if f.ref and not ref and since is not None:
        return _not_sent(ctx, row, out)  # claimed, never launched: no sendMail was made
    if since is None or not to or not ref:
        return _review(ctx, row, "the claim lacks its time, address or mail id", out)
    if not ctx.settings.graph_can_read_sent or ctx.mail is None:
        return _review(
            ctx,
            row,
            "whether the e-mail went is unknown: Graph gives no message id and Sent Items "
            "cannot be read (GRAPH_CAN_READ_SENT=0)",
            out,
            fix="look in the sender mailbox's Sent Items for a mail to this record's address sent "
            f"around its claim time (its {MESSAGE_ID_HEADER} is {ref}); if it is there set the "
            "status to sent_email by hand, else run admin requeue",
        )
    try:
        found = ctx.mail.find_sent(ref, since - SKEW)
    except GraphUnavailable:
        if ctx.clock.now() - since > timedelta(hours=ctx.settings.sms_review_after_hours):
            return _review(ctx, row, "Sent Items could not be searched", out)
        return "waiting"
    if found is not None:
        out.append(mailed_row(ctx, row, found.sent_at))
        at = found.sent_at or since
        logged.setdefault(rid, []).append(Entry(ref, OUT, at, EMAIL, name, Status.SENT_EMAIL))
        logs.transition(
            ctx.log, rid, Status.SENDING, Status.SENT_EMAIL, to=to, reason="reconciled",
            rule=name,
        )  # fmt: skip
        return "adopted"
    # No copy (yet). Exchange may save it minutes late, and the claim cannot tell whether the
    # sendMail left: look again each cycle for the grace, then ask a person. Never resend.
    claimed = row.time(f.claimed_at, ctx.settings.timezone) or since  # its later reading
    grace = timedelta(
        seconds=ctx.settings.sms_claim_timeout_seconds,
        minutes=ctx.settings.email_sent_items_grace_minutes,
    )
    if ctx.clock.now() - claimed <= grace:
        return "waiting_copy"
    minutes = ctx.settings.email_sent_items_grace_minutes
    return _review(
        ctx,
        row,
        f"no copy in Sent Items {minutes:g} minutes after the claim went stale "
        "(EMAIL_SENT_ITEMS_GRACE_MINUTES); the mail may still have gone",
        out,
        fix="look in the sender mailbox's Sent Items for a mail to this record's address sent "
        f"around its claim time (its {MESSAGE_ID_HEADER} is {ref}); if it is there set the "
        "status to sent_email by hand, else run admin requeue",
    )


def _not_sent(ctx: Context, row: RuleRow, out: list[dict[str, str]]) -> str:
    """No SMS went out for this claim: the attempt is given back if our sender stopped, used if
    Twilio's answer was lost."""
    code = row.get(row.rule.fields.error_code)
    if code == CLAIM_SLOW:
        return _given_back(ctx, row, out)
    if code != OUTCOME_UNKNOWN:
        return _interrupted(ctx, row, out)
    out.append(attempt_used(ctx, row, "the answer to the send was lost"))
    return "failed" if out[-1][row.rule.fields.status] == Status.FAILED else "requeued"


def _given_back(ctx: Context, row: RuleRow, out: list[dict[str, str]]) -> str:
    """A claim given up as too slow (:mod:`messaging.claims`) proved unsent: back to
    ``registered`` with its attempt back; neither an attempt nor an interruption is counted."""
    f = row.rule.fields
    values = {f.status: Status.REGISTERED, f.attempts: str(max(row.attempts - 1, 0))}
    out.append(values_row(ctx, row, values))
    logs.transition(
        ctx.log, row.record_id, Status.SENDING, Status.REGISTERED, reason=CLAIM_SLOW,
        rule=row.rule.name,
    )  # fmt: skip
    return "requeued"


def _interrupted(ctx: Context, row: RuleRow, out: list[dict[str, str]]) -> str:
    """Our own sender stopped while it held the claim and nothing went out: give the attempt
    back, count the interruption, and give up only past SMS_MAX_INTERRUPTED (a record that
    crashes the sender every time must not crash it for ever)."""
    f, name = row.rule.fields, row.rule.name
    rid, times = row.record_id, row.interrupted + 1
    if times >= ctx.settings.sms_max_interrupted:
        why = (
            f"the sender stopped {times} times while sending to this record; look at its "
            "log around those sends, then run admin requeue"
        )
        also = {f.interrupted: str(times)}
        out.append(reason_row(ctx, row, Status.FAILED, "interrupted", why, also=also))
        return "failed_interrupted"
    values = {
        f.status: Status.REGISTERED,
        f.attempts: str(max(row.attempts - 1, 0)),
        f.interrupted: str(times),
    }
    out.append(values_row(ctx, row, values))
    logs.transition(
        ctx.log, rid, Status.SENDING, Status.REGISTERED, reason="interrupted", rule=name
    )
    return "interrupted"


def _review(
    ctx: Context,
    row: RuleRow,
    reason: str,
    out: list[dict[str, str]],
    fix: str = "check Twilio's message log, then set the status by hand or run admin requeue",
) -> str:
    why = f"send interrupted and not resolved: {reason}; {fix}"
    out.append(reason_row(ctx, row, Status.NEEDS_REVIEW, "unresolved_send", why))
    return "needs_review"
