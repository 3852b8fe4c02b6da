"""Replies from Twilio's message log to REDCap, each exactly once, never attributed by guessing.

A recorded reply is research data (a ``cancelled`` visit makes a coordinator free the slot), so a
text is recorded only on the message it can only be answering, and a settled answer is changed
only by a clear new one.

**Which texts count.** Each cycle lists the inbound messages of the last REPLY_LOOKBACK_HOURS.
Only texts to one of the numbers we send from count (TWILIO_FROM_NUMBER, or every number of the
Messaging Service, asked of Twilio at most every :data:`NUMBERS_TTL`): with a Messaging Service
the list is the whole account's, and another study's number may share it. A sender that is not a
phone number (a short code, a name) is ignored.

**Which message a text answers** (:func:`attribute`). All times are Twilio's: the reply's
``date_sent`` against each message's ``R_sms_sent_at``, which holds Twilio's creation time of
that message (the create's answer carries it), so the host's clock never decides. A message of a
reply-taking rule to that number is *open* for the text when it was sent at or before it and no
longer ago than its rule's ``reply_within_hours`` (72 by default). One open message: the text
answers it. Several: the one of them still unanswered, if only one is. Otherwise the text is
**ambiguous**: each unanswered one gets ``R_reply = ambiguous`` (with the time, SID and text, no
auto-answer) for a person to place (``admin status`` names them); if all are answered, nothing
changes on them and the poller's log names the records. Texts that answer nothing are counted:
``ignored_outside_window``, ``ignored_older_than_messages`` (sent before any message of ours to
that number), ``ignored_no_question`` (only rules without replies texted that number),
``ignored_unknown_number``, ``ignored_not_our_number``, ``ignored_odd_number``.

**Settled answers stay settled.** The first reply to a message is recorded whatever it says (and
answered: ``answer_<meaning>``, ``answer_unclear``); after that only a *clear* answer (one of the
rule's ``replies``) replaces it, with its own auto-answer: YES then NO records ``cancelled``. An
unclear text, HELP, or the same answer again leaves the recorded reply as it is (counted
``kept_answer``), so ``answer_unclear`` goes at most once per message.

**Opt-out.** STOP / START (and YES from someone opted out) to one of our numbers set or clear
``relay_opted_out`` on every record texted at that number by any rule, as Twilio's own block
covers the number; the rule's ``R_reply`` shows it only where the message was unanswered.

**Exactly once.** Every text read is noted by its SID in ``relay_replies_read`` (Twilio time and
SID, newest first, the lookback window's worth) on each record texted at that number, in the same
import as the reply it made and the auto-answer it queued, one import for all the records of a
number: a crash leaves either all of it or none. A text is done when a record texted at its
number notes its SID (or, on a record from before that field existed, holds a reply recorded at
or after it). A text from a number a message is being sent to (claimed, outcome not yet
recorded: the sender crashed, or REDCap went down, after Twilio took it) waits until that message
is recorded, since it may be what the text answers; so does a record whose auto-answer is being
sent.
Texts that concern no record are remembered in memory only (restarts re-read them, harmlessly).

**Cost.** Idle: one Twilio list request; a REDCap export only when the window holds texts not
yet known, with a filter of one clause (the records whose replies-read note is within the
window); a second export of the records texted at the new texts' numbers only when some text is
new. Bodies and numbers are PHI: REDCap holds them, logs never do.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from common.contacts import normalize_phone
from common.errors import RedcapRejected
from common.pipeline import Status
from common.redcap_client import chunked
from common.twilio_client import MessageInfo
from messaging import conversation
from messaging.context import Context
from messaging.records import RuleRow, any_of, export_events, ref, rows_for
from messaging.replies import (
    AMBIGUOUS,
    KEYWORD_MEANINGS,
    OPT_OUT,
    OPT_OUT_AT,
    OPT_SID,
    OPTED_IN,
    OPTED_OUT,
    REPLIES_READ,
    keyword,
)
from messaging.rules import Rule
from messaging.thread import IN, WAITING, Entry

NUMBERS_TTL = timedelta(minutes=15)  # how long the Messaging Service's numbers are trusted
IMPORT_ROWS = 20  # rows per import; the records of one number always travel together
NUMBERS_PER_EXPORT = 250  # new texts' numbers asked about in one export (a clause per rule each)
# The statuses of a rule whose message went out (a reply may answer it).
WENT = frozenset(
    {Status.SMS_SENT, Status.DELIVERED, Status.UNDELIVERED, Status.UNCONFIRMED, Status.FAILED}
)


@dataclass(frozen=True)
class Sent:
    """A message of a reply-taking rule that went to a number: the record's rule row, when
    Twilio created it, and for how long a reply may answer it."""

    row: RuleRow
    to: str
    at: datetime
    window: timedelta

    @property
    def key(self) -> tuple[str, str]:
        return self.row.record_id, self.row.rule.name


@dataclass
class Record:
    """One record as REDCap holds it, and what this cycle will write on it."""

    record_id: str
    opted_out: bool = False
    opt_sid: str = ""  # the text whose opt-out or opt-in the record holds (relay_opt_sid)
    read: dict[str, datetime] = field(default_factory=dict)  # SID -> Twilio time
    read_known: bool = False  # relay_replies_read held anything: the SIDs decide alone
    legacy_latest: datetime | None = None  # newest R_reply_at, for records read before that
    replies: dict[str, tuple[str, datetime | None]] = field(default_factory=dict)  # rule name ->
    busy: bool = False  # an auto-answer of it is being sent: leave it to the next cycle
    home: dict[str, str] = field(default_factory=dict)  # its REDCAP_EVENT values to write
    rules: dict[str, dict[str, str]] = field(default_factory=dict)  # rule name -> values
    log: list[Entry] = field(default_factory=list)  # texts for its conversation log

    def holds(self, sid: str, when: datetime) -> bool:
        if sid in self.read:
            return True
        return not self.read_known and self.legacy_latest is not None and when <= self.legacy_latest

    def answered(self, sent: Sent) -> bool:
        """A reply is recorded for this message (whatever it meant)."""
        meaning, at = self.replies.get(sent.row.rule.name, ("", None))
        return bool(meaning) and at is not None and at >= sent.at


@dataclass
class Book:
    """What REDCap holds about the records of some numbers, as one cycle reads and changes it."""

    records: dict[str, Record] = field(default_factory=dict)
    questions: dict[str, list[Sent]] = field(default_factory=dict)  # number -> open messages
    texted: dict[str, set[str]] = field(default_factory=dict)  # number -> records, any rule
    # Numbers a message is being sent to (claimed, its outcome not yet recorded): a text from
    # one may answer that message, which the book cannot see yet.
    in_flight: set[str] = field(default_factory=set)

    def done(self, message: MessageInfo, number: str) -> bool:
        """Recorded already: a record texted at ``number`` holds it."""
        when = _when(message)
        return any(
            self.records[rid].holds(message.sid, when) for rid in self.texted.get(number, ())
        )

    def merge(self, other: Book) -> None:
        for rid, record in other.records.items():
            self.records.setdefault(rid, record)
        for number, sent in other.questions.items():
            known = {s.key for s in self.questions.get(number, [])}
            self.questions.setdefault(number, []).extend(s for s in sent if s.key not in known)
        for number, ids in other.texted.items():
            self.texted.setdefault(number, set()).update(ids)
        self.in_flight |= other.in_flight


@dataclass(frozen=True)
class Verdict:
    """What a text answers: ``outcome`` (a count), the one message it answers or the messages it
    may answer (ambiguous)."""

    outcome: str
    targets: tuple[Sent, ...] = ()


def attribute(book: Book, message: MessageInfo, number: str) -> Verdict:
    """The message(s) ``message`` from ``number`` answers (see the module docstring)."""
    when = _when(message)
    questions = book.questions.get(number, [])
    before = [s for s in questions if s.at <= when]
    if not before:
        if questions:
            return Verdict("ignored_older_than_messages")
        return Verdict(
            "ignored_no_question" if book.texted.get(number) else "ignored_unknown_number"
        )
    open_ = [s for s in before if when - s.at <= s.window]
    if not open_:
        return Verdict("ignored_outside_window")
    if len(open_) == 1:
        return Verdict("recorded", (open_[0],))
    waiting = [s for s in open_ if not book.records[s.row.record_id].answered(s)]
    if len(waiting) == 1:
        return Verdict("recorded", (waiting[0],))
    if waiting:
        return Verdict("ambiguous", tuple(waiting))
    return Verdict("ambiguous_after_answers", tuple(open_))


class Poller:
    """The reply poller's per-process memory (never pipeline state): the numbers we send from,
    for NUMBERS_TTL, and the texts that concern no record, so they cost nothing again."""

    def __init__(self) -> None:
        self._numbers: frozenset[str] = frozenset()
        self._numbers_until: float | None = None
        self.ignored: set[str] = set()

    def ours(self, ctx: Context) -> frozenset[str]:
        assert ctx.sms is not None
        now = ctx.clock.monotonic()
        if self._numbers_until is None or now >= self._numbers_until:
            self._numbers = ctx.sms.sender_numbers()
            self._numbers_until = now + NUMBERS_TTL.total_seconds()
        return self._numbers

    def poll(self, ctx: Context, now: datetime) -> dict[str, int]:
        """One cycle (see the module docstring); counts by outcome."""
        assert ctx.sms is not None
        since = now - timedelta(hours=ctx.settings.reply_lookback_hours)
        counts: dict[str, int] = {}
        fresh = [m for m in ctx.sms.inbound_since(since) if m.sid not in self.ignored]
        if not fresh:
            return counts
        ours = self.ours(ctx)
        numbers: dict[str, list[MessageInfo]] = {}
        for message in fresh:
            number = _number(message.from_, ctx.settings.phone_region)
            if message.to not in ours:
                self._ignore(message, "ignored_not_our_number", counts)
            elif number is None:
                self._ignore(message, "ignored_odd_number", counts)
            else:
                numbers.setdefault(number, []).append(message)
        if not numbers:
            return counts
        # 1. The records that read a text within the window: what most texts turn out to be.
        book = _load(ctx, f"[{REPLIES_READ}] >= '{_utc(since)}'")
        pending = {
            number: new
            for number, messages in numbers.items()
            if (new := [m for m in messages if not book.done(m, number)])
        }
        _count(counts, "already_recorded", sum(map(len, numbers.values())) - _size(pending))
        if not pending:
            return counts
        # 2. Only for what is new: every record texted at one of those numbers, by any rule
        # (in exports of at most NUMBERS_PER_EXPORT numbers, so no filter grows without bound).
        for part in chunked(sorted(pending), NUMBERS_PER_EXPORT):
            book.merge(_load(ctx, _texted_at(ctx, part)))
        for message in sorted((m for ms in pending.values() for m in ms), key=_when):
            number = _number(message.from_, ctx.settings.phone_region)
            assert number is not None
            if book.done(message, number):  # on a record from before relay_replies_read
                for rid in book.texted.get(number, ()):
                    _note_read(book.records[rid], message, _when(message), since)
                _count(counts, "already_recorded")
                continue
            outcome = _read(ctx, book, message, number, since)
            if outcome.startswith("ignored_") and not book.texted.get(number):
                self.ignored.add(message.sid)  # (a number in flight is never ignored)
            _count(counts, outcome)
        _count(counts, "refused", _write(ctx, book))
        return counts

    def _ignore(self, message: MessageInfo, why: str, counts: dict[str, int]) -> None:
        self.ignored.add(message.sid)
        _count(counts, why)


# -- reading what REDCap holds -------------------------------------------------------------------
def _texted_at(ctx: Context, numbers: Sequence[str]) -> str:
    # An auto-answer goes to the number its rule texted: that rule's clause finds the record.
    rules = [rule for rule in ctx.rules.written if rule.sends_sms]
    return any_of([f"{ref(ctx, r, r.fields.to)} = '{number}'" for r in rules for number in numbers])


def _load(ctx: Context, logic: str) -> Book:
    """One export of the records ``logic`` selects: every texting rule's message, the reply
    rules' replies and auto-answers, the record's opt-out and replies read."""
    rules = [rule for rule in ctx.rules.every if rule.sends_sms]
    raw = ctx.redcap.export(_fields(ctx, rules), logic, events=export_events(ctx, rules, home=True))
    return book_of(ctx, raw)


def _fields(ctx: Context, rules: Sequence[Rule]) -> list[str]:
    fields = [ctx.layout.record_id_field, OPT_OUT, OPT_SID, REPLIES_READ]
    for rule in rules:
        f = rule.fields
        fields += [f.status, f.to, f.sent_at]
        if rule.replies is not None:
            fields += [f.reply, f.reply_at]
    return list(dict.fromkeys(fields))


def book_of(ctx: Context, raw: Sequence[Mapping[str, str]]) -> Book:
    """The records of an export (holding :func:`_fields`), their texted numbers and the open
    questions they hold; also what ``admin status`` reads from its own export."""
    key, home, tz = ctx.layout.record_id_field, ctx.layout.event, ctx.settings.timezone
    book = Book()
    for values in raw:
        record = book.records.setdefault(values[key], Record(values[key]))
        if home is None or values.get("redcap_event_name") == home:
            record.opted_out = values.get(OPT_OUT, "").strip() == "1"
            record.opt_sid = values.get(OPT_SID, "")
            record.read = _parse_read(values.get(REPLIES_READ, ""))
            record.read_known = bool(values.get(REPLIES_READ, "").strip())
    for rule in ctx.rules.every:
        if not rule.sends_sms:
            continue
        f = rule.fields
        for row in rows_for(ctx, rule, raw):
            record = book.records[row.record_id]
            to = row.get(f.to)
            if row.status == Status.SENDING:
                record.busy = bool(rule.answer_of) or record.busy
                if to:
                    book.in_flight.add(to)
            if not to or row.status not in WENT:
                continue
            book.texted.setdefault(to, set()).add(row.record_id)
            # The earlier reading of a daylight-saving hour: a reply just after it is not taken
            # for one before it (the window then runs an hour long, never short).
            sent_at = row.time(f.sent_at, tz, earliest=True)
            if rule.replies is None or sent_at is None:
                continue
            replied = row.time(f.reply_at, tz)
            if replied is not None and row.get(f.reply_at).count(":") < 2:
                replied += timedelta(seconds=59)  # a minute-only field: as late as it may be
            record.replies[rule.name] = (row.get(f.reply), replied)
            if replied and (record.legacy_latest is None or replied > record.legacy_latest):
                record.legacy_latest = replied
            window = timedelta(hours=rule.reply_within_hours)
            book.questions.setdefault(to, []).append(Sent(row, to, sent_at, window))
    return book


# -- recording a text ----------------------------------------------------------------------------
def _read(ctx: Context, book: Book, message: MessageInfo, number: str, since: datetime) -> str:
    """Attribute and record one new text; the outcome to count."""
    texted = [book.records[rid] for rid in sorted(book.texted.get(number, ()))]
    opted_out = any(record.opted_out for record in texted)
    said = keyword(message.body, opted_out)
    if number in book.in_flight:
        # The message being sent may be the one this text answers: decide once it is recorded.
        return "waiting_send_in_flight"
    verdict = attribute(book, message, number)
    targets = [book.records[s.row.record_id] for s in verdict.targets]
    if any(record.busy for record in [*targets, *texted]):
        return "waiting_answer_in_flight"
    when = _when(message)
    if said in (OPTED_OUT, OPTED_IN):
        for record in texted:
            _opt(ctx, record, message, said, when)
    outcome = verdict.outcome
    if outcome == "recorded":
        outcome = _answer(ctx, book, verdict.targets[0], message, when, said)
    elif outcome == "ambiguous" and said not in (OPTED_OUT, OPTED_IN):
        for sent in verdict.targets:
            _reply(ctx, book.records[sent.row.record_id], sent, message, when, AMBIGUOUS)
        _warn(ctx, "a text from a shared phone may answer any of", verdict.targets)
    elif outcome == "ambiguous_after_answers":
        _warn(
            ctx, "a text from a shared phone changed nothing: it may answer any of", verdict.targets
        )
    for record in texted:
        _note_read(record, message, when, since)
    _log_rest(texted, message, when, said)
    if said in (OPTED_OUT, OPTED_IN) and texted and outcome != "recorded":
        return said  # counted as what it did: every record at the number opted out (or in)
    return outcome


def _answer(
    ctx: Context, book: Book, sent: Sent, message: MessageInfo, when: datetime, said: str | None
) -> str:
    """The text answers ``sent``: record it, unless that message's reply is settled."""
    record, rule = book.records[sent.row.record_id], sent.row.rule
    assert rule.replies is not None
    if message.sid == record.opt_sid:
        # Its opt-out or opt-in is on the record already: read it as it was read then (a YES
        # that opted in must not become a confirmation now that the record is opted in).
        meaning = OPTED_OUT if record.opted_out else OPTED_IN
    else:
        meaning = said or rule.replies.interpret(message.body)
    if record.answered(sent):
        current, _ = record.replies[rule.name]
        # A clear answer replaces any reply; an opt-out or opt-in any but a clear answer;
        # anything else (unclear, HELP, the same again) none.
        clear = rule.replies.is_answer(meaning)
        opting = meaning in (OPTED_OUT, OPTED_IN) and not rule.replies.is_answer(current)
        if meaning == current or not (clear or opting):
            _log(record, message, when, meaning, rule.name)
            return "kept_answer"
    _reply(ctx, record, sent, message, when, meaning)
    return "recorded"


