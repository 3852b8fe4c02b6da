"""A rule's state in REDCap: how it is read (:class:`RuleRow`, exports in the rule's event), how it
is written (batched imports whose refusals are flagged on the rule's status), and the rows that
record what became of a message, shared by every service.

- **Reading.** ``[event][field]`` references for filter logic (:func:`ref`, :func:`any_of`), the
  fields a rule's work needs (:func:`export_fields`), its rows of an export (:func:`rows_for`,
  completed from REDCAP_EVENT where the rule lives elsewhere: :func:`with_home_values`), and each
  record's survey link (:func:`survey_links`).
- **Writing.** :func:`write` imports one rule's rows; :func:`values_row` makes one.
- **Outcomes.** A status with its reason (:func:`reason_row`: status, code, message cut to
  what we store, and the one log line), a message accepted (:func:`sent_row`,
  :func:`mailed_row`), an attempt used by a lost answer (:func:`attempt_used`: back to
  ``registered``, or ``failed`` once SMS_MAX_ATTEMPTS are spent, decided here only), and what
  ``R_sms_ref`` holds (:func:`fingerprint`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from common import logs
from common.errors import ConfigError, PermanentError, RedcapRejected, SurveyLinkError
from common.field_types import parse_time
from common.pipeline import SETTLED, Status
from common.twilio_client import MessageInfo
from common.writes import reason_values, write_rows
from messaging.checks import NOT_SURVEY_FIX, not_a_survey
from messaging.context import Context
from messaging.line_types import LINE_TYPES
from messaging.replies import OPT_OUT
from messaging.rules import Rule, Trigger, survey_setting

OUTCOME_UNKNOWN = "outcome_unknown"  # error code on a claim whose send got no answer


class _Count:
    """A counter of the row's rule (the RuleFields attribute naming it) as a whole number."""

    def __init__(self, attribute: str) -> None:
        self.attribute = attribute

    def __get__(self, row: RuleRow | None, owner: type) -> int:
        return 0 if row is None else row.count_of(getattr(row.rule.fields, self.attribute))


@dataclass(frozen=True)
class RuleRow:
    """A record's exported values (its id, the rule's fields, what the rule reads) for ``rule``."""

    rule: Rule
    record_id: str
    values: dict[str, str]

    def get(self, field: str | None) -> str:
        return self.values.get(field, "") if field else ""

    @property
    def status(self) -> str:
        return self.get(self.rule.fields.status)

    attempts = _Count("attempts")  # sends of the current message tried (SMS_MAX_ATTEMPTS)
    interrupted = _Count("interrupted")  # sends a stopped sender interrupted, proved unsent
    sent = _Count("count")  # messages this rule has sent the record (0 for the built-in rule)

    def count_of(self, field: str | None) -> int:
        """A counter field; blank (never counted) is 0. A ``number`` field may say ``2.0``."""
        raw = self.get(field).strip()
        try:
            return max(int(float(raw)), 0) if raw else 0
        except ValueError:
            return 0

    def time(self, field: str, tz: ZoneInfo, *, earliest: bool = False) -> datetime | None:
        """A time field as an instant (:func:`common.field_types.parse_time`: the later of the
        two a daylight-saving hour can mean, or with ``earliest`` the earlier)."""
        return parse_time(self.get(field), tz, earliest=earliest)


# -- reading ------------------------------------------------------------------------------------
def ref(ctx: Context, rule: Trigger, field: str) -> str:
    """``[field]`` in REDCap logic, qualified with the rule's event on longitudinal projects
    (so a row of another event never stands in for this rule's fields)."""
    event = ctx.layout.event_for(rule.event)
    return f"[{event}][{field}]" if event else f"[{field}]"


def any_of(conditions: Sequence[str]) -> str:
    """REDCap logic that holds when any of ``conditions`` does."""
    return " or ".join(f"({condition})" for condition in conditions)


