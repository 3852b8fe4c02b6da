"""Message rules: which message goes to whom and when, and the REDCap fields holding their state.

Without ``RULES_FILE`` there is one built-in rule, ``pipeline``, made from the settings of the
first version (``REGISTRATION_COMPLETE_FIELD``/``_VALUE``, ``SMS_DELAY_MINUTES``, ``SMS_TEMPLATE``,
``SURVEY_INSTRUMENT``, ``REDCAP_EVENT``) and today's ``pipeline_*`` fields. With it, the TOML
file's ``[[rule]]`` tables are the rules, in the words of REDCap's Alerts & Notifications::

    [[rule]]
    name = "visit_reminder"                 # prefix of the rule's fields: visit_reminder_status...
    when = "[visit_datetime] <> ''"         # REDCap logic: the rule applies once this holds
    anchor = "visit_datetime"               # or delay_minutes = 60 (after `when` was first seen)
    offset_minutes = -1440                  # 24 hours before the anchor (wall-clock, TIMEZONE)
    template = "Your visit is {field:visit_datetime:datetime}. Reply STOP to opt out."
    stop_when = "[visit_cancelled] = '1'"   # checked when the message would go out: cancelled
    repeat = 0                              # more sends after the first, every_minutes apart
    survey = "..."                          # makes {survey_link}
    event = "..."                           # longitudinal: the event holding the rule's fields
    channel = "sms"                         # or "email", or "sms,email" / "email,sms" (fallback)
    subject = "Your visit"                  # e-mail: the subject, the plain text, optional HTML
    email_template = "..."
    email_html = "<p>...</p>"
    replies.confirmed = ["yes", "y"]        # replies (messaging.replies) and auto-answers
    reply_within_hours = 72                 # a reply answers the message only this soon after
    answer_confirmed = "Thank you."

This module is the rule model: a :class:`Rule`, the names of its REDCap fields
(:class:`RuleFields`), the companion rule that sends its auto-answers (:func:`answer_rule`), and
a study's :class:`Rules`. :mod:`messaging.rules_file` reads the file (a bad one is one
ConfigError naming the rule, the key and the fix); :mod:`messaging.checks` checks what only REDCap
can tell (logic it rejects, fields it lacks).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from common.errors import ConfigError
from common.field_types import Kind
from common.pipeline import Status
from common.writes import StatusFields
from messaging.ids import AssignRule
from messaging.replies import Replies
from messaging.templates import LocalizedTemplates

NAME = re.compile(r"[a-z][a-z0-9_]*")
BUILTIN = "pipeline"
RULES_FORM = "relay"  # the instrument `admin instrument` puts file rules' fields in

KEYS = (
    "name",
    "when",
    "delay_minutes",
    "anchor",
    "offset_minutes",
    "template",
    "language_field",
    "languages",
    "survey",
    "event",
    "stop_when",
    "repeat",
    "every_minutes",
    "channel",
    "subject",
    "email_template",
    "email_html",
    "replies",
    "reply_within_hours",
    "check_every_cycle",
    "answer_<answer>",
)
REPLY_WINDOW_HOURS = 72.0  # reply_within_hours' default: a reply later than this answers nothing
SMS, EMAIL = "sms", "email"
CHANNELS = {"sms": (SMS,), "email": (EMAIL,), "sms,email": (SMS, EMAIL), "email,sms": (EMAIL, SMS)}


@dataclass(frozen=True)
class Rule:
    """One message rule, validated as far as it can be without REDCap."""

    name: str
    when: str
    templates: LocalizedTemplates
    fields: RuleFields
    delay_minutes: float = 0.0
    anchor: str = ""
    offset_minutes: float = 0.0
    survey: str = ""
    event: str = ""
    stop_when: str = ""
    repeat: int = 0
    every_minutes: float = 0.0
    builtin: bool = False
    read: tuple[str, ...] = field(default=())  # REDCap fields the rule's templates and timing read
    channels: tuple[str, ...] = (SMS,)  # in the order tried: the first usable address wins
    mail: MailTemplates | None = None  # when EMAIL is among the channels
    replies: Replies | None = None  # the rule takes replies (messaging.replies)
    reply_within_hours: float = REPLY_WINDOW_HOURS  # a reply answers a message only this soon
    answers: Mapping[str, LocalizedTemplates] = field(default_factory=dict)  # auto-answers
    # An auto-answer rule (answer_rule): the rule it answers for, the field holding the
    # reply's meaning (which picks the template) and the number the reply came from.
    answer_of: str = ""
    reply_field: str = ""
    to_field: str = ""
    # `when` is checked on every record each cycle, not only at sweeps (messaging.probes): for
    # logic that turns true with time alone (today, now) and must not wait up to SWEEP_MINUTES.
    check_every_cycle: bool = False

    @property
    def messages(self) -> int:
        """How many messages the rule sends a record at most (1 + its repeats)."""
        return 1 + self.repeat

    @property
    def sends_sms(self) -> bool:
        return SMS in self.channels

    @property
    def sends_email(self) -> bool:
        return EMAIL in self.channels


@dataclass(frozen=True)
class MailTemplates:
    """An e-mail rule's subject, plain text and optional HTML, in the same languages as its
    choice of language (``language_field``)."""

    subject: LocalizedTemplates
    text: LocalizedTemplates
    html: LocalizedTemplates | None = None

    @property
    def parts(self) -> tuple[LocalizedTemplates, ...]:
        """The subject, the text and the HTML, if any."""
        return (self.subject, self.text, *([self.html] if self.html else []))

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(name for part in self.parts for name in part.fields))


def survey_setting(rule: Rule) -> str:
    """How a person names this rule's survey in their settings, for error messages."""
    return "SURVEY_INSTRUMENT" if rule.builtin else f"rule {rule.name!r}: survey"


