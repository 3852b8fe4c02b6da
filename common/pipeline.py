"""The pipeline's state model: the status codes and the REDCap fields that hold all state.

``pipeline_status`` is the queue. Transitions (README "How it works" draws them)::

    (blank) --detector--> registered --sender claims--> sending --Twilio accepted--> sms_sent
    (blank) --admin baseline--> baseline          (never messaged)
    sending --reconcile: message found--> sms_sent
    sending --reconcile: none found / transient--> registered   (or failed after max attempts)
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


REQUEUEABLE = frozenset(
    {Status.FAILED, Status.UNDELIVERED, Status.SKIPPED, Status.NEEDS_REVIEW, Status.UNCONFIRMED}
)

STATUS = "pipeline_status"
REGISTERED_AT = "pipeline_registered_at"
CLAIMED_AT = "pipeline_sms_claimed_at"
SENT_AT = "pipeline_sms_sent_at"
CHECKED_AT = "pipeline_delivery_checked_at"
ATTEMPTS = "pipeline_sms_attempts"
SID = "pipeline_sms_sid"
SMS_TO = "pipeline_sms_to"
DELIVERY_STATUS = "pipeline_delivery_status"
ERROR_CODE = "pipeline_error_code"
ERROR_MESSAGE = "pipeline_error_message"

# name -> (REDCap field type, validation): what `admin check` expects the instrument to hold.
PIPELINE_FIELDS: dict[str, tuple[str, str]] = {
    STATUS: ("dropdown", ""),
    REGISTERED_AT: ("text", "datetime_seconds_ymd"),
    CLAIMED_AT: ("text", "datetime_seconds_ymd"),
    SENT_AT: ("text", "datetime_seconds_ymd"),
    CHECKED_AT: ("text", "datetime_seconds_ymd"),
    ATTEMPTS: ("text", "integer"),
    SID: ("text", ""),
    SMS_TO: ("text", ""),
    DELIVERY_STATUS: ("text", ""),
    ERROR_CODE: ("text", ""),
    ERROR_MESSAGE: ("notes", ""),
}

REDCAP_TIME = "%Y-%m-%d %H:%M:%S"


def format_time(moment: datetime, tz: ZoneInfo) -> str:
    """An aware time as REDCap's ``datetime_seconds_ymd``, in the study's zone."""
    return moment.astimezone(tz).strftime(REDCAP_TIME)


def parse_time(text: str, tz: ZoneInfo) -> datetime | None:
    """A stored ``datetime_seconds_ymd`` (study zone) as an aware time; None if blank or bad."""
    text = text.strip()
    for pattern in (REDCAP_TIME, "%Y-%m-%d %H:%M"):
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
        raw = self.values.get(ATTEMPTS, "").strip()
        return int(raw) if raw.isdigit() else 0

    def time(self, field: str, tz: ZoneInfo) -> datetime | None:
        return parse_time(self.values.get(field, ""), tz)

    def get(self, field: str) -> str:
        return self.values.get(field, "")
