"""Staff replies from REDCap: a coordinator adds a ``relay_message`` instance, types the text,
ticks *send* (``msg_send = 1``) and saves; the sender texts it to the participant once.

The sender's one export finds them (:data:`messaging.thread.STAFF_LOGIC`, in the rules' filter,
so a probe finds a new one with no request of its own), and each goes the way every message
goes:

1. **check**: the record's phone (PHONE_FIELDS), its opt-out, SMS_ALLOWED_NUMBERS, the text's
   length (1,600 characters at most; its segments are counted in the log). What cannot go is
   ``skipped`` (opted out, no usable phone, not allowed) or ``failed`` (no text, too long) with
   the reason in ``msg_error``. Quiet hours and a Twilio outage hold it, unwritten.
2. **claim**: the instance becomes ``sending`` with a claim token, the claim time (``msg_at``)
   and the number (``msg_to``), by the claim protocol of :mod:`messaging.claims` (read, write,
   settle CLAIM_SETTLE_SECONDS, read again: a second sender on any host never sends it too).
3. **send**: one Twilio create, paced with the rules' messages.
4. **record**: ``sms_sent`` with the SID and Twilio's time; the record's
   ``relay_conversation_waiting`` is blanked if the text waiting is older than the claim (the
   participant has been answered); a newer text keeps it.

A crash between 2 and 4 leaves the instance ``sending``: after SMS_CLAIM_TIMEOUT_SECONDS it is
looked up in Twilio (a message to that number since the claim, with the same text): found, it is
recorded; not found, it goes back to be sent. The text staff typed is never written by us, so it
is never changed. Staff messages are SMS only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from common import logs
from common.clock import SKEW
from common.contacts import pick_phone
from common.errors import PermanentError, TwilioOutcomeUnknown, TwilioUnavailable
from common.field_types import parse_time
from common.writes import MESSAGE_LIMIT
from messaging.claims import new_token
from messaging.context import Context
from messaging.conversation import instance_row
from messaging.outages import Outages
from messaging.pacing import Pacers
from messaging.replies import OPT_OUT
from messaging.rules import SMS
from messaging.segments import segments
from messaging.send import UNSUBSCRIBED
from messaging.templates import MAX_BODY
from messaging.thread import (
    AT,
    CHANNEL,
    CLAIM,
    DIRECTION,
    ERROR,
    OUT,
    RULE,
    SEND,
    SID,
    STAFF,
    STATUS,
    TEXT,
    TO,
    WAITING,
    instance,
)

SENDING, SENT, SKIPPED, FAILED = "sending", "sms_sent", "skipped", "failed"
SCHEDULE = "relay_message"  # the probes' schedule key of a claim to look at again


@dataclass(frozen=True)
class StaffMessage:
    """One instance staff asked to send, as the export read it (the text is PHI)."""

    record_id: str
    instance: int
    status: str
    text: str
    claim: str
    at: datetime | None  # the claim time while ``sending`` (a fall-back hour's later reading)
    to: str
    since: datetime | None = None  # the claim time's earlier reading: where a search starts


def pending(ctx: Context, raw: Sequence[Mapping[str, str]]) -> list[StaffMessage]:
    """The staff messages in an export holding :data:`STAFF_FIELDS`: to send, or being sent."""
    key, tz = ctx.layout.record_id_field, ctx.settings.timezone
    found = []
    for row in raw:
        number = instance(row, ctx.layout.event)  # the log lives in REDCAP_EVENT
        if number is None or row.get(SEND) != "1" or row.get(SID):
            continue
        if row.get(STATUS, "") not in ("", SENDING):
            continue
        found.append(
            StaffMessage(
                row[key],
                number,
                row.get(STATUS, ""),
                row.get(TEXT, ""),
                row.get(CLAIM, ""),
                parse_time(row.get(AT, ""), tz),
                row.get(TO, ""),
                parse_time(row.get(AT, ""), tz, earliest=True),
            )
        )
    return found


def send_staff(
    ctx: Context,
    messages: Sequence[StaffMessage],
    pacers: Pacers,
    outages: Outages,
    *,
    quiet: bool,
    dry_run: bool = False,
) -> Counter[str]:
    """Send each staff message once (the module docstring's steps); counts by outcome."""
    counts: Counter[str] = Counter()
    if not messages:
        return counts
    if ctx.sms is None:  # no rule texts, so the sender has no Twilio account to send them with
        if not dry_run:
            why = PermanentError("no_sms", "no rule of this study sends SMS: there is no Twilio")
            rows = [_reason(ctx, m, FAILED, why) for m in messages if m.status == ""]
            if rows:
                ctx.redcap.import_rows(rows, overwrite=True)
        return counts
    now = ctx.clock.now()
    timeout = timedelta(seconds=ctx.settings.sms_claim_timeout_seconds)
    claimed = [m for m in messages if m.status == SENDING]
    stale = [m for m in claimed if m.at is None or now - m.at >= timeout]
    for m in claimed:
        if m not in stale and m.at is not None:
            ctx.watch.note(SCHEDULE, m.record_id, m.at + timeout)
    if stale and not dry_run:
        counts.update(_reconcile(ctx, stale))
    new = [m for m in messages if m.status == ""]
    if not new:
        return counts
    if quiet or outages.holding(SMS):
        counts["staff_waiting"] += len(new)
        for m in new:
            ctx.watch.note(SCHEDULE, m.record_id, now)
        return counts
    homes = _homes(ctx, [m.record_id for m in new])
    ready: list[StaffMessage] = []
    problems: list[dict[str, str]] = []
    for m in new:
        checked = _check(ctx, m, homes.get(m.record_id, {}))
        if isinstance(checked, PermanentError):
            status = FAILED if checked.code in ("no_text", "too_long") else SKIPPED
            problems.append(_reason(ctx, m, status, checked))
            counts[f"staff_not_sent_{checked.code}"] += 1
        else:
            ready.append(checked)
    if dry_run:
        for m in ready:
            ctx.log.info(
                "dry-run: would send record=%s staff message (instance %d) to=%s",
                m.record_id, m.instance, logs.mask_contact(m.to),
            )  # fmt: skip
        counts["dry_run_would_send"] += len(ready)
        return counts
    if problems:
        ctx.redcap.import_rows(problems, overwrite=True)
    mine = _claim(ctx, ready, counts)
    for number, m in enumerate(mine):
        if ctx.stop.is_set() or outages.holding(SMS):  # stopping, or Twilio struggles: give back
            _give_back(ctx, mine[number:])
            counts["staff_deferred"] += len(mine) - number
            break
        counts.update(_send(ctx, m, homes.get(m.record_id, {}), pacers, outages))
    return counts


# -- 1. check ------------------------------------------------------------------------------------
def _homes(ctx: Context, records: Sequence[str]) -> dict[str, dict[str, str]]:
    """The records' phone fields, opt-out and waiting mark (REDCAP_EVENT), one export."""
    key = ctx.layout.record_id_field
    fields = [key, *ctx.layout.phone_fields, WAITING, *([OPT_OUT] if ctx.layout.opt_out else [])]
    raw = ctx.redcap.export(fields, records=records, events=ctx.layout.events)
    return {row[key]: row for row in raw}


def _check(ctx: Context, m: StaffMessage, home: Mapping[str, str]) -> StaffMessage | PermanentError:
    settings = ctx.settings
    if not m.text.strip():
        return PermanentError("no_text", "the message has no text; type it and tick send again")
    if len(m.text) > MAX_BODY:
        return PermanentError("too_long", f"message over {MAX_BODY} characters")
    if ctx.layout.opt_out and home.get(OPT_OUT, "").strip() == "1":
        return PermanentError("opted_out", "the participant opted out (replied STOP)")
    try:
        _, to = pick_phone(home, ctx.layout.phone_fields, settings.phone_region)
    except PermanentError as exc:
        return exc
    if settings.sms_allowed_numbers is not None and to not in settings.sms_allowed_numbers:
        return PermanentError("not_allowed", "the number is not in SMS_ALLOWED_NUMBERS")
    return replace(m, to=to)


def _reason(ctx: Context, m: StaffMessage, status: str, exc: PermanentError) -> dict[str, str]:
    ctx.log.info(
        "record=%s staff message (instance %d) %s: %s", m.record_id, m.instance, status, exc.code
    )
    why = f"{exc.code}: {exc}"[:MESSAGE_LIMIT]
    return instance_row(ctx, m.record_id, m.instance, {STATUS: status, ERROR: why, CLAIM: ""})


# -- 2. claim (messaging.claims' protocol, on the instance) --------------------------------------
def _claim(ctx: Context, ready: Sequence[StaffMessage], counts: Counter[str]) -> list[StaffMessage]:
    if not ready:
        return []
    clock, settle = ctx.clock, ctx.settings.claim_settle_seconds
    started = clock.monotonic()
    current = _read(ctx, ready)
    free = [m for m in ready if _still_to_send(current.get((m.record_id, m.instance), {}))]
    counts["staff_claimed_elsewhere"] += len(ready) - len(free)
    if not free:
        return []
    token, now = new_token(), ctx.clock.now()
    rows = [
        instance_row(
            ctx,
            m.record_id,
            m.instance,
            {
                STATUS: SENDING,
                CLAIM: token,
                AT: ctx.stamp(AT, now),
                TO: m.to,
                ERROR: "",
                DIRECTION: OUT,
                RULE: STAFF,
                CHANNEL: SMS,
            },
        )
        for m in free
    ]
    ctx.redcap.import_rows(rows, overwrite=True)
    if clock.monotonic() - started > settle:
        counts["staff_claim_slow"] += len(free)  # reconciled after the claim timeout
        return []
    clock.sleep(settle)
    after = _read(ctx, free)
    mine = []
    for m in free:
        values = after.get((m.record_id, m.instance), {})
        if values.get(STATUS) == SENDING and values.get(CLAIM) == token:
            mine.append(m)
        else:
            counts["staff_claimed_elsewhere"] += 1
    return mine


def _still_to_send(values: Mapping[str, str]) -> bool:
    """Nobody moved it since the export: still ticked, unclaimed, unsent."""
    return values.get(SEND) == "1" and not values.get(STATUS) and not values.get(SID)


def _read(ctx: Context, messages: Sequence[StaffMessage]) -> dict[tuple[str, int], dict[str, str]]:
    key = ctx.layout.record_id_field
    records = sorted({m.record_id for m in messages})
    fields = [key, SEND, STATUS, CLAIM, SID]
    raw = ctx.redcap.export(fields, records=records, events=ctx.layout.events, instances=True)
    found = {}
    for row in raw:
        if (number := instance(row, ctx.layout.event)) is not None:
            found[(row[key], number)] = row
    return found


# -- 3. send, 4. record --------------------------------------------------------------------------
def _send(
    ctx: Context, m: StaffMessage, home: Mapping[str, str], pacers: Pacers, outages: Outages
) -> Counter[str]:
    assert ctx.sms is not None
    counts: Counter[str] = Counter()
    claimed_at = ctx.clock.now()
    try:
        with pacers.for_channel(SMS).paced():
            message = ctx.sms.send(m.to, m.text)
    except PermanentError as exc:  # Twilio refused this one (21610: they replied STOP)
        status = SKIPPED if exc.code == UNSUBSCRIBED else FAILED
        ctx.redcap.import_rows([_reason(ctx, m, status, exc)], overwrite=True)
        counts[f"staff_{status}"] += 1
        return counts
    except TwilioOutcomeUnknown as exc:
        ctx.log.warning(
            "record=%s staff message (instance %d) outcome unknown (%s); will reconcile",
            m.record_id, m.instance, exc,
        )  # fmt: skip
        outages.failed(SMS, exc.retry_after)
        counts["staff_unknown"] += 1
        return counts
    except TwilioUnavailable as exc:
        outages.failed(SMS, exc.retry_after)
        _give_back(ctx, [m], f"waiting: Twilio unavailable ({exc})")
        counts["staff_deferred"] += 1
        return counts
    outages.worked(SMS)
    _record(ctx, m, message.sid, message.date_created or claimed_at, home, claimed_at)
    ctx.log.info(
        "record=%s staff message (instance %d) sent to=%s (%d segment(s))",
        m.record_id, m.instance, logs.mask_contact(m.to), segments(m.text).count,
    )  # fmt: skip
    counts["staff_sent"] += 1
    return counts


def _record(
    ctx: Context,
    m: StaffMessage,
    sid: str,
    at: datetime,
    home: Mapping[str, str],
    claimed_at: datetime,
) -> None:
    """``sms_sent`` on the instance; the record's waiting mark blanked if what waited is older
    than the claim (the participant has been answered)."""
    rows = [
        instance_row(
            ctx, m.record_id, m.instance, {STATUS: SENT, SID: sid, AT: ctx.stamp(AT, at), ERROR: ""}
        )
    ]
    waited = parse_time(home.get(WAITING, ""), ctx.settings.timezone)
    if waited is not None and waited <= claimed_at:
        rows.append(ctx.layout.row(m.record_id, {WAITING: ""}))
    ctx.redcap.import_rows(rows, overwrite=True)


def _reconcile(ctx: Context, stale: Sequence[StaffMessage]) -> Counter[str]:
    """Claims older than SMS_CLAIM_TIMEOUT_SECONDS: found in Twilio, recorded; else back to be
    sent (nothing went out)."""
    assert ctx.sms is not None
    counts: Counter[str] = Counter()
    homes = _homes(ctx, [m.record_id for m in stale])
    for m in stale:
        if not m.to or m.at is None:
            _give_back(ctx, [m])
            counts["staff_given_back"] += 1
            continue
        try:
            found = ctx.sms.messages_to(m.to, (m.since or m.at) - SKEW)
        except TwilioUnavailable:
            counts["staff_waiting"] += 1
            continue
        mine = [x for x in found if x.body == m.text]  # the text typed, never changed
        if mine:
            claimed = m.at
            first = min(mine, key=lambda x: x.date_created or claimed)
            at = first.date_created or claimed
            _record(ctx, m, first.sid, at, homes.get(m.record_id, {}), claimed)
            counts["staff_adopted"] += 1
        else:
            _give_back(ctx, [m])
            counts["staff_given_back"] += 1
    return counts


def _give_back(ctx: Context, messages: Sequence[StaffMessage], why: str = "") -> None:
    """Unclaimed, to be sent again (nothing went out), with ``why`` in ``msg_error``."""
    back = {STATUS: "", CLAIM: "", ERROR: why[:MESSAGE_LIMIT]}
    rows = [instance_row(ctx, m.record_id, m.instance, back) for m in messages]
    ctx.redcap.import_rows(rows, overwrite=True)
