"""Replies from Twilio's message log to REDCap, each exactly once, with no cursor of our own.

One cycle: list the inbound messages of the last REPLY_LOOKBACK_HOURS (one Twilio request while
they fit a page); if there are any, one REDCap export of the records that replied within the
window (a filter of one clause per rule, whatever the window holds), which shows most messages
to be recorded already; only if some are not, a second export of every record whose last
message of a reply-taking rule went to one of their numbers. Each new message is
**attributed** to the record and rule whose most recent message to that number was sent before
it (a family phone: the latest; a repeat: its newest message; a reply older than every message
it could answer, or from a number we never texted, is counted and ignored), and is **done** when
that record already holds it: its SID in a rule's ``R_reply_sid``, or a reply recorded at or
after it (``R_reply_at``, Twilio's time). Not done: it is recorded, oldest first, record by record:

1. an opt-out or opt-in word sets or clears ``relay_opted_out`` (one import of those rows first;
   a crash before step 2 leaves its SID in ``relay_opt_sid`` only, and the next cycle records the
   reply with the meaning the record already holds);
2. the rule's ``R_reply`` (meaning), ``R_reply_at``, ``R_reply_sid``, ``R_reply_text``, and when
   the rule has an auto-answer for that meaning, its companion ``R_answer_status = registered``
   in the same import, so the reply and its answer are recorded together or not at all. The
   sender sends the answer (messaging.answers). A record whose answer is being sent right now
   (``sending``) waits for the next cycle.

Restarts and a second poller therefore never record or answer a reply twice (the poller also
holds a lock per project). Bodies and numbers are PHI: REDCap holds them, logs never do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from common.contacts import normalize_phone
from common.field_types import WITH_SECONDS
from common.pipeline import Status
from common.twilio_client import MessageInfo
from messaging.context import Context
from messaging.records import RuleRow, any_of, export_events, ref, rows_for, write
from messaging.replies import KEYWORD_MEANINGS, OPT_OUT, OPT_OUT_AT, OPT_SID, OPTED_IN, OPTED_OUT
from messaging.rules import Rule

# A message counts as sent before a reply if Twilio's clock and ours disagree by less than this.
SKEW = timedelta(seconds=60)
# Replies recorded this long before the window began are looked at too (a daylight-saving hour,
# a minute-only field).
MARGIN = timedelta(minutes=61)
# The statuses of a rule whose message went out (a reply may answer it).
WENT = frozenset(
    {Status.SMS_SENT, Status.DELIVERED, Status.UNDELIVERED, Status.UNCONFIRMED, Status.FAILED}
)


@dataclass
class Candidate:
    """A record's message a reply may answer: its rule row, where it went, when."""

    row: RuleRow
    to: str
    sent_at: datetime


@dataclass
class RecordState:
    """One record's replies as REDCap holds them, updated as this cycle records more."""

    record_id: str
    opted_out: bool = False
    seen: set[str] = field(default_factory=set)  # inbound SIDs recorded on the record
    opt_sid: str = ""  # the message whose opt-out or opt-in the record holds (relay_opt_sid)
    # The newest reply REDCap held when the cycle began (Twilio's time). Not moved by this
    # cycle's replies: they come oldest first, and one in the same second as the one before it
    # is later, not already recorded.
    latest: datetime | None = None
    opt_row: dict[str, str] = field(default_factory=dict)
    rule_rows: dict[str, dict[str, str]] = field(default_factory=dict)  # rule -> values to write
    busy: bool = False  # an auto-answer is being sent: leave the record to the next cycle


def poll(ctx: Context, now: datetime) -> dict[str, int]:
    """One cycle (see the module docstring); counts by outcome."""
    assert ctx.sms is not None
    since = now - timedelta(hours=ctx.settings.reply_lookback_hours)
    inbound = ctx.sms.inbound_since(since)
    counts: dict[str, int] = {}
    if not inbound:
        return counts
    numbers: dict[str, list[MessageInfo]] = {}
    for message in inbound:
        number = _number(message.from_, ctx.settings.phone_region)
        if number is None:
            _count(counts, "ignored_odd_number")
        else:
            numbers.setdefault(number, []).append(message)
    if not numbers:
        return counts
    rules = ctx.rules.replying
    # 1. The records that replied within the window: what most messages turn out to be.
    candidates, states = _load(ctx, rules, _replied_since(ctx, rules, since - MARGIN))
    pending: dict[str, list[MessageInfo]] = {}
    for number, messages in numbers.items():
        for message in messages:
            if _known(message, candidates.get(number, []), states):
                _count(counts, "already_recorded")
            else:
                pending.setdefault(number, []).append(message)
    if not pending:
        return counts
    # 2. Only for what is new: every record whose message went to one of those numbers.
    candidates, more = _load(ctx, rules, _sent_to(ctx, rules, sorted(pending)))
    states.update(more)
    for number, messages in pending.items():
        for message in messages:
            _count(counts, _attribute(ctx, message, candidates.get(number, []), states))
    _write(ctx, rules, states)
    return counts


