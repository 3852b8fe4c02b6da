"""The send path, for every rule alike: :func:`send_due` sends one rule's due rows, each once.

The sender service and ``admin force`` both call it; the order of its stages is what makes
"never twice, never lost" (``docs/how-it-works.md``), so they are private and run here only,
chunk by chunk (:data:`CHUNK` records, so a crash leaves at most a chunk ``sending`` and a
backlog never fires all its survey-link requests at once):

1. **prepare**: pick the channel and its address (the rule's ``channel`` order; an allowlist or
   an opt-out stops there), fetch the survey link, render the text. What cannot be sent is
   written ``skipped`` (nothing usable to send to) or ``failed``, with its reason; with
   TWILIO_LOOKUP=1, the line types Twilio Lookup gave new numbers (:mod:`messaging.line_types`).
   Nothing else is written.
2. **claim**: one import sets the rule's ``R_status`` to ``sending``, the claim time, the number
   (``R_sms_to``) or address (``R_email_to``) and ``R_channel``, attempts + 1, a claim token
   (``R_sms_claim``) and (file rules) ``R_sms_ref``, what reconciliation matches on: the SMS
   body's fingerprint, or the id the mail carries in its ``x-redcap-relay-id`` header (written
   only when the mail is launched, one at a time, just before its sendMail). The claim is read
   before and after, CLAIM_SETTLE_SECONDS apart, so that a sender on another host can never
   send the same message (:mod:`messaging.claims`).
3. **send**: one Twilio create or Graph sendMail per record, paced per channel
   (:mod:`messaging.pacing`).
4. **record**: one import with each outcome (``sms_sent`` + SID, or ``sent_email``, with
   ``R_sms_count`` + 1; ``failed``; ``skipped`` for a participant Twilio says unsubscribed; or
   given back as it was). A send whose outcome is unknown stays ``sending`` for
   :mod:`messaging.reconcile`.

When Twilio or Graph cannot take a message (429, 5xx or no connection before it took it), the
record is given back as it was, with no attempt spent, and its channel is held back
(:mod:`messaging.outages`); the other channel goes on. Only after SEND_GIVE_UP_HOURS of outage
is a due record ``failed`` (``unavailable``).

A crash before 2 leaves the record as it was; between 2 and 4 it is ``sending`` and
reconciliation looks the message up in Twilio (or Sent Items) before anything is sent again. A
record whose send a stopped sender interrupted before goes alone and last, so a record that
crashes the sender every time takes no one down with it.
"""

from __future__ import annotations

import html
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from common import logs
from common.contacts import NOT_TEXTABLE, allowed, normalize_phone, pick_email, pick_phone
from common.errors import (
    ConfigError,
    GraphOutcomeUnknown,
    GraphUnavailable,
    PermanentError,
    SurveyLinkError,
    TwilioOutcomeUnknown,
    TwilioUnavailable,
)
from common.pipeline import SETTLED, Status
from common.redcap_client import chunked
from common.writes import MESSAGE_LIMIT
from messaging import conversation
from messaging.claims import CLAIM_SLOW, take
from messaging.context import Context
from messaging.due import due_at
from messaging.line_types import LineTypes
from messaging.outages import GAVE_UP, Outages, waited
from messaging.pacing import Pacers
from messaging.records import (
    OUTCOME_UNKNOWN,
    RuleRow,
    claimed_attempts,
    fingerprint,
    mailed_row,
    reason_row,
    sent_row,
    survey_links,
    values_row,
    with_home_values,
    write,
)
from messaging.replies import OPT_OUT, OPT_OUT_AT, OPTED_OUT
from messaging.rules import EMAIL, SMS
from messaging.templates import MAX_BODY, MAX_EMAIL
from messaging.thread import OUT, Entry

CHUNK = 10  # records prepared, claimed and sent together
UNSUBSCRIBED = "21610"  # Twilio: the recipient has replied STOP to this number
# Why a record is not messaged at all: ``skipped`` (nothing to send to), not ``failed``.
SKIP_CODES = frozenset(
    {
        "no_phone",
        "invalid_phone",
        NOT_TEXTABLE,  # a landline, toll-free... number: SMS would never arrive
        "not_allowed",
        "no_email",
        "invalid_email",
        "no_contact",
        OPTED_OUT,
    }
)


