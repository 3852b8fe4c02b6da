"""The pipeline's state model: the status codes and the REDCap fields that hold all state.

``pipeline_status`` is the queue. Transitions (README "How it works" draws them)::

    (blank) --detector--> registered --sender claims--> sending --Twilio accepted--> sms_sent
    (blank) --admin baseline--> baseline          (never messaged)
    sending --reconcile: message found--> sms_sent
    sending --reconcile: none found, Twilio's answer was lost--> registered   (an attempt used;
                                                      failed after SMS_MAX_ATTEMPTS)
    sending --reconcile: none found, our sender stopped--> registered   (attempt given back;
                                                      failed after SMS_MAX_INTERRUPTED)
    sending --unresolved past SMS_REVIEW_AFTER_HOURS--> needs_review
    registered --no usable phone / not allowed--> skipped
    registered/sending --Twilio permanent rejection--> failed
    sms_sent --checker--> delivered | undelivered | failed | unconfirmed
    failed/undelivered/skipped/needs_review/unconfirmed --admin requeue--> registered
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from common.field_types import WITH_SECONDS, WITHOUT_SECONDS, Kind


class Status(StrEnum):
    BASELINE = "baseline"
    REGISTERED = "registered"
    SENDING = "sending"
    SMS_SENT = "sms_sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    SKIPPED = "skipped"
    UNCONFIRMED = "unconfirmed"
    NEEDS_REVIEW = "needs_review"
    CANCELLED = "cancelled"  # a rule's stop_when held when its message would have gone out
    EXPIRED = "expired"  # a date-anchored message whose anchor time passed before it could go


REQUEUEABLE = frozenset(
    {
        Status.FAILED,
        Status.UNDELIVERED,
        Status.SKIPPED,
        Status.NEEDS_REVIEW,
        Status.UNCONFIRMED,
        Status.CANCELLED,
        Status.EXPIRED,
    }
)
# A message Twilio accepted and that is settled: the next message of a series may follow it.
SETTLED = frozenset({Status.DELIVERED, Status.UNCONFIRMED})

STATUS = "pipeline_status"
REGISTERED_AT = "pipeline_registered_at"
CLAIMED_AT = "pipeline_sms_claimed_at"
SENT_AT = "pipeline_sms_sent_at"
CHECKED_AT = "pipeline_delivery_checked_at"
ATTEMPTS = "pipeline_sms_attempts"  # claims that Twilio's own trouble may have used up
INTERRUPTED = "pipeline_sms_interrupted"  # claims our stopped sender left, proved unsent
SID = "pipeline_sms_sid"
SMS_TO = "pipeline_sms_to"
DELIVERY_STATUS = "pipeline_delivery_status"
ERROR_CODE = "pipeline_error_code"
ERROR_MESSAGE = "pipeline_error_message"

# name -> what it holds; common/field_types.py says which REDCap definitions can hold each.
PIPELINE_FIELDS: dict[str, Kind] = {
    STATUS: Kind.CHOICE,
    REGISTERED_AT: Kind.TIME,
    CLAIMED_AT: Kind.TIME,
    SENT_AT: Kind.TIME,
    CHECKED_AT: Kind.TIME,
    ATTEMPTS: Kind.COUNT,
    INTERRUPTED: Kind.COUNT,
    SID: Kind.TEXT,
    SMS_TO: Kind.TEXT,
    DELIVERY_STATUS: Kind.TEXT,
    ERROR_CODE: Kind.TEXT,
    ERROR_MESSAGE: Kind.TEXT,
}


def parse_time(text: str, tz: ZoneInfo) -> datetime | None:
    """A stored date-time (Y-M-D, with or without seconds, study zone) as an aware time; None if
    blank or bad."""
    text = text.strip()
    for pattern in (WITH_SECONDS, WITHOUT_SECONDS):
        try:
            return datetime.strptime(text, pattern).replace(tzinfo=tz)
        except ValueError:
            continue
    return None


@dataclass(frozen=True)
class PipelineRow:
    """One record's pipeline fields (and whatever else was exported), parsed from REDCap."""

    record_id: str
    values: dict[str, str]

    @property
    def status(self) -> str:
        return self.values.get(STATUS, "")

    @property
    def attempts(self) -> int:
        return self.count(ATTEMPTS)

    @property
    def interrupted(self) -> int:
        return self.count(INTERRUPTED)

    def count(self, field: str) -> int:
        """A counter field; blank (never counted) is 0. A ``number`` field may say ``2.0``."""
        raw = self.values.get(field, "").strip()
        try:
            return max(int(float(raw)), 0) if raw else 0
        except ValueError:
            return 0

    def time(self, field: str, tz: ZoneInfo) -> datetime | None:
        return parse_time(self.values.get(field, ""), tz)

    def get(self, field: str) -> str:
        return self.values.get(field, "")