# The statuses a built-in rule needs (today's); file rules also need cancelled and expired, and
# rules that send e-mail sent_email (so a project set up before e-mail keeps passing its checks).
BUILTIN_CODES = tuple(
    s.value for s in Status if s not in (Status.CANCELLED, Status.EXPIRED, Status.SENT_EMAIL)
)
SMS_CODES = tuple(s.value for s in Status if s is not Status.SENT_EMAIL)
ALL_CODES = tuple(s.value for s in Status)


class _Named:
    """A field every rule of its kind has, ``{prefix}_{suffix}``; on the class, the suffix."""

    def __init__(self, suffix: str) -> None:
        self.suffix = suffix

    def __get__(self, fields: RuleFields | None, owner: type) -> str:
        return self.suffix if fields is None else fields.name(self.suffix)


class _Optional:
    """A field only the rules using ``feature`` (a flag of RuleFields) have: None elsewhere."""

    def __init__(self, suffix: str, feature: str) -> None:
        self.suffix, self.feature = suffix, feature

    def __get__(self, fields: RuleFields | None, owner: type) -> str | None:
        if fields is not None and getattr(fields, self.feature):
            return fields.name(self.suffix)
        return None


@dataclass(frozen=True)
class RuleFields:
    """The names of one rule's REDCap fields: ``{prefix}_status``, ``{prefix}_sms_sid``, ...
    What each holds (:meth:`kinds`) is what the project check, ``admin instrument`` and every
    service use.

    ``count`` and ``ref`` exist for file rules only (the built-in rule keeps today's fields):
    ``count`` is how many messages the rule has sent the record (its repeats), ``ref`` what
    reconciliation matches the claimed message on: the SMS body's fingerprint (so it never
    adopts another rule's message to the same number), or the id an e-mail carries in its
    ``x-redcap-relay-id`` header. The ``sms_*`` names predate e-mail; the claim, sent and
    attempt fields serve both channels.

    ``email`` adds ``channel`` (``sms`` or ``email``: what the last claim used) and ``email_to``;
    ``alerts`` adds ``alerted_at`` (when a staff digest listed this record's problem). Each is
    required only where it is used, so a project set up before e-mail needs nothing new.
    """

    prefix: str
    form: str
    extended: bool = True
    email: bool = False
    alerts: bool = False
    replies: bool = False

    def name(self, suffix: str) -> str:
        return f"{self.prefix}_{suffix}"

    status = _Named("status")
    registered_at = _Named("registered_at")
    claimed_at = _Named("sms_claimed_at")
    claim = _Named("sms_claim")  # the claim's token: which sender (and host) holds it
    sent_at = _Named("sms_sent_at")
    checked_at = _Named("delivery_checked_at")
    attempts = _Named("sms_attempts")
    interrupted = _Named("sms_interrupted")
    sid = _Named("sms_sid")
    to = _Named("sms_to")
    delivery_status = _Named("delivery_status")
    error_code = _Named("error_code")
    error_message = _Named("error_message")
    count = _Optional("sms_count", "extended")
    ref = _Optional("sms_ref", "extended")
    channel = _Optional("channel", "email")
    email_to = _Optional("email_to", "email")
    alerted_at = _Optional("alerted_at", "alerts")
    # A rule that takes replies: the last reply's meaning, time, inbound SID and text.
    reply = _Named("reply")
    reply_at = _Named("reply_at")
    reply_sid = _Named("reply_sid")
    reply_text = _Named("reply_text")

    @property
    def codes(self) -> tuple[str, ...]:
        if not self.extended:
            return BUILTIN_CODES
        return ALL_CODES if self.email else SMS_CODES

    def kinds(self) -> dict[str, Kind]:
        """Every field of the rule and what it holds, in instrument order."""
        kinds = {
            self.status: Kind.CHOICE,
            self.registered_at: Kind.TIME,
            self.claimed_at: Kind.TIME,
            self.claim: Kind.TEXT,
            self.sent_at: Kind.TIME,
            self.checked_at: Kind.TIME,
            self.attempts: Kind.COUNT,
            self.interrupted: Kind.COUNT,
            self.sid: Kind.TEXT,
            self.to: Kind.TEXT,
            self.delivery_status: Kind.TEXT,
            self.error_code: Kind.TEXT,
            self.error_message: Kind.TEXT,
        }
        if self.count and self.ref:
            kinds[self.count] = Kind.COUNT
            kinds[self.ref] = Kind.TEXT
        if self.channel and self.email_to:
            kinds[self.channel] = Kind.TEXT
            kinds[self.email_to] = Kind.TEXT
        if self.alerted_at:
            kinds[self.alerted_at] = Kind.TIME
        if self.replies:
            kinds[self.reply] = Kind.TEXT
            kinds[self.reply_at] = Kind.TIME
            kinds[self.reply_sid] = Kind.TEXT
            kinds[self.reply_text] = Kind.TEXT
        return kinds