@dataclass
class Sent:
    """What :func:`send_due` did: counts by outcome (``sent``, ``failed``, ``not_sent_<code>``,
    ``deferred``, ``waiting_unavailable``, ``unknown``...), and whether Twilio or Graph is
    struggling (unavailable, or an answer lost)."""

    counts: Counter[str] = field(default_factory=Counter)
    trouble: bool = False


def pacers_for(ctx: Context) -> Pacers:
    """The send pacers of one process (a sender keeps its own across cycles)."""
    s = ctx.settings
    return Pacers(s.sms_max_per_second, s.email_max_per_minute, ctx.clock)


def outages_for(ctx: Context) -> Outages:
    """The outage memory of one process (a sender keeps its own across cycles)."""
    return Outages(ctx.clock, ctx.settings.poll_interval_seconds)


def send_due(
    ctx: Context,
    rows: Sequence[RuleRow],
    pacers: Pacers,
    should_stop: Callable[[], bool],
    *,
    outages: Outages | None = None,
    dry_run: bool = False,
) -> Sent:
    """Send each of one rule's due ``rows`` once (the module docstring's stages), or with
    ``dry_run`` log what would go (masked) and write nothing. Stops early, un-claiming what it
    has not sent, when ``should_stop()``; leaves the rows of a channel ``outages`` holds back
    where they are; raises ConfigError (after recording what was sent) when Twilio or Graph
    refuses our credentials."""
    result = Sent()
    if dry_run:
        _dry_run(ctx, rows, result)
        return result
    outages = outages or outages_for(ctx)
    for group in _batches(rows):
        if should_stop():
            return result
        if all(outages.holding(channel) for channel in group[0].rule.channels):
            # Every channel of the rule is held back: not even a survey link is asked for.
            result.counts["waiting_unavailable"] += len(group)
            continue
        ready, problems = _prepare(ctx, group)
        _record_problems(ctx, problems, result)
        for part in _claim_groups(ready):
            if should_stop():
                return result
            if outages.holding(part[0].channel):
                result.counts["waiting_unavailable"] += len(part)
                continue
            _send_batch(ctx, _claim(ctx, part, result), pacers, outages, should_stop, result)
    return result


# -- 1. prepare ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Prepared:
    """One message ready to claim: its channel, address and rendered text (PHI: never logged).
    ``mail_id`` is the id an e-mail carries in its header, new for every claim."""

    row: RuleRow
    to: str
    body: str
    link: str
    channel: str = SMS
    subject: str = ""
    html: str | None = None
    mail_id: str = ""

    @property
    def ref(self) -> str:
        return self.mail_id if self.channel == EMAIL else fingerprint(self.body)


def _batches(due: Sequence[RuleRow]) -> list[Sequence[RuleRow]]:
    """Groups of CHUNK records, each prepared, claimed and sent before the next is prepared; a
    record a stopped sender interrupted before goes alone and last."""
    suspects = [row for row in due if row.interrupted]
    others = [row for row in due if not row.interrupted]
    return [*chunked(others, CHUNK), *([row] for row in suspects)]


def _prepare(
    ctx: Context, rows: Sequence[RuleRow], *, dry_run: bool = False
) -> tuple[list[_Prepared], list[tuple[RuleRow, PermanentError]]]:
    """Channels, addresses, links and texts for rows of one rule; those that cannot be messaged
    come back with their error. What Twilio Lookup said of new numbers (TWILIO_LOOKUP=1) is
    written on their records, the only write (none on a ``dry_run``, which asks it nothing)."""
    problems: list[tuple[RuleRow, PermanentError]] = []
    contacts: dict[str, tuple[str, str]] = {}
    rows = with_home_values(ctx, rows)
    lookup = ctx.sms.line_type if ctx.sms is not None and ctx.settings.twilio_lookup else None
    line_types = LineTypes(None if dry_run else lookup, ctx.settings.sms_allowed_numbers)
    for row in rows:
        contact = _choose_contact(ctx, row, line_types)
        if isinstance(contact, PermanentError):
            problems.append((row, contact))
        else:
            contacts[row.record_id] = contact
    line_types.save(ctx.redcap, ctx.layout)
    rule = rows[0].rule if rows else None
    links: Mapping[str, str | PermanentError] = {}
    if rule is not None and rule.survey and contacts:
        links = survey_links(ctx, rule, list(contacts))
    ready: list[_Prepared] = []
    for row in rows:
        if row.record_id not in contacts:
            continue
        link = links.get(row.record_id, "") if row.rule.survey else ""
        if isinstance(link, PermanentError) or (row.rule.survey and not link):
            problems.append((row, link or SurveyLinkError("survey_link", "no survey link")))
            continue
        channel, to = contacts[row.record_id]
        prepared = _render(ctx, row, channel, to, str(link))
        if isinstance(prepared, PermanentError):
            problems.append((row, prepared))
        else:
            ready.append(prepared)
    return ready, problems


