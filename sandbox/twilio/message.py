"""One stored message and the ways Twilio shows it: resource JSON and webhook parameters.

The JSON follows TWILIO_API.md §1.4 exactly: RFC 2822 GMT dates, ``num_segments``/``num_media``/
``price`` as strings, ``error_code`` as an int or null, relative ``uri``/``subresource_uris``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime

from sandbox.twilio.lifecycle import Step
from sandbox.twilio.numbers import ERROR_TITLES

API_VERSION = "2010-04-01"
PRICE_PER_SEGMENT = 0.0079  # USD, a typical US long-code rate; billed once the message is sent
PRICE_UNIT = "USD"


@dataclass
class Message:
    """A message as the simulator keeps it; ``steps`` are the status changes still to come."""

    sid: str
    seq: int
    direction: str
    to: str
    sender: str  # the number that sends it: ``From``, or the one a Messaging Service picks
    body: str
    num_media: int
    created: datetime  # UTC
    status: str
    steps: list[Step] = field(default_factory=list)
    from_shown: bool = True  # False while a Messaging Service has not picked the sender yet
    messaging_service_sid: str | None = None
    status_callback: str | None = None
    num_segments: int = 1
    updated: datetime | None = None
    sent: datetime | None = None
    error_code: int | None = None
    price: str | None = None
    deleted: bool = False

    def due(self, now: datetime) -> list[Step]:
        """Remove and return the steps whose time has come (in order)."""
        due: list[Step] = []
        while self.steps and (now - self.created).total_seconds() >= self.steps[0].after:
            due.append(self.steps.pop(0))
        return due

    def bill(self) -> None:
        """Set the (negative, string) price Twilio shows once a message is billed."""
        self.price = f"-{PRICE_PER_SEGMENT * max(self.num_segments, 1):.5f}"


def rfc2822(when: datetime | None) -> str | None:
    """``Thu, 24 Aug 2023 05:01:45 +0000`` (seconds precision, GMT), or None."""
    if when is None:
        return None
    return format_datetime(when.astimezone(UTC).replace(microsecond=0))


def message_uri(account_sid: str, sid: str) -> str:
    """The message's relative URI, as Twilio returns it."""
    return f"/{API_VERSION}/Accounts/{account_sid}/Messages/{sid}.json"


def to_json(message: Message, account_sid: str) -> dict[str, object]:
    """The Message resource JSON (create 201, fetch 200, list items)."""
    base = f"/{API_VERSION}/Accounts/{account_sid}/Messages/{message.sid}"
    return {
        "account_sid": account_sid,
        "api_version": API_VERSION,
        "body": message.body,
        "date_created": rfc2822(message.created),
        "date_sent": rfc2822(message.sent),
        "date_updated": rfc2822(message.updated or message.created),
        "direction": message.direction,
        "error_code": message.error_code,
        "error_message": ERROR_TITLES.get(message.error_code or 0),
        "from": message.sender if message.from_shown else None,
        "messaging_service_sid": message.messaging_service_sid,
        "num_media": str(message.num_media),
        "num_segments": str(message.num_segments),
        "price": message.price,
        "price_unit": PRICE_UNIT,
        "sid": message.sid,
        "status": message.status,
        "subresource_uris": {
            "media": f"{base}/Media.json",
            "feedback": f"{base}/Feedback.json",
        },
        "to": message.to,
        "uri": message_uri(account_sid, message.sid),
    }


def _webhook_params(message: Message, account_sid: str) -> dict[str, str]:
    """The parameters every webhook about a message carries (§2.1, §4.6)."""
    params = {
        "AccountSid": account_sid,
        "ApiVersion": API_VERSION,
        "From": message.sender,
        "MessageSid": message.sid,
        "SmsSid": message.sid,
        "SmsStatus": message.status,
        "To": message.to,
    }
    if message.messaging_service_sid:
        params["MessagingServiceSid"] = message.messaging_service_sid
    return params


def status_callback_params(message: Message, account_sid: str) -> dict[str, str]:
    """The form parameters of a status callback for the message's current status (§2.1)."""
    params = {**_webhook_params(message, account_sid), "MessageStatus": message.status}
    if message.error_code is not None:
        params["ErrorCode"] = str(message.error_code)
    if message.status in ("delivered", "undelivered") and message.updated is not None:
        # The carrier's receipt time, YYMMDDhhmm (Twilio changelog 2023-02-14).
        params["RawDlrDoneDate"] = message.updated.astimezone(UTC).strftime("%y%m%d%H%M")
    return params


def inbound_params(message: Message, account_sid: str) -> dict[str, str]:
    """The form parameters of the "a message comes in" webhook (TWILIO_API.md §4.6)."""
    return {
        **_webhook_params(message, account_sid),
        "Body": message.body,
        "NumMedia": str(message.num_media),
        "NumSegments": str(message.num_segments),
        "SmsMessageSid": message.sid,
    }