def _reply(
    ctx: Context, record: Record, sent: Sent, message: MessageInfo, when: datetime, meaning: str
) -> None:
    """Record ``meaning`` as the reply to ``sent``, and queue (or supersede) its auto-answer."""
    rule, f = sent.row.rule, sent.row.rule.fields
    text = _text(message)
    values = {
        f.reply: meaning,
        f.reply_at: ctx.stamp(f.reply_at, when),
        f.reply_sid: message.sid,
        f.reply_text: text,
    }
    answer = ctx.rules.companion(rule)
    answered = (
        answer is not None
        and meaning in rule.answers
        and meaning not in KEYWORD_MEANINGS
        and not record.opted_out
    )
    earlier = record.rules.get(rule.name, {})
    if answer is not None:
        a = answer.fields
        if answered:
            values.update(
                {
                    a.status: Status.REGISTERED,
                    a.registered_at: "",
                    a.attempts: "0",
                    a.interrupted: "",
                    a.error_code: "",
                    a.error_message: "",
                }
            )
        else:
            # A later reply supersedes an earlier one: an auto-answer queued for it (this
            # cycle, or an earlier one and not sent yet) is cancelled, not sent for the wrong
            # reply.
            earlier = {k: v for k, v in earlier.items() if not k.startswith(a.prefix + "_")}
            if _queued(sent, answer):
                values.update(
                    {
                        a.status: Status.CANCELLED,
                        a.error_code: "superseded",
                        a.error_message: "a later reply takes no auto-answer",
                    }
                )
    record.rules[rule.name] = {**earlier, **values}
    record.replies[rule.name] = (meaning, when)
    _log(record, message, when, meaning, rule.name)
    ctx.log.info(
        "record=%s rule=%s reply recorded: %s%s",
        record.record_id,
        rule.name,
        meaning,
        " (auto-answer queued)" if answered else "",
    )