def _choose_contact(
    ctx: Context, row: RuleRow, line_types: LineTypes
) -> tuple[str, str] | PermanentError:
    """(channel, address) for ``row``: its rule's channels in order, the first with a usable
    address. An address an allowlist (SMS_ALLOWED_NUMBERS, EMAIL_ALLOWED_ADDRESSES) leaves out
    stops there (``not_allowed``): a rehearsal's safety net never falls through to the next
    channel."""
    settings = ctx.settings
    if ctx.layout.opt_out and row.get(OPT_OUT).strip() == "1":
        return PermanentError(OPTED_OUT, "the participant opted out (replied STOP); START lifts it")
    if row.rule.to_field:  # an auto-answer goes back to the number the reply came from
        try:
            to = normalize_phone(row.get(row.rule.to_field), settings.phone_region)
        except ValueError as exc:
            return PermanentError("invalid_phone", f"the reply's number is not usable ({exc})")
        if settings.sms_allowed_numbers is not None and to not in settings.sms_allowed_numbers:
            return PermanentError("not_allowed", "the number is not in SMS_ALLOWED_NUMBERS")
        return SMS, to
    problems: list[PermanentError] = []
    for channel in row.rule.channels:
        try:
            if channel == SMS:
                refuse = line_types.refusal(row.record_id, row.values)
                _, to = pick_phone(
                    row.values, ctx.layout.phone_fields, settings.phone_region, refuse
                )
                ok = settings.sms_allowed_numbers is None or to in settings.sms_allowed_numbers
                setting = "SMS_ALLOWED_NUMBERS"
            else:
                _, to = pick_email(row.values, ctx.layout.email_fields)
                ok = allowed(to, settings.email_allowed_addresses)
                setting = "EMAIL_ALLOWED_ADDRESSES"
        except PermanentError as exc:
            problems.append(exc)
            continue
        if not ok:
            what = "number" if channel == SMS else "address"
            return PermanentError("not_allowed", f"the {what} is not in {setting}")
        return channel, to
    if len(problems) == 1:
        return problems[0]
    invalid = [p for p in problems if p.code.startswith("invalid_")]
    return PermanentError(
        invalid[0].code if invalid else "no_contact", "; ".join(str(p) for p in problems)
    )


def _render(
    ctx: Context, row: RuleRow, channel: str, to: str, link: str
) -> _Prepared | PermanentError:
    rule, tz = row.rule, ctx.settings.timezone
    templates = rule.templates
    if rule.answer_of:
        chosen = rule.answers.get(row.get(rule.reply_field))
        if chosen is None:
            return PermanentError("no_answer", "the rule has no auto-answer for this reply")
        templates = chosen
    if channel == SMS:
        locale, template = templates.choose(row.values)
        body = template.render(link, row.record_id, row.values, locale, tz)
        if len(body) > MAX_BODY:
            return PermanentError("too_long", "message over 1600 characters")
        return _Prepared(row, to, body, link)
    assert rule.mail is not None
    locale, text = rule.mail.text.choose(row.values)
    body = text.render(link, row.record_id, row.values, locale, tz)
    # The subject's languages are the text's (checked when the rules are read).
    subject = rule.mail.subject.templates[locale].render(
        None, row.record_id, row.values, locale, tz
    )
    markup = None
    if rule.mail.html is not None:
        markup = rule.mail.html.templates[locale].render(
            link, row.record_id, row.values, locale, tz, escape=html.escape
        )
    if len(body) > MAX_EMAIL or len(markup or "") > MAX_EMAIL:
        return PermanentError("too_long", f"e-mail over {MAX_EMAIL} characters")
    return _Prepared(
        row,
        to,
        body,
        link,
        channel=EMAIL,
        subject=" ".join(subject.split()),  # a value with a line break stays on one line
        html=markup,
        mail_id=uuid.uuid4().hex,
    )


