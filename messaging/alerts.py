"""Staff alert digests: one e-mail to ALERT_EMAIL_TO listing the records that newly need a
person (:data:`ALERT_STATUSES`), at most one per ALERT_MIN_INTERVAL_MINUTES. All state is each
rule's ``R_alerted_at`` in REDCap; the sender runs this at the end of a cycle, after the
participants' messages.

- **No extra cost.** The sender's one work export (:mod:`messaging.due`) also selects, per rule,
  the records in an alert status with ``R_alerted_at`` blank (new problems) and those alerted
  within :func:`window` (the interval, or the claim timeout if longer, plus a margin). An idle
  cycle stays one REDCap request.
- **The interval.** A record alerted less than ALERT_MIN_INTERVAL_MINUTES ago means the last
  digest is recent: nothing goes. (A claim of a new send and ``admin requeue`` blank
  ``R_alerted_at``, so a record that fails again is alerted anew; if every recently alerted
  record was requeued, the interval starts over.)
- **Claim, then send.** One import per rule sets ``R_alerted_at = T`` on the listed records, then
  one mail goes with the id ``digest-<project>-<T>`` in its ``x-redcap-relay-id`` header. Nothing
  sent (Graph unavailable, refusing, or misconfigured): the claims are blanked and the next cycle
  retries. Graph's answer lost: the claims stay.
- **A crash between claim and send.** With GRAPH_CAN_READ_SENT=1, a sender that sees records
  alerted at a T it has not verified, older than SMS_CLAIM_TIMEOUT_SECONDS, looks that id up in
  Sent Items (once per process) and, if it is absent, sends the same digest again, same id:
  exactly once, provided a sender runs within the window. Without Sent Items a digest is at most
  once: a crash or a lost answer there loses it (the records still show in REDCap and in
  ``admin status``). A restart never re-alerts: alerted records keep their T.

The digest names record ids, rules, statuses and reasons in plain words (mapped from the error
code; any other text is scrubbed of phone numbers, addresses and links), never message text;
the log names only the digest id and counts. A failing digest is one warning line, never an
error of the sender's cycle (a banned REDCap IP still stops the service).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from common.clock import SKEW
from common.errors import (
    ConfigError,
    GraphOutcomeUnknown,
    GraphUnavailable,
    PermanentError,
    RedcapBanned,
    RelayError,
    TransientError,
)
from common.field_types import parse_time
from common.pipeline import Status
from common.settings import Settings
from common.twilio_client import ERROR_TEXT, describe_error
from messaging.context import Context
from messaging.records import RuleRow, rows_for, values_row, write
from messaging.replies import OPTED_OUT
from messaging.rules import Rule

# What a coordinator must look at. Issue 9 adds opt-outs here.
ALERT_STATUSES = frozenset({Status.FAILED, Status.SKIPPED, Status.UNDELIVERED, Status.NEEDS_REVIEW})
MAX_LINES = 500  # records listed in one digest; the rest are counted
MARGIN = timedelta(minutes=61)  # as messaging.due: a daylight-saving hour, a truncated minute

# Our reason codes (and Graph's) in plain words; Twilio's numbers go through describe_error.
REASONS = {
    "no_phone": "no phone number on the record",
    "invalid_phone": "the phone number is not valid",
    "not_textable": "the phone number cannot take an SMS (a landline, toll-free...)",
    "no_email": "no e-mail address on the record",
    "invalid_email": "the e-mail address is not valid",
    "no_contact": "no usable phone number or e-mail address",
    "not_allowed": "the number or address is not allowed (SMS_ALLOWED_NUMBERS, "
    "EMAIL_ALLOWED_ADDRESSES)",
    "too_long": "the message is too long",
    "survey_link": "REDCap gave no survey link",
    "max_attempts": "not sent after SMS_MAX_ATTEMPTS attempts (Twilio or Graph unavailable)",
    "interrupted": "the sender stopped repeatedly while sending to this record",
    "outcome_unknown": "the answer to the send was lost",
    "unresolved_send": "whether the message went out could not be established; check by hand",
    "no_sid": "marked sent, but no Twilio message id is recorded",
    "20404": "Twilio does not know the recorded message id",
    "redcap_rejected": "REDCap refused to store the record's update",
    "ErrorInvalidRecipients": "Microsoft refused the recipient address",
}
_SCRUB = re.compile(
    r"[a-z][a-z0-9+.-]*://\S*"  # a link
    r"|\bwww\.\S+"
    r"|[\w.%+-]+@[\w-]+(?:\.[\w-]+)+"  # an address
    r"|\b[\w-]+(?:\.[\w-]+)+/\S*"  # a link without its scheme
    r"|\+?\d[\d\s().-]{5,}\d",  # a phone number (seven digits or more)
    re.IGNORECASE,
)


def scrub(text: str, limit: int = 200) -> str:
    """``text`` on one line, without anything that looks like a phone number, address or link."""
    return _SCRUB.sub("[removed]", " ".join(text.split()))[:limit]


def window(settings: Settings) -> timedelta:
    """How far back the work export looks at ``R_alerted_at``: long enough for the interval and
    for a crashed digest to be looked up after the claim timeout."""
    interval = timedelta(minutes=settings.alert_min_interval_minutes)
    return max(interval, timedelta(seconds=settings.sms_claim_timeout_seconds)) + MARGIN


def needs_alert(row: RuleRow) -> bool:
    """A problem status, or a STOP recorded as the reply to the rule's message."""
    return row.status in ALERT_STATUSES or opted_out(row)