class TriggerFields(StatusFields, Protocol):
    """The fields every kind of rule has: its status (the queue) and the reason of a status
    (:class:`common.writes.StatusFields`), and what the project check asks of them."""

    @property
    def form(self) -> str: ...

    @property
    def codes(self) -> tuple[str, ...]: ...

    def kinds(self) -> dict[str, Kind]: ...


class Trigger(Protocol):
    """A rule of either kind, a message :class:`Rule` or an ID rule
    (:class:`messaging.ids.AssignRule`), as the detector, ``admin baseline`` and the project
    check see it: REDCap logic that makes it apply, the event of its fields, its status."""

    @property
    def name(self) -> str: ...

    @property
    def when(self) -> str: ...

    @property
    def event(self) -> str: ...

    @property
    def fields(self) -> TriggerFields: ...


_BRACKETS = re.compile(r"\[[^\]]*\]")
_CLOCK_WORDS = re.compile(r"\b(today|now)\b", re.IGNORECASE)


def time_dependent(logic: str) -> bool:
    """Whether REDCap ``logic`` reads the clock (``'today'``, ``'now'``, as in ``datediff``): it
    can turn true with no change in REDCap's log, so no change probe sees it."""
    return bool(_CLOCK_WORDS.search(_BRACKETS.sub("", logic)))


# -- auto-answers -------------------------------------------------------------------------------
SUFFIX = "_answer"