def export_events(
    ctx: Context, rules: Iterable[Trigger], *, home: bool = False
) -> list[str] | None:
    """The events holding these rules' fields, for an export (and REDCAP_EVENT, where the
    record's opt-out lives, if ``home``); None on classic projects."""
    events = [ctx.layout.event_for(rule.event) for rule in rules]
    if home:
        events.append(ctx.layout.event)
    chosen = [event for event in dict.fromkeys(events) if event]
    return chosen or None


def export_fields(ctx: Context, rules: Iterable[Rule]) -> list[str]:
    """What the sender reads: the record id, the rules' fields and reads, the address fields."""
    chosen = list(rules)
    names = [ctx.layout.record_id_field]
    for rule in chosen:
        names += [*rule.fields.kinds(), *rule.read]
    names += address_fields(ctx, chosen)
    return list(dict.fromkeys(names))


def address_fields(ctx: Context, rules: Iterable[Rule]) -> list[str]:
    """The phone fields and (when a rule sends e-mail) the e-mail fields these rules read, the
    record's opt-out flag where the project has it, and with TWILIO_LOOKUP=1 the line types
    Twilio Lookup gave its numbers."""
    chosen = list(rules)
    names = list(ctx.layout.phone_fields) if any(r.sends_sms for r in chosen) else []
    if any(r.sends_email for r in chosen):
        names += ctx.layout.email_fields
    if ctx.layout.opt_out:
        names.append(OPT_OUT)
    if ctx.settings.twilio_lookup and any(r.sends_sms for r in chosen):
        names.append(LINE_TYPES)
    return names


def rows_for(ctx: Context, rule: Rule, raw: Iterable[Mapping[str, str]]) -> list[RuleRow]:
    """The exported rows that hold ``rule``'s fields (its event, on longitudinal projects; never
    a repeating instrument's instance)."""
    key, event = ctx.layout.record_id_field, ctx.layout.event_for(rule.event)
    return [
        RuleRow(rule, r[key], dict(r))
        for r in raw
        if (event is None or r.get("redcap_event_name") == event)
        and not r.get("redcap_repeat_instrument")  # a conversation log instance, not the rule's
    ]


def with_home_values(ctx: Context, rows: Sequence[RuleRow]) -> list[RuleRow]:
    """Rows of a rule in another event than REDCAP_EVENT, completed with the phone and the
    fields the rule reads from REDCAP_EVENT (where registration lives), where its own event
    leaves them blank: one export for the records in hand."""
    if not rows or ctx.layout.event_for(rows[0].rule.event) == ctx.layout.event:
        return list(rows)
    rule, key = rows[0].rule, ctx.layout.record_id_field
    wanted = [key, *address_fields(ctx, [rule]), *rule.read]
    home = {
        r[key]: r
        for r in ctx.redcap.export(
            list(dict.fromkeys(wanted)),
            records=[row.record_id for row in rows],
            events=[ctx.layout.event] if ctx.layout.event else None,
        )
    }
    completed = []
    for row in rows:
        values = dict(row.values)
        for name, value in home.get(row.record_id, {}).items():
            if value and not values.get(name):
                values[name] = value
        completed.append(RuleRow(rule, row.record_id, values))
    return completed


def survey_links(
    ctx: Context, rule: Rule, record_ids: Sequence[str]
) -> dict[str, str | PermanentError]:
    """Each record's survey link, or the error to record on it (REDCap refused, or not a URL).

    One ``surveyLink`` request per distinct record id. Not REDCap's ``participantList``: it
    answers for every record in the project (2.4 MB at 10,000 records, and no answer within the
    timeout at 20,000), so a busy cycle would cost what the project weighs, not what is due; a
    link is one URL of about 60 bytes (``docs/PERFORMANCE.md``). Raises ConfigError when REDCap
    says the instrument is not a survey (the setting is wrong for every record), and a transient
    error when REDCap cannot be reached, as every other call does.
    """
    instrument = rule.survey
    found: dict[str, str | PermanentError] = {}
    for rid in dict.fromkeys(record_ids):
        try:
            link = ctx.redcap.survey_link(rid, instrument, ctx.layout.event_for(rule.event))
        except RedcapRejected as exc:
            if refusal := not_a_survey(str(exc), instrument, survey_setting(rule)):
                # The setting is wrong, not the record: stop before anything is claimed.
                raise ConfigError(f"{refusal}; {NOT_SURVEY_FIX}") from None
            found[rid] = SurveyLinkError("survey_link", f"REDCap gave no survey link: {exc}")
            continue
        if is_url(link):
            found[rid] = link
        else:
            found[rid] = SurveyLinkError(
                "survey_link", "REDCap's answer to the survey link request was not a URL"
            )
    return found