def _queued(sent: Sent, answer: Rule) -> bool:
    """The record's auto-answer of this rule is queued and not sent yet."""
    return sent.row.get(answer.fields.status) == Status.REGISTERED


def _opt(ctx: Context, record: Record, message: MessageInfo, said: str, when: datetime) -> None:
    if message.sid == record.opt_sid:
        return  # its opt-out or opt-in is on the record already
    record.opted_out = said == OPTED_OUT
    record.opt_sid = message.sid
    record.home.update(
        {
            OPT_OUT: "1" if record.opted_out else "",
            OPT_OUT_AT: ctx.stamp(OPT_OUT_AT, when) if record.opted_out else "",
            OPT_SID: message.sid,
        }
    )
    ctx.log.info("record=%s %s", record.record_id, said.replace("_", " "))


def _note_read(record: Record, message: MessageInfo, when: datetime, since: datetime) -> None:
    record.read[message.sid] = when
    kept = {sid: at for sid, at in record.read.items() if at >= since}
    lines = [
        f"{_utc(at)} {sid}" for sid, at in sorted(kept.items(), key=lambda i: i[1], reverse=True)
    ]
    record.home[REPLIES_READ] = "\n".join(lines)


def _log(record: Record, message: MessageInfo, when: datetime, meaning: str, rule: str) -> None:
    """The text for the record's conversation log, read as ``meaning``, answering ``rule``."""
    if any(entry.sid == message.sid for entry in record.log):
        return
    text = _text(message)
    entry = Entry(
        message.sid, IN, when, rule=rule, status="received", text=text, answer=meaning,
        ambiguous=meaning == AMBIGUOUS,
    )  # fmt: skip
    record.log.append(entry)