def answer_rule(rule: Rule) -> Rule:
    """The companion that sends ``rule``'s auto-answers ("Thank you, your visit is confirmed").

    Its fields (``<rule>_answer_status``, ``_sms_claimed_at``, ``_sms_sid``, ``_sms_ref``...) are
    an ordinary rule's. The reply poller records a reply and, in the same import, sets the
    companion's status to ``registered``; from there the sender sends it through the one claim
    -> send -> record path, reconciliation included, so each auto-answer goes at most once and
    is never lost. It has no ``when`` (the detector and ``admin baseline`` leave it alone); its
    text is chosen by the reply's meaning (``R_reply``) and it goes to the number the reply came
    from (the rule's ``R_sms_to``).
    """
    fields = [rule.fields.reply, rule.fields.to]
    for templates in rule.answers.values():
        fields += [*templates.fields, *templates.language_fields]
    return Rule(
        name=rule.name + SUFFIX,
        when="",
        templates=next(iter(rule.answers.values())),
        # A failed auto-answer is a problem for the staff digests too.
        fields=RuleFields(rule.name + SUFFIX, RULES_FORM, alerts=rule.fields.alerts),
        event=rule.event,
        read=tuple(dict.fromkeys(fields)),
        answers=rule.answers,
        answer_of=rule.name,
        reply_field=rule.fields.reply,
        to_field=rule.fields.to,
    )


@dataclass(frozen=True)
class Rules:
    """A study's rules: ``written`` as the rules file has them (or the one built-in rule), and
    ``every`` rule the services work on: each written rule followed by the companion sending its
    auto-answers, if any (what the sender sends for, and every set of fields the project needs);
    and the study ID rules, ``assign`` (the ``[[assign]]`` tables: the detector gives the IDs)."""

    written: tuple[Rule, ...]
    assign: tuple[AssignRule, ...] = ()
    every: tuple[Rule, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        every: list[Rule] = []
        for rule in self.written:
            every.append(rule)
            if rule.answers:
                every.append(answer_rule(rule))
        object.__setattr__(self, "every", tuple(every))

    def named(self, name: str) -> Rule:
        """The rule called ``name`` (``--rule``; a rule's auto-answers are ``<rule>_answer``);
        ConfigError listing the rules there are."""
        for rule in self.every:
            if rule.name == name:
                return rule
        names = [rule.name for rule in self.every]
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise ConfigError(f"--rule {name}: no such rule; {hint}the rules are: {', '.join(names)}")

    def trigger(self, name: str) -> Rule | AssignRule:
        """The rule of either kind called ``name`` (``admin baseline --rule``, ``requeue``);
        ConfigError listing them."""
        found = next((rule for rule in self.assign if rule.name == name), None)
        if found is not None:
            return found
        if any(rule.name == name for rule in self.every) or not self.assign:
            return self.named(name)
        names = ", ".join([r.name for r in self.every] + [r.name for r in self.assign])
        raise ConfigError(f"--rule {name}: no such rule; the rules are: {names}")

    @property
    def triggers(self) -> tuple[Rule | AssignRule, ...]:
        """Every rule with a ``when``: the written message rules, then the ID rules."""
        return (*self.written, *self.assign)

    def companion(self, rule: Rule) -> Rule | None:
        """The rule sending ``rule``'s auto-answers; None if it has none."""
        return next((r for r in self.every if r.answer_of == rule.name), None)

    def parent(self, rule: Rule) -> Rule:
        """The rule whose replies the auto-answer rule ``rule`` answers."""
        return next(r for r in self.written if r.name == rule.answer_of)

    @property
    def replying(self) -> tuple[Rule, ...]:
        """The rules that take replies."""
        return tuple(rule for rule in self.written if rule.replies is not None)

    @property
    def sends_sms(self) -> bool:
        """Some rule texts: Twilio is needed."""
        return any(rule.sends_sms for rule in self.written)

    @property
    def sends_email(self) -> bool:
        """Some rule mails (staff alerts, a setting, need Graph too)."""
        return any(rule.sends_email for rule in self.written)