def is_url(text: str) -> bool:
    """An http(s) URL with no whitespace: what a survey link must look like to be texted."""
    return text.startswith(("https://", "http://")) and not any(ch.isspace() for ch in text)


# -- writing ------------------------------------------------------------------------------------
def write(
    ctx: Context, rule: Trigger, rows: Sequence[dict[str, str]], *, overwrite: bool = False
) -> set[str]:
    """Batched import of one rule's rows; REDCap's refusals flag the rule's status."""
    return write_rows(ctx.redcap, ctx.layout, rows, rule.fields, overwrite=overwrite)


def values_row(ctx: Context, row: RuleRow, values: Mapping[str, str]) -> dict[str, str]:
    """An import row for ``row``'s record with ``values``, in its rule's event."""
    return ctx.layout.row(row.record_id, values, row.rule.event)


# -- outcomes -----------------------------------------------------------------------------------
def reason_row(
    ctx: Context,
    row: RuleRow,
    status: Status,
    code: str,
    message: str,
    *,
    was: str | None = None,
    to: str = "",
    also: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The row setting ``row``'s status with its reason (``code`` and ``message``), and the one
    log line of that change (from ``was``, by default the status the row was exported with;
    ``to`` masked). ``also``: more of the rule's fields to write with it."""
    f = row.rule.fields
    logs.transition(
        ctx.log, row.record_id, row.status if was is None else was, status, to=to, reason=code,
        rule=row.rule.name,
    )  # fmt: skip
    return values_row(ctx, row, {**reason_values(f, status, code, message), **(also or {})})


def claimed_attempts(row: RuleRow) -> int:
    """The attempts a claim of ``row`` records: one more, or 1 for the next message of a series
    (which starts its own count of attempts and interruptions)."""
    return 1 if row.status in SETTLED else row.attempts + 1


def attempt_used(ctx: Context, row: RuleRow, reason: str) -> dict[str, str]:
    """A claim whose send's answer was lost proved unsent: that try used an attempt (an outage
    spends none: it never reaches this). Back to ``registered``, or ``failed``
    (``max_attempts``) once SMS_MAX_ATTEMPTS are spent. ``row`` is the claim as exported."""
    attempts = row.attempts
    if attempts >= ctx.settings.sms_max_attempts:
        message = f"not sent after {attempts} attempts; last: {reason}"
        return reason_row(ctx, row, Status.FAILED, "max_attempts", message, was=Status.SENDING)
    name = row.rule.name
    logs.transition(
        ctx.log, row.record_id, Status.SENDING, Status.REGISTERED, reason="retry", rule=name
    )
    return values_row(ctx, row, {row.rule.fields.status: Status.REGISTERED})


def sent_row(ctx: Context, row: RuleRow, message: MessageInfo) -> dict[str, str]:
    """``sms_sent`` with the SID and the series count. The time is Twilio's creation time (the
    create's answer carries it; reconciliation reads it from the message found), so a reply's
    time, also Twilio's, is compared on one clock; ours only if Twilio gave none."""
    f = row.rule.fields
    when = message.date_created or ctx.clock.now()
    values = {
        f.status: Status.SMS_SENT,
        f.sid: message.sid,
        f.sent_at: ctx.stamp(f.sent_at, when),
        f.delivery_status: message.status,
    }
    if f.count:
        values[f.count] = str(row.sent + 1)
    return values_row(ctx, row, values)


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


def fingerprint(body: str) -> str:
    """What ``R_sms_ref`` holds for an SMS: enough of a hash to tell one rule's message from
    another's to the same number (a welcome and its reminder carry the same link), and never the
    text."""
    return hashlib.sha256(body.encode("utf-8")).hexdigest()[:20]