def _record_problems(
    ctx: Context, problems: Sequence[tuple[RuleRow, PermanentError]], result: Sent
) -> None:
    """Write ``skipped`` (nothing usable to send to, or not allowed) or ``failed``, with the
    reason (the rows are of one rule)."""
    if not problems:
        return
    rows = []
    for row, exc in problems:
        status = Status.SKIPPED if exc.code in SKIP_CODES else Status.FAILED
        rows.append(reason_row(ctx, row, status, exc.code, str(exc)))
        result.counts[f"not_sent_{exc.code}"] += 1
    write(ctx, problems[0][0].rule, rows)


def _dry_run(ctx: Context, rows: Sequence[RuleRow], result: Sent) -> None:
    ready, problems = _prepare(ctx, rows, dry_run=True)
    for p in ready:
        ctx.log.info(
            "dry-run: would send record=%s rule=%s %s to=%s (%d characters)",
            p.row.record_id,
            p.row.rule.name,
            p.channel,
            logs.mask_contact(p.to),
            len(p.body),
        )
    for row, exc in problems:
        ctx.log.info(
            "dry-run: would mark record=%s rule=%s not sent: %s",
            row.record_id,
            row.rule.name,
            exc.code,
        )
    result.counts["dry_run_would_send"] += len(ready)
    if problems:
        result.counts["dry_run_would_skip"] += len(problems)


# -- 2. claim -----------------------------------------------------------------------------------
def _claim_groups(ready: Sequence[_Prepared]) -> list[list[_Prepared]]:
    """A prepared chunk is claimed per channel: its SMS together, its e-mails together. An
    e-mail's claim holds no mail id until the mail is launched (:func:`_send_batch`)."""
    sms = [p for p in ready if p.channel == SMS]
    mail = [p for p in ready if p.channel == EMAIL]
    return [group for group in (sms, mail) if group]


def _claim(ctx: Context, batch: Sequence[_Prepared], result: Sent) -> list[_Prepared]:
    """Mark a batch of one rule ``sending`` in one import, by the claim protocol that keeps a
    second sender (any host) from sending the same (:mod:`messaging.claims`); returns the
    records whose claim is ours once it settled."""
    if not batch:
        return []
    rule = batch[0].row.rule
    f = rule.fields
    now = ctx.stamp(f.claimed_at)
    claims = []
    for p in batch:
        values = {
            f.status: Status.SENDING,
            f.claimed_at: now,
            f.to: p.to if p.channel == SMS else "",
            f.attempts: str(claimed_attempts(p.row)),
            f.error_code: "",
            f.error_message: "",
        }
        if p.row.status in SETTLED:
            values[f.interrupted] = ""  # the next message of a series counts afresh
        if f.ref:
            # An e-mail's id is written only when it is launched, just before its sendMail: a
            # claim without one provably never reached Graph (reconciliation gives it back).
            values[f.ref] = "" if p.channel == EMAIL else p.ref
        if f.channel and f.email_to:
            values[f.channel] = p.channel
            values[f.email_to] = p.to if p.channel == EMAIL else ""
        if f.alerted_at:
            values[f.alerted_at] = ""  # a new problem of this message is alerted anew
        claims.append((p.row, values))
    # overwrite: the blank error fields erase a previous attempt's reason.
    held = take(ctx, rule, claims)
    if held.taken:
        result.counts["claimed_elsewhere"] += len(held.taken)
        ctx.log.warning(
            "rule=%s %d record(s) moved or claimed by another sender meanwhile (records %s); "
            "left to it", rule.name, len(held.taken), ",".join(held.taken[:10]),
        )  # fmt: skip
    if held.slow:
        result.counts[CLAIM_SLOW] += len(batch) - len(held.taken) - len(held.refused)
    mine = set(held.mine)
    claimed = [p for p in batch if p.row.record_id in mine]
    for p in claimed:
        logs.transition(
            ctx.log, p.row.record_id, p.row.status, Status.SENDING, to=p.to, rule=rule.name
        )
    return claimed