def opted_out(row: RuleRow) -> bool:
    return row.rule.replies is not None and row.get(row.rule.fields.reply) == OPTED_OUT


def reason(row: RuleRow) -> str:
    """Why ``row`` needs a person, in plain words, from its error code and message."""
    f = row.rule.fields
    if opted_out(row) and row.status not in ALERT_STATUSES:
        return "the participant replied STOP: no rule messages them until they send START"
    code, message = row.get(f.error_code).strip(), scrub(row.get(f.error_message))
    if code in REASONS:
        return REASONS[code]
    if code.isdigit():
        known = int(code) in ERROR_TEXT
        return describe_error(code) if known or not message else f"Twilio error {code}: {message}"
    return message or scrub(code) or "no reason recorded"


def digest_id(ctx: Context, when: datetime) -> str:
    local = when.astimezone(ctx.settings.timezone)
    return f"digest-{ctx.layout.project_id}-{local:%Y%m%d%H%M%S}"


def digest(ctx: Context, rows: Sequence[RuleRow]) -> tuple[str, str]:
    """The subject and plain text of a digest of ``rows``."""
    pid = ctx.layout.project_id
    many = f"{len(rows)} records need" if len(rows) != 1 else "1 record needs"
    subject = f"redcap-relay: {many} attention (project {pid})"
    lines = [f"{many} attention in REDCap project {pid} (new since the last digest)."]
    listed = 0
    for rule in ctx.rules.every:
        mine = [row for row in rows if row.rule.name == rule.name]
        if mine and listed < MAX_LINES:
            lines += ["", f"Rule {rule.name} ({len(mine)}):"]
        for row in mine:
            if listed < MAX_LINES:
                what = row.status if row.status in ALERT_STATUSES else OPTED_OUT
                lines.append(f"  record {row.record_id}: {what}: {reason(row)}")
            listed += 1
    if listed > MAX_LINES:
        lines += ["", f"and {listed - MAX_LINES} more; see admin status."]
    lines += [
        "",
        "Fix what the reason says, then `admin requeue` sends again; `admin status` lists every "
        "record. Each problem is listed once.",
    ]
    return subject, "\n".join(lines) + "\n"


