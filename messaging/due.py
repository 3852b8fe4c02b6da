"""Who is due: which records a rule newly applies to, and what the sender has to do this cycle.

**New** (:func:`newly_true`, the detector and ``admin baseline``): a rule's ``when`` holds and its
status is still blank. One export asks for every rule together (a ``filterLogic`` ORing the
rules' conditions), so an idle cycle costs one request whatever the number of rules. Only when
that export names records, and more than one rule could be the reason, does each candidate rule
get one more export (its own condition, restricted to those records) to say which rule holds.

**The sender's work** (:func:`work`): one export whose ``filterLogic`` ORs, per rule, records
``registered`` (waiting for their message: only those whose delay is nearly over or whose anchor
is near or past, so records waiting days ahead cost nothing), records ``sending`` (claims to
reconcile), and for a rule with repeats, records whose last message is settled and old enough for
the next. Times in the filter are our clock's, as text (REDCap compares Y-M-D date-times as
strings), with a 61-minute margin for daylight saving and minute-only fields; the exact decision
is made per row (:func:`due_at`, :func:`expires_at`). With staff alerts on (ALERT_EMAIL_TO), each
rule also ORs the records :mod:`messaging.alerts` reads (in an alert status and not yet alerted,
or alerted within its window); they sort as nothing to do, so they cost no request.

**When** a message is due, and when it is too late:

- ``delay_minutes`` counts **elapsed** time from when the rule's ``when`` was first seen true
  (``R_registered_at``); each repeat follows the previous message by ``every_minutes``, elapsed.
- An ``anchor`` counts in **wall-clock** time in TIMEZONE: ``offset_minutes = -1440`` before a
  visit at 10:00 is 10:00 the day before, on either side of a daylight-saving change (an elapsed
  24 hours would be 09:00 or 11:00 there). A date-only anchor counts from its midnight. A local
  time that does not exist (the spring-forward gap) moves forward by the gap (02:30 -> 03:30).
- A message due *before* its anchor expires at the anchor: a reminder for a visit that has begun
  is never sent. One due at or after its anchor does not expire.

The anchor is read from REDCap every cycle, never stored, so moving a visit moves its reminder.
Just before a due message goes, :func:`cancel_stopped` asks REDCap whose ``stop_when`` holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from common.field_types import WITH_SECONDS, WITHOUT_SECONDS
from common.pipeline import SETTLED, Status
from messaging.alerts import ALERT_STATUSES, window
from messaging.context import Context
from messaging.probes import Watch
from messaging.records import (
    RuleRow,
    any_of,
    export_events,
    export_fields,
    reason_row,
    ref,
    rows_for,
    write,
)
from messaging.replies import OPTED_OUT
from messaging.rules import Rule, Trigger
from messaging.thread import STAFF_FIELDS, STAFF_LOGIC

# A daylight-saving change moves local time by an hour; minute-only fields lose up to a minute.
MARGIN = timedelta(minutes=61)
_DATE = "%Y-%m-%d"


# -- new: the detector ---------------------------------------------------------------------------
def new_logic(ctx: Context, rule: Trigger) -> str:
    return f"({rule.when}) and {ref(ctx, rule, rule.fields.status)} = ''"


def newly_true(
    ctx: Context, rules: Sequence[Trigger], watch: Watch | None = None
) -> dict[str, list[str]]:
    """Per rule name, the records whose ``when`` holds and whose status is blank (rules of
    either kind: message rules and study ID rules share the one export).

    The export spans every event: a rule's own event may hold no data for a record yet (REDCap
    exports no row for it), while the row where ``when`` holds is elsewhere. The filter does
    all the choosing (the rule's status is event-qualified), so any row names a candidate.

    With a ``watch`` the export is this cycle's sweep or change probe (:mod:`messaging.probes`);
    on a probe, the rules that ask for it (``check_every_cycle``) are also asked about every
    record, in one more export.
    """
    key = ctx.layout.record_id_field
    classic = ctx.layout.event is None  # one row per record: its statuses come along
    fields = [key, *(rule.fields.status for rule in rules)] if classic else [key]
    logic = any_of([new_logic(ctx, rule) for rule in rules])
    if watch is None:
        rows = ctx.redcap.export(fields, logic)
    else:

        def export(since: datetime | None, records: Sequence[str] | None) -> list[dict[str, str]]:
            return ctx.redcap.export(fields, logic, records=records, changed_since=since)

        plan = watch.plan(ctx.settings, ctx.clock.now())
        rows = watch.fetch(ctx.redcap, plan, export, key)
        always = [rule for rule in rules if getattr(rule, "check_every_cycle", False)]
        if always and not plan.sweep:
            seen = {row[key] for row in rows}
            extra = ctx.redcap.export(fields, any_of([new_logic(ctx, rule) for rule in always]))
            rows += [row for row in extra if row[key] not in seen]
    candidates = list(dict.fromkeys(row[key] for row in rows))
    if not candidates:
        return {}
    if len(rules) == 1:
        return {rules[0].name: candidates}
    found: dict[str, list[str]] = {}
    for rule in rules:
        open_ = [r[key] for r in rows if not r.get(rule.fields.status)] if classic else candidates
        if not open_:
            continue  # the rule already holds a status for every candidate: nothing to ask
        confirmed = ctx.redcap.export([key], new_logic(ctx, rule), records=open_)
        if confirmed:
            found[rule.name] = list(dict.fromkeys(row[key] for row in confirmed))
    return found


# -- the sender's work ------------------------------------------------------------------------
@dataclass
class RuleWork:
    """One rule's rows this cycle, sorted by what is to be done with them."""

    rule: Rule
    sending: list[RuleRow] = field(default_factory=list)
    due: list[RuleRow] = field(default_factory=list)
    waiting: list[RuleRow] = field(default_factory=list)
    later: list[RuleRow] = field(default_factory=list)  # waiting past MARGIN: a sweep's horizon
    expired: list[RuleRow] = field(default_factory=list)


def work(
    ctx: Context, now: datetime, watch: Watch | None = None
) -> tuple[list[dict[str, str]], list[RuleWork]]:
    """The sender's one export (every rule, auto-answers included; the rows staff alerts read,
    see the module docstring) and each rule's rows in it, sorted.

    With a ``watch`` the export is this cycle's sweep or probe (:mod:`messaging.probes`): the
    rules' times are written for its horizon, the alerts' for ``now`` (their window shrinks as
    time passes; the digests remember it, :class:`messaging.alerts.Digests`). Without one it is
    a full export at ``now``.
    """
    rules = ctx.rules.every
    plan = watch.plan(ctx.settings, now) if watch is not None else None
    ahead = plan.horizon if plan is not None else now
    parts = [_rule_logic(ctx, rule, ahead) for rule in rules]
    if ctx.settings.alert_email_to:
        parts += [_alert_logic(ctx, rule, now) for rule in rules]
    fields, events = export_fields(ctx, rules), export_events(ctx, rules)
    if ctx.settings.conversation_log:  # staff messages to send (messaging.staff), in REDCAP_EVENT
        parts.append(STAFF_LOGIC)
        fields = [*fields, *STAFF_FIELDS]
        events = export_events(ctx, rules, home=True)
    logic = any_of(parts)

    def export(since: datetime | None, records: Sequence[str] | None) -> list[dict[str, str]]:
        return ctx.redcap.export(
            fields, logic, records=records, events=events, changed_since=since, instances=True
        )

    if watch is None or plan is None:
        raw = export(None, None)
    else:
        raw = watch.fetch(ctx.redcap, plan, export, ctx.layout.record_id_field)
    found = []
    for rule in rules:
        rows = rows_for(ctx, rule, raw)
        if rows:
            found.append(_sort(ctx, rule, rows, now))
    if watch is not None:
        _schedule(watch, found, now, ctx.settings.timezone)
    return raw, found


def _schedule(watch: Watch, found: Sequence[RuleWork], now: datetime, tz: ZoneInfo) -> None:
    """What the next probes must ask about again: waiting rows when they fall due, claims to
    reconcile at once. Rows due now are written by whatever this cycle does with them (sent,
    claimed, cancelled, expired: logged changes the next probe sees); the sender notes the ones
    it holds back itself (:meth:`Watch.note`)."""
    for item in found:
        name = item.rule.name
        for row in item.sending:
            watch.note(name, row.record_id, now)
        for row in [*item.waiting, *item.later]:
            due = due_at(row, tz)
            if due is not None:
                watch.note(name, row.record_id, due)


def _rule_logic(ctx: Context, rule: Rule, now: datetime) -> str:
    status = ref(ctx, rule, rule.fields.status)
    waiting = f"{status} = '{Status.REGISTERED}'"
    if not rule.anchor:
        # registered_at + delay <= now  <=>  registered_at <= now - delay (margin as above);
        # a record never registered is due at once, and a requeued series message follows its
        # last message instead.
        registered = ref(ctx, rule, rule.fields.registered_at)
        latest = _text(now - timedelta(minutes=rule.delay_minutes) + MARGIN, ctx)
        times = [f"{registered} = ''", f"{registered} <= '{latest}'"]
        if rule.repeat and rule.fields.count:
            times.append(f"{ref(ctx, rule, rule.fields.count)} > 0")
        waiting = f"{waiting} and ({' or '.join(times)})"
    if rule.anchor:
        # anchor + offset <= now  <=>  anchor <= now - offset (wall clock; margin for DST)
        latest = _text(now - timedelta(minutes=rule.offset_minutes) + MARGIN, ctx)
        anchor = ref(ctx, rule, rule.anchor)
        waiting = f"{waiting} and {anchor} <> '' and {anchor} <= '{latest}'"
    parts = [waiting, f"{status} = '{Status.SENDING}'"]
    if rule.repeat and rule.fields.count:
        settled = " or ".join(f"{status} = '{code}'" for code in sorted(SETTLED))
        last = _text(now - timedelta(minutes=rule.every_minutes) + MARGIN, ctx)
        parts.append(
            f"({settled}) and {ref(ctx, rule, rule.fields.count)} < {rule.messages} "
            f"and {ref(ctx, rule, rule.fields.sent_at)} <= '{last}'"
        )
    return any_of(parts)


def _alert_logic(ctx: Context, rule: Rule, now: datetime) -> str:
    """A problem not yet alerted, or a record alerted within the window (times as text)."""
    assert rule.fields.alerted_at is not None  # ALERT_EMAIL_TO gives every rule the field
    status, alerted = ref(ctx, rule, rule.fields.status), ref(ctx, rule, rule.fields.alerted_at)
    problems = [f"{status} = '{code}'" for code in sorted(ALERT_STATUSES)]
    if rule.replies is not None:  # a STOP is news for the coordinators too
        problems.append(f"{ref(ctx, rule, rule.fields.reply)} = '{OPTED_OUT}'")
    problem = " or ".join(problems)
    since = _text(now - window(ctx.settings), ctx)
    return f"(({problem}) and {alerted} = '') or {alerted} >= '{since}'"


def _sort(ctx: Context, rule: Rule, rows: Sequence[RuleRow], now: datetime) -> RuleWork:
    """Rows of one rule: to reconcile, due now, still waiting, or too late (expired)."""
    tz = ctx.settings.timezone
    found = RuleWork(rule)
    for row in rows:
        if row.status == Status.SENDING:
            found.sending.append(row)
            continue
        if not _wants_next(row):
            continue
        expiry = expires_at(row, tz)
        due = due_at(row, tz)
        # Instants, not wall clocks: Python compares times of one zone as wall-clock times.
        if expiry is not None and now.astimezone(UTC) >= expiry.astimezone(UTC):
            found.expired.append(row)
        elif due is not None and now.astimezone(UTC) + MARGIN < due.astimezone(UTC):
            found.later.append(row)  # not what a filter at now would have named
        elif due is None or now.astimezone(UTC) < due.astimezone(UTC):
            found.waiting.append(row)
        else:
            found.due.append(row)
    return found


def _wants_next(row: RuleRow) -> bool:
    """Waiting for a message: registered, or the last of a series settled and more to come."""
    if row.status == Status.REGISTERED:
        return True
    return row.status in SETTLED and row.rule.repeat > 0 and 0 < row.sent < row.rule.messages


def record_expired(ctx: Context, rows: Sequence[RuleRow]) -> None:
    """Anchored messages whose anchor passed before they could go: ``expired``, never sent."""
    if not rows:
        return
    rule = rows[0].rule
    why = (
        f"[{rule.anchor}] had passed before the message could be sent (the service was stopped, "
        "or quiet hours held it)"
    )
    write(ctx, rule, [reason_row(ctx, row, Status.EXPIRED, "expired", why) for row in rows])


def stop_holds(ctx: Context, rows: Sequence[RuleRow]) -> set[str]:
    """The records among one rule's ``rows`` whose ``stop_when`` holds now, as REDCap says (one
    export); none when the rule has no ``stop_when``."""
    if not rows or not rows[0].rule.stop_when:
        return set()
    rule = rows[0].rule
    key = ctx.layout.record_id_field
    event = ctx.layout.event_for(rule.event)
    return {
        r[key]
        for r in ctx.redcap.export(
            [key],
            rule.stop_when,
            records=[row.record_id for row in rows],
            events=[event] if event else None,
        )
    }


def cancel_stopped(ctx: Context, rows: Sequence[RuleRow]) -> list[RuleRow]:
    """Ask REDCap whose ``stop_when`` holds now (one export for the rule's due records); mark
    those ``cancelled`` and return the rest."""
    held = stop_holds(ctx, rows)
    if not held:
        return list(rows)
    rule = rows[0].rule
    why = "the rule's stop_when held when the message was due"
    cancelled = [row for row in rows if row.record_id in held]
    write(
        ctx, rule, [reason_row(ctx, row, Status.CANCELLED, "stop_when", why) for row in cancelled]
    )
    return [row for row in rows if row.record_id not in held]


def _text(moment: datetime, ctx: Context) -> str:
    return moment.astimezone(ctx.settings.timezone).strftime(WITH_SECONDS)


# -- when -----------------------------------------------------------------------------------------
def anchor_time(row: RuleRow, tz: ZoneInfo) -> datetime | None:
    """The rule's anchor field as an aware time in ``tz``; None when blank or not a date."""
    raw = row.get(row.rule.anchor).strip()
    for pattern in (WITH_SECONDS, WITHOUT_SECONDS, _DATE):
        try:
            naive = datetime.strptime(raw, pattern)
        except ValueError:
            continue
        return _local(naive, tz)
    return None


def due_at(row: RuleRow, tz: ZoneInfo) -> datetime | None:
    """When the record's next message of this rule may go; None if it cannot be known yet
    (a blank anchor). A record whose registration time is missing is due at once."""
    rule = row.rule
    if row.sent:
        last = row.time(rule.fields.sent_at, tz)
        return _after(last, rule.every_minutes) if last else None
    if rule.anchor:
        anchor = anchor_time(row, tz)
        if anchor is None:
            return None
        return _local(anchor.replace(tzinfo=None) + timedelta(minutes=rule.offset_minutes), tz)
    registered = row.time(rule.fields.registered_at, tz)
    if registered is None:
        return datetime.min.replace(tzinfo=UTC)
    return _after(registered, rule.delay_minutes)


def _after(moment: datetime, minutes: float) -> datetime:
    """``minutes`` of elapsed time after ``moment`` (Python adds wall-clock time to an aware
    datetime of the same zone; UTC makes it elapsed)."""
    return moment.astimezone(UTC) + timedelta(minutes=minutes)


def expires_at(row: RuleRow, tz: ZoneInfo) -> datetime | None:
    """The moment after which this message must never be sent, if there is one."""
    rule = row.rule
    if not rule.anchor or rule.offset_minutes >= 0:
        return None
    return anchor_time(row, tz)


def _local(naive: datetime, tz: ZoneInfo) -> datetime:
    """A wall-clock time in ``tz``; one in a spring-forward gap becomes the moment after it."""
    moment = naive.replace(tzinfo=tz)
    round_trip = moment.astimezone(UTC).astimezone(tz)
    if round_trip.replace(tzinfo=None) != naive:  # did not exist: skip forward over the gap
        return round_trip
    return moment