def _log_rest(
    texted: Sequence[Record], message: MessageInfo, when: datetime, said: str | None
) -> None:
    """A text no message took (after a window, to a rule without replies...) goes on the log of
    the record texted at its number, or of each of several, marked ambiguous; STOP and START,
    which change every record there, on each. A text a message took stays on that record."""
    taken = any(entry.sid == message.sid for record in texted for entry in record.log)
    if taken and said not in (OPTED_OUT, OPTED_IN):
        return
    for record in texted:
        meaning = said if said in KEYWORD_MEANINGS else (AMBIGUOUS if len(texted) > 1 else "")
        _log(record, message, when, meaning or "", "")


def _warn(ctx: Context, what: str, sent: Iterable[Sent]) -> None:
    where = ", ".join(f"record {s.row.record_id} rule {s.row.rule.name}" for s in sent)
    ctx.log.warning("%s %s; a person decides (admin status lists them)", what, where)


# -- writing -------------------------------------------------------------------------------------
def _write(ctx: Context, book: Book) -> int:
    """Each number's records in one import (their replies, auto-answers, opt-outs and replies
    read together: all or nothing), several numbers' to an import, with the texts' entries of the
    conversation log; the records REDCap refused."""
    logged = conversation.plan(ctx, {rid: r.log for rid, r in book.records.items() if r.log})
    for rid, mark in logged.waiting.items():
        book.records[rid].home[WAITING] = mark
    groups = [
        [
            row
            for rid in group
            for row in [*_rows(ctx, book.records[rid], ctx.rules.every), *logged.rows.get(rid, [])]
        ]
        for group in _groups(book)
    ]
    refused: set[str] = set()
    for batch in _batches(groups):
        try:
            # overwrite: a blank erases (the opt-out lifted, a previous answer's error).
            ctx.redcap.import_rows([row for rows in batch for row in rows], overwrite=True)
        except RedcapRejected:
            for rows in batch:
                try:
                    ctx.redcap.import_rows(rows, overwrite=True)
                except RedcapRejected as exc:
                    ids = sorted({row[ctx.layout.record_id_field] for row in rows})
                    ctx.log.error("replies of records %s refused by REDCap: %s", ids, exc)
                    refused.update(ids)
    logged.placed = [p for p in logged.placed if p[0] not in refused]
    conversation.confirm(ctx, logged)
    return len(refused)