def _replied_since(ctx: Context, rules: Sequence[Rule], since: datetime) -> str:
    stamp = since.astimezone(ctx.settings.timezone).strftime(WITH_SECONDS)
    return any_of([f"{ref(ctx, rule, rule.fields.reply_at)} >= '{stamp}'" for rule in rules])


def _sent_to(ctx: Context, rules: Sequence[Rule], numbers: Sequence[str]) -> str:
    return any_of(
        [f"{ref(ctx, rule, rule.fields.to)} = '{number}'" for rule in rules for number in numbers]
    )


def _known(
    message: MessageInfo, candidates: Sequence[Candidate], states: Mapping[str, RecordState]
) -> bool:
    """Recorded already, as far as the records that replied within the window show: its SID
    is on one of them, or one it could answer holds a reply at or after it."""
    when = message.date_sent or message.date_created
    if any(message.sid in state.seen for state in states.values()):
        return True
    return when is not None and any(
        c.sent_at <= when + SKEW and _holds(states[c.row.record_id], message.sid, when)
        for c in candidates
    )


def _number(raw: str, region: str) -> str | None:
    """The sender's number as E.164, or None for a short code, a name or garbage."""
    try:
        return normalize_phone(raw, region) if raw.startswith("+") else None
    except ValueError:
        return None


def _load(
    ctx: Context, rules: Sequence[Rule], logic: str
) -> tuple[dict[str, list[Candidate]], dict[str, RecordState]]:
    """One export of the records ``logic`` selects: every reply rule's message, reply and
    auto-answer state, and the record's opt-out."""
    key = ctx.layout.record_id_field
    fields = [key, OPT_OUT, OPT_SID]
    companions = {r.name: c for r in rules if (c := ctx.rules.companion(r)) is not None}
    for rule in rules:
        f = rule.fields
        fields += [f.status, f.to, f.sent_at, f.reply, f.reply_at, f.reply_sid]
        if rule.name in companions:
            fields.append(companions[rule.name].fields.status)
    events = export_events(ctx, rules, home=True)  # REDCAP_EVENT holds the opt-out
    raw = ctx.redcap.export(list(dict.fromkeys(fields)), logic, events=events)
    states: dict[str, RecordState] = {}
    home = ctx.layout.event
    for values in raw:
        rid = values[key]
        state = states.setdefault(rid, RecordState(rid))
        if home is None or values.get("redcap_event_name") == home:
            state.opted_out = values.get(OPT_OUT, "").strip() == "1"
            # Not "done" by itself: its opt-out may have landed without its reply (a crash
            # between the two imports); the reply SID is what makes it done.
            state.opt_sid = values.get(OPT_SID, "")
    tz = ctx.settings.timezone
    candidates: dict[str, list[Candidate]] = {}
    for rule in rules:
        f = rule.fields
        companion = companions.get(rule.name)
        for row in rows_for(ctx, rule, raw):
            state = states[row.record_id]
            if row.get(f.reply_sid):
                state.seen.add(row.get(f.reply_sid))
            replied = row.time(f.reply_at, tz)
            if replied and (state.latest is None or replied > state.latest):
                state.latest = replied
            if companion and row.get(companion.fields.status) == Status.SENDING:
                state.busy = True
            sent_at = row.time(f.sent_at, tz)
            if row.status in WENT and row.get(f.to) and sent_at is not None:
                candidates.setdefault(row.get(f.to), []).append(
                    Candidate(row, row.get(f.to), sent_at)
                )
    return candidates, states