class Digests:
    """The sender's per-process memory (not pipeline state): digests it sent or found in Sent
    Items, by their time T, so each is looked up at most once per process; and, for the change
    probes between sweeps (:mod:`messaging.probes`), when each record seen was last alerted and
    which new problems wait for the interval (``held``: the sender asks about them again)."""

    def __init__(self) -> None:
        self.verified: set[datetime] = set()
        self.alerted: dict[tuple[str, str], datetime] = {}  # (rule, record) -> alerted, rounded up
        self.held: set[tuple[str, str]] = set()

    def run(
        self,
        ctx: Context,
        raw: Sequence[Mapping[str, str]],
        now: datetime,
        *,
        complete: bool = True,
    ) -> dict[str, int]:
        """Send the digest due this cycle, if any (see the module docstring); counts for the
        cycle line. ``complete``: ``raw`` is a full export (a sweep), not a probe's changed
        records. Never raises but for a banned REDCap IP."""
        if ctx.mail is None or not ctx.settings.alert_email_to:
            return {}
        rows = [row for rule in ctx.rules.every for row in rows_for(ctx, rule, raw)]
        try:
            return self._run(ctx, rows, now, complete)
        except RedcapBanned:
            raise
        except RelayError as exc:
            ctx.log.warning(
                "alert digest not sent (%s); the sender carries on", scrub(str(exc), 400)
            )
            return {"alert_failed": 1}

    def _run(
        self, ctx: Context, rows: Sequence[RuleRow], now: datetime, complete: bool
    ) -> dict[str, int]:
        tz = ctx.settings.timezone
        alerted: dict[datetime, list[RuleRow]] = {}
        fresh: list[RuleRow] = []
        interval = timedelta(minutes=ctx.settings.alert_min_interval_minutes)
        if complete:
            self.alerted.clear()
            self.held.clear()
        for row in rows:
            key = (row.rule.name, row.record_id)
            self.held.discard(key)
            text = row.get(_field(row.rule))
            when = parse_time(text, tz)
            if when is not None:
                alerted.setdefault(when, []).append(row)
                self.alerted[key] = when + _rounding(text)
            else:
                self.alerted.pop(key, None)
                if not text.strip() and needs_alert(row):
                    fresh.append(row)
        # Records alerted within the interval, seen now or at an earlier cycle (a probe sees only
        # the records that changed).
        recent = any(when > now - interval for when in self.alerted.values())
        if complete:
            self.verified &= alerted.keys()  # what left the window needs no memory
            if ctx.settings.graph_can_read_sent and self._recover(ctx, alerted, now):
                self.held |= {(row.rule.name, row.record_id) for row in fresh}
                return {"alert_resent": 1}  # one digest a cycle: the new problems wait
        if recent or not fresh:
            self.held |= {(row.rule.name, row.record_id) for row in fresh}
            return {}
        when, claimed = _claim(ctx, fresh, now)
        if claimed and _send(ctx, claimed, when, unclaim=True):
            self.verified.add(when)
        return {"alerted": len(claimed)}

    def _recover(
        self, ctx: Context, alerted: Mapping[datetime, list[RuleRow]], now: datetime
    ) -> bool:
        """Look up each unverified digest older than the claim timeout and send it again (same
        id) if Sent Items lacks it; whether one was sent again."""
        assert ctx.mail is not None
        timeout = timedelta(seconds=ctx.settings.sms_claim_timeout_seconds)
        for when, rows in sorted(alerted.items()):
            latest = when + max(_rounding(r.get(_field(r.rule))) for r in rows)
            if when in self.verified or now - latest < timeout:
                continue
            mail_id = digest_id(ctx, when)
            # Searched from the earlier reading of a daylight-saving hour: it misses nothing.
            text = rows[0].get(_field(rows[0].rule))
            since = parse_time(text, ctx.settings.timezone, earliest=True) or when
            if ctx.mail.find_sent(mail_id, since - SKEW) is not None:
                self.verified.add(when)
                continue
            ctx.log.warning("alert digest %s is not in Sent Items: sending it again", mail_id)
            if _send(ctx, rows, when, unclaim=False):
                self.verified.add(when)
            return True
        return False


def _claim(ctx: Context, fresh: Sequence[RuleRow], now: datetime) -> tuple[datetime, list[RuleRow]]:
    """Set ``R_alerted_at = T`` on ``fresh``, one import per rule; T and the rows REDCap took.
    A REDCap failure part-way keeps what was claimed (and lists it)."""
    when = now.replace(microsecond=0)
    if any(_rounding(ctx.stamp(_field(row.rule), when)) for row in fresh):
        when = when.replace(second=0)  # one T for every rule, whatever its field stores
    claimed: list[RuleRow] = []
    for rule in ctx.rules.every:
        mine = [row for row in fresh if row.rule.name == rule.name]
        if not mine:
            continue
        name = _field(rule)
        try:
            refused = write(
                ctx, rule, [values_row(ctx, row, {name: ctx.stamp(name, when)}) for row in mine]
            )
        except TransientError as exc:
            ctx.log.warning("alert claims of rule %s not written (%s)", rule.name, exc)
            break
        claimed += [row for row in mine if row.record_id not in refused]
    return when, claimed


def _send(ctx: Context, rows: Sequence[RuleRow], when: datetime, *, unclaim: bool) -> bool:
    """Mail the digest of ``rows`` claimed at ``when``; whether Graph took it. Nothing sent:
    the claims are blanked again if ``unclaim`` and a RelayError says why."""
    assert ctx.mail is not None
    mail_id = digest_id(ctx, when)
    subject, text = digest(ctx, rows)
    try:
        ctx.mail.send(ctx.settings.alert_email_to, subject, text, message_id=mail_id)
    except GraphOutcomeUnknown as exc:
        ctx.log.warning("alert digest %s: %s; its records stay alerted", mail_id, exc)
        return False
    except (GraphUnavailable, ConfigError, PermanentError) as exc:
        if unclaim:
            for rule in ctx.rules.every:
                name = _field(rule)
                blank = [values_row(ctx, r, {name: ""}) for r in rows if r.rule.name == rule.name]
                if blank:
                    write(ctx, rule, blank, overwrite=True)
        raise RelayError(f"{mail_id}: {exc}; the next cycle tries again") from None
    ctx.log.info("alert digest %s sent records=%d", mail_id, len(rows))
    return True


def _field(rule: Rule) -> str:
    name = rule.fields.alerted_at
    assert name is not None, "ALERT_EMAIL_TO gives every rule its alerted_at field"
    return name


def _rounding(text: str) -> timedelta:
    """How much later than it says a stored time may be: a minute if it has no seconds."""
    return timedelta(0) if text.strip().count(":") >= 2 else timedelta(minutes=1)