def _groups(book: Book) -> list[list[str]]:
    """The changed records, grouped so that records sharing a number travel together."""
    changed = [rid for rid, record in book.records.items() if record.home or record.rules]
    parent = {rid: rid for rid in changed}

    def root(rid: str) -> str:
        while parent[rid] != rid:
            rid = parent[rid]
        return rid

    for ids in book.texted.values():
        members = [rid for rid in ids if rid in parent]
        for other in members[1:]:
            parent[root(other)] = root(members[0])
    groups: dict[str, list[str]] = {}
    for rid in changed:
        groups.setdefault(root(rid), []).append(rid)
    return list(groups.values())


def _rows(ctx: Context, record: Record, rules: Iterable[Rule]) -> list[dict[str, str]]:
    """The record's rows: what it changed, one row per event (a rule's own event, or
    REDCAP_EVENT for its opt-out and replies read): REDCap refuses a record and event twice in
    one import."""
    by_event: dict[str, dict[str, str]] = {}
    for rule in rules:
        if rule.name in record.rules:
            row = ctx.layout.row(record.record_id, record.rules[rule.name], rule.event)
            by_event.setdefault(row.get("redcap_event_name", ""), {}).update(row)
    if record.home:
        row = ctx.layout.row(record.record_id, record.home)
        by_event.setdefault(row.get("redcap_event_name", ""), {}).update(row)
    return list(by_event.values())


