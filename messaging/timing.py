"""When a rule's next message to a record is due, and when it is too late to send it.

- ``delay_minutes`` counts **elapsed** time from when the rule's ``when`` was first seen true
  (``R_registered_at``); each repeat follows the previous message by ``every_minutes``, elapsed.
- An ``anchor`` counts in **wall-clock** time in TIMEZONE: ``offset_minutes = -1440`` before a
  visit at 10:00 is 10:00 the day before, on either side of a daylight-saving change (an elapsed
  24 hours would be 09:00 or 11:00 there). A date-only anchor counts from its midnight. A local
  time that does not exist (the spring-forward gap) moves forward by the gap (02:30 -> 03:30).
- A message due *before* its anchor expires at the anchor: a reminder for a visit that has begun
  is never sent. One due at or after its anchor does not expire.

The anchor is read from REDCap every cycle, never stored, so moving a visit moves its reminder.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from common.field_types import WITH_SECONDS, WITHOUT_SECONDS
from messaging.rows import RuleRow

_DATE = "%Y-%m-%d"


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
        return datetime.min.replace(tzinfo=tz)
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
