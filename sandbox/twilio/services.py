"""The Messaging Service's senders, as Twilio's Messaging API v1 serves them.

``GET /v1/Services/{ServiceSid}/PhoneNumbers`` (and ``/PhoneNumbers/{Sid}``) on
``messaging.twilio.com``: the phone numbers the account has put in its one Messaging Service
(twilio-oai ``twilio_messaging_v1.json``, ListPhoneNumberResponse). Pages are Messaging v1's:
the records under ``phone_numbers`` and a ``meta`` object whose ``key`` names them, with absolute
``*_page_url``s (``PageSize`` 1-1000, default 50; ``Page`` the index). Dates are ISO 8601 in GMT.
Another service's SID is a 404 (20404), a bad ``PageSize`` a 400 (20001).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import phonenumbers

from sandbox.twilio.errors import TwilioApiError, bad_request

HOST = "https://messaging.twilio.com"
ROUTE = re.compile(r"^/v1/Services/(?P<service>[^/]+)/PhoneNumbers(?:/(?P<sid>[^/]+))?$")
DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 50, 1000


@dataclass(frozen=True)
class ServiceNumber:
    """One number in the Messaging Service's sender pool."""

    sid: str  # PN + 32 hex, the IncomingPhoneNumber's SID
    phone_number: str  # E.164
    added: datetime

    def to_json(self, account_sid: str, service_sid: str) -> dict[str, object]:
        stamp = self.added.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        region = phonenumbers.region_code_for_number(phonenumbers.parse(self.phone_number))
        return {
            "sid": self.sid,
            "account_sid": account_sid,
            "service_sid": service_sid,
            "date_created": stamp,
            "date_updated": stamp,
            "phone_number": self.phone_number,
            "country_code": region or "US",
            "capabilities": ["SMS", "MMS"],
            "url": f"{HOST}/v1/Services/{service_sid}/PhoneNumbers/{self.sid}",
        }


def answer(
    path: str,
    params: Mapping[str, list[str]],
    numbers: Sequence[ServiceNumber],
    account_sid: str,
    service_sid: str,
) -> dict[str, object]:
    """The JSON for a GET of ``path`` (a list page, or one number); TwilioApiError otherwise."""
    route = ROUTE.match(path)
    if route is None or route.group("service") != service_sid:
        raise TwilioApiError(404, 20404, f"The requested resource {path} was not found")
    if sid := route.group("sid"):
        for number in numbers:
            if number.sid == sid:
                return number.to_json(account_sid, service_sid)
        raise TwilioApiError(404, 20404, f"The requested resource {path} was not found")
    size = _integer(params, "PageSize", DEFAULT_PAGE_SIZE)
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise bad_request(20001, f"Invalid PageSize: {size}")
    page = _integer(params, "Page", 0)
    rows = numbers[page * size : (page + 1) * size]
    base = f"{HOST}/v1/Services/{service_sid}/PhoneNumbers"

    def url(index: int) -> str:
        return f"{base}?PageSize={size}&Page={index}"

    more = (page + 1) * size < len(numbers)
    return {
        "phone_numbers": [number.to_json(account_sid, service_sid) for number in rows],
        "meta": {
            "page": page,
            "page_size": size,
            "first_page_url": url(0),
            "previous_page_url": url(page - 1) if page > 0 else None,
            "next_page_url": url(page + 1) if more else None,
            "key": "phone_numbers",
            "url": url(page),
        },
    }


def _integer(params: Mapping[str, list[str]], name: str, default: int) -> int:
    raw = params.get(name, [""])[0]
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise bad_request(20001, f"Invalid {name}: {raw}") from None