def _batches(groups: Sequence[list[dict[str, str]]]) -> Iterable[list[list[dict[str, str]]]]:
    batch: list[list[dict[str, str]]] = []
    for rows in groups:
        if batch and sum(map(len, batch)) + len(rows) > IMPORT_ROWS:
            yield batch
            batch = []
        batch.append(rows)
    if batch:
        yield batch


# -- small pieces --------------------------------------------------------------------------------
def _text(message: MessageInfo) -> str:
    """What a text says, as REDCap keeps it (a picture message without words says so)."""
    return message.body or (
        f"(MMS: {message.num_media} media, no text)" if message.num_media else ""
    )


def _when(message: MessageInfo) -> datetime:
    return message.date_sent or message.date_created or datetime.min.replace(tzinfo=UTC)


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_read(text: str) -> dict[str, datetime]:
    read: dict[str, datetime] = {}
    for line in text.splitlines():
        stamp, _, sid = line.strip().partition(" ")
        try:
            read[sid.strip()] = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        except ValueError:
            continue  # a line someone edited by hand: it marks nothing done
    return read


def _number(raw: str, region: str) -> str | None:
    """The sender's number as E.164, or None for a short code, a name or garbage."""
    try:
        return normalize_phone(raw, region) if raw.startswith("+") else None
    except ValueError:
        return None


def _size(pending: Mapping[str, list[MessageInfo]]) -> int:
    return sum(len(messages) for messages in pending.values())


def _count(counts: dict[str, int], key: str, n: int = 1) -> None:
    if n:
        counts[key] = counts.get(key, 0) + n