# -- 3. send, 4. record -------------------------------------------------------------------------
def _send_batch(
    ctx: Context,
    claimed: Sequence[_Prepared],
    pacers: Pacers,
    outages: Outages,
    should_stop: Callable[[], bool],
    result: Sent,
) -> None:
    """Send each claimed record (one rule, one channel) and record every outcome in one import.
    Stops early (and un-claims the rest) on a stop request or when Twilio or Graph is
    struggling.

    E-mails are launched one by one: just before each sendMail one import writes its mail id
    (``R_sms_ref``) together with the outcomes so far. A missing Sent Items copy proves nothing,
    so a launched mail a crash leaves is never resent (:mod:`messaging.reconcile`); launched
    one at a time, a crash leaves at most one mail for a person to check, never a chunk."""
    if not claimed:
        return
    rule = claimed[0].row.rule
    rows: list[dict[str, str]] = []
    logged: dict[str, list[Entry]] = {}  # the messages sent, for the conversation log
    pending = list(claimed)
    auth_error: ConfigError | None = None
    opted_out: list[str] = []
    trouble = False
    while pending:
        p = pending.pop(0)
        try:
            with pacers.for_channel(p.channel).paced():
                if p.channel == EMAIL and not _launched(ctx, p, rows, logged):
                    continue
                done, entry = _deliver(ctx, p)
        except PermanentError as exc:  # Twilio or Graph refused this one message
            if exc.code == UNSUBSCRIBED and ctx.layout.opt_out:
                status = Status.SKIPPED
                opted_out.append(p.row.record_id)
            else:
                status = Status.FAILED
            why = str(exc)
            rows.append(reason_row(ctx, p.row, status, exc.code, why, was=Status.SENDING, to=p.to))
            result.counts[str(status)] += 1
        except (TwilioOutcomeUnknown, GraphOutcomeUnknown) as exc:
            ctx.log.warning(
                "record=%s rule=%s outcome unknown (%s); will reconcile",
                p.row.record_id, rule.name, exc,
            )  # fmt: skip
            rows.append(_outcome_unknown(ctx, p, str(exc)))
            result.counts["unknown"] += 1
            outages.failed(p.channel, exc.retry_after)
            trouble = True
        except (TwilioUnavailable, GraphUnavailable) as exc:
            since = outages.failed(p.channel, exc.retry_after)
            row, code = _wait_out(ctx, p, since, str(exc))
            rows.append(row)
            result.counts[code] += 1
            trouble = True
        except ConfigError as exc:
            rows.append(_unclaim(ctx, p))
            auth_error = exc
        else:
            outages.worked(p.channel)
            rows.append(done)
            logged.setdefault(p.row.record_id, []).append(entry)
            new = Status.SENT_EMAIL if p.channel == EMAIL else Status.SMS_SENT
            logs.transition(ctx.log, p.row.record_id, Status.SENDING, new, to=p.to, rule=rule.name)
            result.counts["sent"] += 1
        if pending and (trouble or auth_error is not None or should_stop()):
            rows.extend(_unclaim(ctx, rest) for rest in pending)
            pending = []
    result.trouble = result.trouble or trouble
    conversation.log_sent(ctx, logged)
    write(ctx, rule, rows)
    if opted_out:
        _record_opt_out(ctx, opted_out)
    if auth_error is not None:
        raise auth_error


def _launched(
    ctx: Context, p: _Prepared, rows: list[dict[str, str]], logged: dict[str, list[Entry]]
) -> bool:
    """Write ``p``'s mail id with the outcomes in ``rows`` (emptied; their log entries in
    ``logged`` first), in one import, before its sendMail; False if REDCap refused it (the
    claim, without an id, is given back later)."""
    f = p.row.rule.fields
    if not f.ref:
        return True
    conversation.log_sent(ctx, logged)
    launch = values_row(ctx, p.row, {f.ref: p.mail_id})
    refused = write(ctx, p.row.rule, [*rows, launch])
    rows.clear()
    if p.row.record_id in refused:
        ctx.log.warning(
            "record=%s rule=%s REDCap refused the mail's id; not sent, the claim is reconciled",
            p.row.record_id, p.row.rule.name,
        )  # fmt: skip
        return False
    return True


