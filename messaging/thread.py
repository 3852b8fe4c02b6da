"""What a conversation thread is in REDCap: the fields of the repeating instrument
``relay_message`` (one instance per message), the record's waiting mark, and one entry.
:mod:`messaging.conversation` writes them; the project check and ``admin instrument`` read
them here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from common.field_types import Kind

FORM = "relay_message"
DIRECTION, RULE, CHANNEL, AT = "msg_direction", "msg_rule", "msg_channel", "msg_at"
SID, STATUS, TEXT, ANSWER, AMBIGUOUS = (
    "msg_sid",
    "msg_status",
    "msg_text",
    "msg_answer",
    "msg_ambiguous",
)
# What staff fill to send a message from REDCap (a new instance: the text, "send" ticked), and
# what the sender writes while sending it: its claim token, the number texted, why it did not go.
SEND, CLAIM, TO, ERROR = "msg_send", "msg_claim", "msg_to", "msg_error"
WAITING = "relay_conversation_waiting"  # on the record's row in REDCAP_EVENT (form "relay")
OUT, IN = "out", "in"
# Every field an entry writes, with what it holds; each entry writes all of them (blanks too,
# with overwrite), so an instance another writer displaced is wholly theirs, never a mixture.
KINDS = {
    DIRECTION: Kind.CHOICE,
    RULE: Kind.TEXT,
    CHANNEL: Kind.TEXT,
    AT: Kind.TIME,
    SID: Kind.TEXT,
    STATUS: Kind.TEXT,
    TEXT: Kind.TEXT,
    ANSWER: Kind.TEXT,
    AMBIGUOUS: Kind.CHOICE,
    SEND: Kind.CHOICE,
    CLAIM: Kind.TEXT,
    TO: Kind.TEXT,
    ERROR: Kind.TEXT,
}
CODES = {DIRECTION: (OUT, IN), AMBIGUOUS: ("0", "1"), SEND: ("1",)}
STAFF = "staff"  # msg_rule of a message staff typed
# What the sender's export asks for beside the rules (messaging.staff): the staff messages to
# send or being sent.
STAFF_LOGIC = f"[{SEND}] = '1' and [{SID}] = '' and ([{STATUS}] = '' or [{STATUS}] = 'sending')"
STAFF_FIELDS = (SEND, SID, STATUS, TEXT, CLAIM, AT, TO)
# What the delivery checker's export asks for beside the rules: staff messages awaiting their
# delivery report.
STAFF_SENT_LOGIC = f"[{RULE}] = '{STAFF}' and [{STATUS}] = 'sms_sent' and [{SID}] <> ''"
STAFF_SENT_FIELDS = (RULE, STATUS, SID, AT)
RECORD_KINDS = {WAITING: Kind.TIME}


def instance(row: Mapping[str, str], home: str | None) -> int | None:
    """The number of the log's instance an export row is, or None for any other row (a record's
    own, another instrument's, one outside REDCAP_EVENT ``home``)."""
    if row.get("redcap_repeat_instrument") != FORM:
        return None
    if home is not None and row.get("redcap_event_name", home) != home:
        return None
    number = str(row.get("redcap_repeat_instance", ""))
    return int(number) if number.isdigit() else None


@dataclass(frozen=True)
class Entry:
    """One message of a thread. ``text`` is PHI: REDCap holds it, logs never."""

    sid: str
    direction: str
    at: datetime
    channel: str = "sms"
    rule: str = ""
    status: str = ""
    text: str = ""
    answer: str = ""
    ambiguous: bool = False

    @property
    def waits(self) -> bool:
        """A text from the participant that a person should read and answer."""
        unread = not self.answer or self.answer == "unclear"
        return self.direction == IN and (self.ambiguous or unread)
