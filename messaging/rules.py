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
    answer_confirmed = "Thank you."

:mod:`messaging.rules_file` reads the file: a bad one is one ConfigError naming the rule, the key
and the fix (an unknown key lists the allowed ones). A rule's REDCap fields are named by
:class:`messaging.fields.RuleFields`. What only REDCap can tell (logic it rejects, fields it
lacks) is checked at startup by :mod:`common.project`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from messaging.fields import RuleFields
from messaging.replies import Replies
from messaging.templates import LocalizedTemplates

NAME = re.compile(r"^[a-z][a-z0-9_]*$")
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
    "answer_<answer>",
)
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
    answers: Mapping[str, LocalizedTemplates] = field(default_factory=dict)  # auto-answers
    # An auto-answer rule (messaging.answers): the rule it answers for, the field holding the
    # reply's meaning (which picks the template) and the number the reply came from.
    answer_of: str = ""
    reply_field: str = ""
    to_field: str = ""

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
    def fields(self) -> tuple[str, ...]:
        parts = (self.subject, self.text, *([self.html] if self.html else []))
        return tuple(dict.fromkeys(name for part in parts for name in part.fields))


def survey_setting(rule: Rule) -> str:
    """How a person names this rule's survey in their settings, for error messages."""
    return "SURVEY_INSTRUMENT" if rule.builtin else f"rule {rule.name!r}: survey"