def _deliver(ctx: Context, p: _Prepared) -> tuple[dict[str, str], Entry]:
    """Hand one message to Twilio or Graph; the row recording that it was accepted, and its
    entry for the conversation log."""
    rule = p.row.rule.name
    if p.channel == EMAIL:
        assert ctx.mail is not None
        ctx.mail.send(p.to, p.subject, p.body, p.html, message_id=p.mail_id)
        text = f"{p.subject}\n\n{p.body}"
        entry = Entry(p.mail_id, OUT, ctx.clock.now(), EMAIL, rule, Status.SENT_EMAIL, text)
        return mailed_row(ctx, p.row), entry
    assert ctx.sms is not None
    message = ctx.sms.send(p.to, p.body)
    at = message.date_created or ctx.clock.now()
    return sent_row(ctx, p.row, message), Entry(
        message.sid, OUT, at, SMS, rule, Status.SMS_SENT, p.body
    )


def _outcome_unknown(ctx: Context, p: _Prepared, reason: str) -> dict[str, str]:
    """Still ``sending``, marked so that reconciliation counts an attempt if nothing went out:
    Twilio's or Graph's trouble, unlike our own process stopping, uses up SMS_MAX_ATTEMPTS."""
    f = p.row.rule.fields
    who = "Graph" if p.channel == EMAIL else "Twilio"
    message = f"{who}'s answer to the send was lost ({reason})"[:MESSAGE_LIMIT]
    return values_row(ctx, p.row, {f.error_code: OUTCOME_UNKNOWN, f.error_message: message})


def _wait_out(
    ctx: Context, p: _Prepared, since: datetime, reason: str
) -> tuple[dict[str, str], str]:
    """Twilio or Graph could not take the message, so nothing went out: the record goes back as
    it was (no attempt spent), its reason on it for a coordinator to see; or, once it has
    waited SEND_GIVE_UP_HOURS through the outage, ``failed`` (``unavailable``). Returns the row
    and the count it adds to (``deferred`` or ``gave_up``)."""
    row, f = p.row, p.row.rule.fields
    who = "Graph" if p.channel == EMAIL else "Twilio"
    hours = ctx.settings.send_give_up_hours
    tz = ctx.settings.timezone
    if waited(since, due_at(row, tz), ctx.clock.now()) >= timedelta(hours=hours):
        why = f"{who} was unavailable for {hours:g} hours (SEND_GIVE_UP_HOURS); last: {reason}"
        also = {f.attempts: str(row.attempts)}
        failed = reason_row(ctx, row, Status.FAILED, GAVE_UP, why, was=Status.SENDING, also=also)
        return failed, "gave_up"
    started = since.astimezone(tz).strftime("%Y-%m-%d %H:%M")
    logs.transition(
        ctx.log, row.record_id, Status.SENDING, row.status, reason=GAVE_UP, rule=row.rule.name
    )
    why = f"waiting: {who} unavailable since {started} ({reason}); no attempt spent"
    values = {
        f.status: row.status,
        f.attempts: str(row.attempts),
        f.error_code: GAVE_UP,
        f.error_message: why[:MESSAGE_LIMIT],
    }
    return values_row(ctx, row, values), "deferred"


def _unclaim(ctx: Context, p: _Prepared) -> dict[str, str]:
    """Give a claimed, unsent record back untouched: status and attempts as they were."""
    row, f = p.row, p.row.rule.fields
    logs.transition(
        ctx.log, row.record_id, Status.SENDING, row.status, reason="not_attempted",
        rule=row.rule.name,
    )  # fmt: skip
    return values_row(ctx, row, {f.status: row.status, f.attempts: str(row.attempts)})


def _record_opt_out(ctx: Context, records: Sequence[str]) -> None:
    """Twilio refused with 21610 (the participant replied STOP, perhaps before the reply poller
    saw it): the record is opted out of every rule, from now on."""
    now = ctx.stamp(OPT_OUT_AT)
    rows = [ctx.layout.row(rid, {OPT_OUT: "1", OPT_OUT_AT: now}) for rid in records]
    for part in chunked(rows, CHUNK):
        ctx.redcap.import_rows(part)