def _attribute(
    ctx: Context,
    message: MessageInfo,
    candidates: Sequence[Candidate],
    states: Mapping[str, RecordState],
) -> str:
    when = message.date_sent or message.date_created
    if when is None:
        return "ignored_no_time"
    before = [c for c in candidates if c.sent_at <= when + SKEW]
    if not before:
        if any(_holds(states[c.row.record_id], message.sid, when) for c in candidates):
            return "already_recorded"  # recorded before a newer message went to the number
        return "ignored_older_than_messages" if candidates else "ignored_unknown_number"
    chosen = max(before, key=lambda c: c.sent_at)
    state = states[chosen.row.record_id]
    if _holds(state, message.sid, when):
        return "already_recorded"
    if state.busy:
        return "waiting_answer_in_flight"
    _record(ctx, message, when, chosen.row, state)
    return "recorded"


def _holds(state: RecordState, sid: str, when: datetime) -> bool:
    """The record holds this reply: its SID, or a reply recorded at or after it."""
    return sid in state.seen or (state.latest is not None and when <= state.latest)


def _record(
    ctx: Context, message: MessageInfo, when: datetime, row: RuleRow, state: RecordState
) -> None:
    rule = row.rule
    assert rule.replies is not None
    if message.sid == state.opt_sid:
        # Its opt-out or opt-in is on the record already: read it as it was read then (a YES
        # that opted in must not become a confirmation now that the record is opted in).
        meaning = OPTED_OUT if state.opted_out else OPTED_IN
    else:
        meaning = rule.replies.interpret(message.body, opted_out=state.opted_out)
    f = rule.fields
    at = ctx.stamp(f.reply_at, when)
    if meaning in (OPTED_OUT, OPTED_IN) and message.sid != state.opt_sid:
        state.opted_out = meaning == OPTED_OUT
        state.opt_row = {
            OPT_OUT: "1" if state.opted_out else "",
            OPT_OUT_AT: ctx.stamp(OPT_OUT_AT, when) if state.opted_out else "",
            OPT_SID: message.sid,
        }
    text = message.body or (
        f"(MMS: {message.num_media} media, no text)" if message.num_media else ""
    )
    values = {f.reply: meaning, f.reply_at: at, f.reply_sid: message.sid, f.reply_text: text}
    answered = meaning in rule.answers and meaning not in KEYWORD_MEANINGS and not state.opted_out
    sender = ctx.rules.companion(rule)
    if answered and sender is not None:
        companion = sender.fields
        values.update(
            {
                companion.status: Status.REGISTERED,
                companion.registered_at: "",
                companion.attempts: "0",
                companion.interrupted: "",
                companion.error_code: "",
                companion.error_message: "",
            }
        )
    # A later reply of this cycle to the same rule supersedes an earlier one: an auto-answer
    # queued for the earlier one answers the latest text, or none if that takes no answer.
    # One queued by an earlier cycle and not sent yet is cancelled the same way.
    earlier = state.rule_rows.get(rule.name, {})
    if not answered and sender is not None:
        companion = sender.fields
        earlier = {k: v for k, v in earlier.items() if not k.startswith(companion.prefix + "_")}
        if row.get(companion.status) == Status.REGISTERED:
            values.update(
                {
                    companion.status: Status.CANCELLED,
                    companion.error_code: "superseded",
                    companion.error_message: "a later reply takes no auto-answer",
                }
            )
    state.rule_rows[rule.name] = {**earlier, **values}
    state.seen.add(message.sid)
    ctx.log.info(
        "record=%s rule=%s reply recorded: %s%s",
        row.record_id,
        rule.name,
        meaning,
        " (auto-answer queued)" if answered else "",
    )


def _write(ctx: Context, rules: Sequence[Rule], states: Mapping[str, RecordState]) -> None:
    """Opt-outs first, then each rule's replies with their auto-answers (module docstring)."""
    opt_rows = [ctx.layout.row(s.record_id, s.opt_row) for s in states.values() if s.opt_row]
    if opt_rows:
        ctx.redcap.import_rows(opt_rows, overwrite=True)
    for rule in rules:
        rows = [
            ctx.layout.row(s.record_id, s.rule_rows[rule.name], rule.event)
            for s in states.values()
            if rule.name in s.rule_rows
        ]
        if rows:
            # overwrite: a reply to an answer-less meaning blanks nothing else; a registered
            # answer's blank error fields erase the previous answer's.
            write(ctx, rule, rows, overwrite=True)


def _count(counts: dict[str, int], key: str) -> None:
    counts[key] = counts.get(key, 0) + 1
