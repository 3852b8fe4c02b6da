"""Twilio Lookup v2 as the simulator serves it: a phone number's line type.

``GET /v2/PhoneNumbers/{PhoneNumber}`` on ``lookups.twilio.com``, with
``Fields=line_type_intelligence`` for the line type package (twilio.com/docs/lookup/v2-api and
its Line Type Intelligence page; the answers are those of twilio-oai's ``twilio_lookups_v2.json``
examples). The answer always carries the basic lookup (``valid``; ``validation_errors``, null
for a valid number; the E.164 number and its country); a package not asked for is ``null``, as is
every package of a number that is not valid. Twilio charges the package per request, so the
simulator counts the requests that asked for it (:attr:`LineTypes.charged`).

The line type: the one a test or rehearsal gave the number (:class:`LineTypes`), else Twilio's
test numbers that stand for "not a mobile" (``+15005550009``, which a create refuses with 21614,
and ``+15005553006``, undelivered 30006) are ``landline``, else phonenumbers' number type, where
the US and Canada's "fixed line or mobile" reads ``mobile`` (a real lookup would ask the carrier).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from urllib.parse import unquote

import phonenumbers

from sandbox.twilio.errors import TwilioApiError

HOST = "https://lookups.twilio.com"
ROUTE = re.compile(r"^/v2/PhoneNumbers/(?P<number>[^/]+)$")
PACKAGE = "line_type_intelligence"
# Every package Lookup v2 may add; each is null unless asked for (only ours is simulated).
PACKAGES = (
    "caller_name", "sim_swap", "call_forwarding", "line_status", PACKAGE, "identity_match",
    "reassigned_number", "sms_pumping_risk", "phone_number_quality_score", "pre_fill",
)  # fmt: skip
NOT_MOBILE = {"+15005550009": "landline", "+15005553006": "landline"}
_KINDS = {
    phonenumbers.PhoneNumberType.MOBILE: "mobile",
    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE: "mobile",
    phonenumbers.PhoneNumberType.FIXED_LINE: "landline",
    phonenumbers.PhoneNumberType.TOLL_FREE: "tollFree",
    phonenumbers.PhoneNumberType.PREMIUM_RATE: "premium",
    phonenumbers.PhoneNumberType.SHARED_COST: "sharedCost",
    phonenumbers.PhoneNumberType.VOIP: "nonFixedVoip",
    phonenumbers.PhoneNumberType.PERSONAL_NUMBER: "personal",
    phonenumbers.PhoneNumberType.PAGER: "pager",
    phonenumbers.PhoneNumberType.UAN: "uan",
    phonenumbers.PhoneNumberType.VOICEMAIL: "voicemail",
}
# phonenumbers' reasons a number is not possible, as Lookup v2 names them.
_ERRORS = {
    phonenumbers.ValidationResult.INVALID_COUNTRY_CODE: "INVALID_COUNTRY_CODE",
    phonenumbers.ValidationResult.TOO_SHORT: "TOO_SHORT",
    phonenumbers.ValidationResult.TOO_LONG: "TOO_LONG",
    phonenumbers.ValidationResult.INVALID_LENGTH: "INVALID_LENGTH",
}


class LineTypes:
    """The line types the simulator answers, and how many charged lookups it served."""

    def __init__(self, given: Mapping[str, str] | None = None) -> None:
        self._given = dict(given or {})
        self._lock = threading.Lock()
        self.charged = 0  # requests that asked for Line Type Intelligence of a valid number

    def set(self, number: str, kind: str) -> None:
        """From now on, ``number`` (E.164) is of line type ``kind`` (``landline``...)."""
        with self._lock:
            self._given[number] = kind

    def answer(self, path: str, params: Mapping[str, list[str]]) -> dict[str, object]:
        """The JSON of a GET of ``path``; TwilioApiError for any other resource."""
        route = ROUTE.match(path)
        if route is None:
            raise TwilioApiError(404, 20404, f"The requested resource {path} was not found")
        raw = unquote(route.group("number"))
        fields = {f.strip() for value in params.get("Fields", []) for f in value.split(",")}
        try:
            number: phonenumbers.PhoneNumber | None = phonenumbers.parse(raw, "US")
        except phonenumbers.NumberParseException:  # Lookup's default region: North America
            number = None
        packages: dict[str, object] = {name: None for name in PACKAGES}
        if number is None or not phonenumbers.is_valid_number(number):
            why = "NOT_A_NUMBER" if number is None else _not_valid(number)
            basic: dict[str, object] = {
                "calling_country_code": None, "country_code": None, "phone_number": raw,
                "national_format": None, "valid": False, "validation_errors": [why],
            }  # fmt: skip
            return {**basic, **packages, "url": f"{HOST}/v2/PhoneNumbers/{raw}"}
        e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        basic = {
            "calling_country_code": str(number.country_code),
            "country_code": phonenumbers.region_code_for_number(number),
            "phone_number": e164,
            "national_format": phonenumbers.format_number(
                number, phonenumbers.PhoneNumberFormat.NATIONAL
            ),
            "valid": True,
            "validation_errors": None,
        }
        if PACKAGE in fields:
            packages[PACKAGE] = self._line_type(e164, number)
        return {**basic, **packages, "url": f"{HOST}/v2/PhoneNumbers/{e164}"}

    def _line_type(self, e164: str, number: phonenumbers.PhoneNumber) -> dict[str, object]:
        with self._lock:
            self.charged += 1
            kind = self._given.get(e164) or NOT_MOBILE.get(e164)
        kind = kind or _KINDS.get(phonenumbers.number_type(number), "unknown")
        carrier = kind in ("mobile", "landline", "fixedVoip", "nonFixedVoip")
        return {
            "mobile_country_code": "310" if kind == "mobile" else None,
            "mobile_network_code": "456" if kind == "mobile" else None,
            "carrier_name": "Sandbox Carrier" if carrier else None,
            "type": kind,
            "error_code": None,
        }


def _not_valid(number: phonenumbers.PhoneNumber) -> str:
    reason = phonenumbers.is_possible_number_with_reason(number)
    return _ERRORS.get(reason, "INVALID_BUT_POSSIBLE")
