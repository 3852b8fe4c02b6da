"""Checks of a Messages create request, in the order Twilio applies them (TWILIO_API.md §8.4).

``To`` missing (21604) -> sender missing (21603) -> no content (21602) -> Messaging Service
(21705/21701) -> ``From`` magic numbers and ownership (21212/21606/21611) -> ``To`` magic numbers
(21211/21612/21408/21610/21614) -> E.164 (21211) -> opted-out pair (21610) -> body over 1600
characters (21617) -> ValidityPeriod (90007) -> StatusCallback (21609) -> scheduling.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from sandbox.twilio.errors import TwilioApiError, bad_request
from sandbox.twilio.numbers import E164, MAGIC_FROM_ERRORS, MAGIC_FROM_OK, MAGIC_TO_ERRORS

MAX_BODY = 1600
MAX_VALIDITY = 36000
SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")


@dataclass(frozen=True)
class CreateRequest:
    """A create request that passed every check."""

    to: str
    sender: str
    body: str
    media_urls: tuple[str, ...]
    messaging_service_sid: str | None
    status_callback: str | None
    validity_period: int


def first(form: Mapping[str, list[str]], key: str) -> str | None:
    """The first value of ``key``, or None when absent."""
    values = form.get(key)
    return values[0] if values else None


def check_create(
    form: Mapping[str, list[str]],
    *,
    owned_numbers: frozenset[str],
    service_sid: str,
    service_sender: str,
    opted_out: Callable[[str, str], bool],
) -> CreateRequest:
    """The validated request, or the :class:`TwilioApiError` Twilio would answer with."""
    to = (first(form, "To") or "").strip()
    from_ = (first(form, "From") or "").strip()
    service = (first(form, "MessagingServiceSid") or "").strip()
    body = first(form, "Body") or ""
    media = tuple(url for url in form.get("MediaUrl", []) if url)
    if not to:
        raise bad_request(21604, "A 'To' phone number is required.")
    if not from_ and not service:
        raise bad_request(21603, "A 'From' phone number is required.")
    if not body and not media and not first(form, "ContentSid"):
        raise bad_request(21602, "Message body is required.")
    if service:
        _check_service(service, service_sid)
    sender = from_ or service_sender
    if from_:
        _check_from(from_, owned_numbers)
    if to in MAGIC_TO_ERRORS:
        code, text = MAGIC_TO_ERRORS[to]
        raise bad_request(code, text.format(number=to, sender=sender))
    if not E164.match(to):
        raise bad_request(21211, f"The 'To' number {to} is not a valid phone number.")
    if opted_out(to, sender):
        raise bad_request(21610, "Attempt to send to unsubscribed recipient")
    if len(body) > MAX_BODY:
        raise bad_request(21617, "The concatenated message body exceeds the 1600 character limit.")
    validity = _validity(first(form, "ValidityPeriod"))
    callback = first(form, "StatusCallback") or None
    if callback is not None:
        _check_callback(callback)
    if first(form, "ScheduleType"):
        _refuse_schedule(service)
    return CreateRequest(
        to=to,
        sender=sender,
        body=body,
        media_urls=media,
        messaging_service_sid=service or None,
        status_callback=callback,
        validity_period=validity,
    )


def _check_service(service: str, service_sid: str) -> None:
    if not SERVICE_SID.match(service):
        raise bad_request(21705, "The Messaging Service is invalid")
    if service != service_sid:
        raise TwilioApiError(
            400, 21701, f"The Messaging Service Sid {service} is invalid or does not exist"
        )


def _check_from(from_: str, owned_numbers: frozenset[str]) -> None:
    if from_ in MAGIC_FROM_ERRORS:
        code, text = MAGIC_FROM_ERRORS[from_]
        raise bad_request(code, text.format(number=from_))
    if from_ != MAGIC_FROM_OK and from_ not in owned_numbers:
        code, text = MAGIC_FROM_ERRORS["+15005550007"]
        raise bad_request(code, text.format(number=from_))


def _validity(raw: str | None) -> int:
    if raw is None or raw == "":
        return MAX_VALIDITY
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_VALIDITY:
        raise bad_request(
            90007, "Validity period can only be set to integers between 1 and 36,000 seconds."
        )
    return value


def _check_callback(url: str) -> None:
    parts = urlsplit(url)
    # Twilio also refuses underscores in the host name of a Messages StatusCallback.
    if parts.scheme not in ("http", "https") or not parts.hostname or "_" in parts.hostname:
        raise bad_request(21609, "The StatusCallback URL is not a valid URL.")


def _refuse_schedule(service: str) -> None:
    if not service:
        raise bad_request(35118, "MessagingServiceSid is required to schedule a message.")
    # Scheduling (status "scheduled", SendAt) is not simulated: refuse loudly rather than send
    # at once; 20001 is Twilio's "unknown parameter" code.
    raise bad_request(20001, "ScheduleType is not simulated by the sandbox.")
