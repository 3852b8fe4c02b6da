"""The names of one rule's REDCap fields, and the status codes its status field must offer.

A rule's fields are ``{prefix}_status``, ``{prefix}_sms_sid``, ...: :class:`RuleFields` names
each and says what it holds (:class:`common.field_types.Kind`), which is what the project check,
``admin instrument`` and every service use. Fields a feature adds (e-mail, staff alerts,
replies) exist only where the rule uses it.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.field_types import Kind
from common.pipeline import Status

# The statuses a built-in rule needs (today's); file rules also need cancelled and expired, and
# rules that send e-mail sent_email (so a project set up before e-mail keeps passing its checks).
BUILTIN_CODES = tuple(
    s.value for s in Status if s not in (Status.CANCELLED, Status.EXPIRED, Status.SENT_EMAIL)
)
SMS_CODES = tuple(s.value for s in Status if s is not Status.SENT_EMAIL)
ALL_CODES = tuple(s.value for s in Status)


@dataclass(frozen=True)
class RuleFields:
    """The names of one rule's REDCap fields: ``{prefix}_status``, ``{prefix}_sms_sid``, ...

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

    @property
    def status(self) -> str:
        return self.name("status")

    @property
    def registered_at(self) -> str:
        return self.name("registered_at")

    @property
    def claimed_at(self) -> str:
        return self.name("sms_claimed_at")

    @property
    def sent_at(self) -> str:
        return self.name("sms_sent_at")

    @property
    def checked_at(self) -> str:
        return self.name("delivery_checked_at")

    @property
    def attempts(self) -> str:
        return self.name("sms_attempts")

    @property
    def interrupted(self) -> str:
        return self.name("sms_interrupted")

    @property
    def sid(self) -> str:
        return self.name("sms_sid")

    @property
    def to(self) -> str:
        return self.name("sms_to")

    @property
    def delivery_status(self) -> str:
        return self.name("delivery_status")

    @property
    def error_code(self) -> str:
        return self.name("error_code")

    @property
    def error_message(self) -> str:
        return self.name("error_message")

    @property
    def count(self) -> str | None:
        return self.name("sms_count") if self.extended else None

    @property
    def ref(self) -> str | None:
        return self.name("sms_ref") if self.extended else None

    @property
    def channel(self) -> str | None:
        return self.name("channel") if self.email else None

    @property
    def email_to(self) -> str | None:
        return self.name("email_to") if self.email else None

    @property
    def alerted_at(self) -> str | None:
        return self.name("alerted_at") if self.alerts else None

    # A rule that takes replies: the last reply's meaning, time, inbound SID and text.
    @property
    def reply(self) -> str:
        return self.name("reply")

    @property
    def reply_at(self) -> str:
        return self.name("reply_at")

    @property
    def reply_sid(self) -> str:
        return self.name("reply_sid")

    @property
    def reply_text(self) -> str:
        return self.name("reply_text")

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
