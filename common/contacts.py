"""A participant's phone number and e-mail address: pick the first usable one of the configured
fields, normalize it, and mask it for logs.

Phones are normalized to E.164 with phonenumbers, and a number that phonenumbers says cannot take
an SMS (a landline where its numbering plan tells landlines from mobiles, as the UK's does; a
toll-free, premium-rate or shared-cost number) is passed over, with its reason: texting it would
cost a message and never arrive. Addresses are checked by email-validator for
syntax only (``check_deliverability=False``): a DNS lookup per participant would make the send
path depend on the resolver and cost a round trip per record; Graph's ErrorInvalidRecipients and
bounces tell us the rest. Both are PHI: reasons name the field and what is wrong, never the
number, the address or its domain.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from common.errors import ConfigError, InvalidEmail, InvalidPhone

# -- picking ------------------------------------------------------------------------------------
NOT_TEXTABLE = "not_textable"  # the reason code of a number that cannot take an SMS


def pick_phone(
    values: Mapping[str, str],
    fields: Sequence[str],
    region: str,
    refuse: Callable[[str], str | None] | None = None,
) -> tuple[str, str]:
    """The first phone among ``fields`` (in order) that can take an SMS, as (field, E.164).
    ``refuse``, given the E.164 of one phonenumbers lets through, may say why it cannot take an
    SMS after all (what Twilio Lookup said of it), without the digits.

    Raises InvalidPhone naming the fields tried and why each failed, without the digits:
    ``no_phone`` (none given), ``not_textable`` (only numbers that cannot take an SMS: a
    landline, toll-free...) or ``invalid_phone`` (any other unusable one among them).
    """

    def usable(raw: str) -> str:
        e164 = textable_phone(raw, region)
        if refuse is not None and (why := refuse(e164)):
            raise ValueError(f"{why}, {_CANNOT_TEXT}")
        return e164

    found, problems = _first_usable(values, fields, usable)
    if found is not None:
        return found
    if problems:
        why = "; ".join(problems)
        if all(problem.endswith(_CANNOT_TEXT) for problem in problems):
            raise InvalidPhone(NOT_TEXTABLE, f"no phone number that can take an SMS ({why})")
        raise InvalidPhone("invalid_phone", f"no usable phone number ({why})")
    raise InvalidPhone("no_phone", "no phone number in " + ", ".join(fields))


def pick_email(values: Mapping[str, str], fields: Sequence[str]) -> tuple[str, str]:
    """The first valid address among ``fields`` (in order), as (field, address).

    Raises InvalidEmail (``no_email`` / ``invalid_email``) naming the fields and what is wrong.
    """
    found, problems = _first_usable(values, fields, normalize_email)
    if found is not None:
        return found
    if problems:
        raise InvalidEmail(
            "invalid_email", "no usable e-mail address (" + "; ".join(problems) + ")"
        )
    raise InvalidEmail("no_email", "no e-mail address in " + (", ".join(fields) or "EMAIL_FIELDS"))


def _first_usable(
    values: Mapping[str, str], fields: Sequence[str], normalize: Callable[[str], str]
) -> tuple[tuple[str, str] | None, list[str]]:
    """(field, normalized value) of the first non-blank field ``normalize`` accepts, and why each
    non-blank one before it was refused."""
    problems: list[str] = []
    for name in fields:
        raw = values.get(name, "")
        if not raw.strip():
            continue
        try:
            return (name, normalize(raw)), problems
        except ValueError as exc:
            problems.append(f"{name}: {exc}")
    return None, problems


# -- phones -------------------------------------------------------------------------------------
def normalize_phone(raw: str, region: str) -> str:
    """``raw`` as E.164 (``+16175550100``); ValueError with a reason (no digits) if unusable."""
    text = raw.strip()
    if not text:
        raise ValueError("blank")
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise ValueError("not a phone number") from None
    if not phonenumbers.is_possible_number(number):
        raise ValueError("wrong number of digits")
    if not phonenumbers.is_valid_number(number):
        raise ValueError(f"not a valid number for region {region} or its country code")
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


# phonenumbers' number types that never take an SMS. FIXED_LINE is said only where the numbering
# plan tells landlines from mobiles (GB, FR, DE, AU...); the US and Canada give
# FIXED_LINE_OR_MOBILE, which passes.
_NO_SMS = {
    phonenumbers.PhoneNumberType.FIXED_LINE: "a landline",
    phonenumbers.PhoneNumberType.TOLL_FREE: "a toll-free number",
    phonenumbers.PhoneNumberType.PREMIUM_RATE: "a premium-rate number",
    phonenumbers.PhoneNumberType.SHARED_COST: "a shared-cost number",
}
_CANNOT_TEXT = "which cannot take an SMS"


def textable_phone(raw: str, region: str) -> str:
    """``raw`` as E.164 if it can take an SMS; ValueError with the reason (no digits) if it is
    unusable (:func:`normalize_phone`) or of a kind that cannot (a landline, toll-free...)."""
    e164 = normalize_phone(raw, region)
    kind = _NO_SMS.get(phonenumbers.number_type(phonenumbers.parse(e164, None)))
    if kind is not None:
        raise ValueError(f"{kind}, {_CANNOT_TEXT}")
    return e164


def mask_phone(e164: str) -> str:
    """``+16175550100`` -> ``+1******0100``: country code and last four digits only."""
    if not e164:
        return ""
    try:
        number = phonenumbers.parse(e164, None)
        country = f"+{number.country_code}"
        national = str(number.national_number)
    except phonenumbers.NumberParseException:
        digits = "".join(ch for ch in e164 if ch.isdigit())
        return "*" * max(len(digits) - 4, 0) + digits[-4:]
    hidden = max(len(national) - 4, 0)
    return country + "*" * hidden + national[-4:]


# -- e-mail addresses ---------------------------------------------------------------------------
def normalize_email(raw: str) -> str:
    """``raw`` with its domain lower-cased (email-validator's normal form); ValueError with a
    reason that quotes no part of the address."""
    text = raw.strip()
    if not text:
        raise ValueError("blank")
    try:
        return str(validate_email(text, check_deliverability=False).normalized)
    except EmailNotValidError as exc:
        reason = str(exc).rstrip(".")
        local, _, domain = text.rpartition("@")
        quoted = [part for part in (local, domain) if len(part) > 2 and part in reason]
        raise ValueError("not a valid e-mail address" if quoted else reason) from None


def same_address(a: str, b: str) -> bool:
    """Addresses compared as mail systems do in practice: case-insensitively."""
    return a.strip().casefold() == b.strip().casefold()


def parse_address_list(text: str, setting: str) -> tuple[str, ...]:
    """A comma-separated list of addresses (ALERT_EMAIL_TO, EMAIL_ALLOWED_ADDRESSES)."""
    addresses: list[str] = []
    for position, item in enumerate((part.strip() for part in text.split(",")), 1):
        if not item:
            continue
        try:
            addresses.append(normalize_email(item))
        except ValueError as exc:
            raise ConfigError(
                f"{setting}: entry {position} is not an e-mail address ({exc}); write "
                "addresses separated by commas, e.g. coordinator@example.org"
            ) from None
    return tuple(dict.fromkeys(addresses))


def mask_email(address: str) -> str:
    """``ada.lovelace@example.org`` -> ``a***@e***.org``: enough to tell two apart in a log."""
    local, at, domain = address.rpartition("@")
    if not at:
        return "***"
    name, dot, top = domain.rpartition(".")
    masked_domain = f"{name[:1]}***{dot}{top}" if dot else f"{domain[:1]}***"
    return f"{local[:1]}***@{masked_domain}"


def allowed(address: str, allow: Iterable[str] | None) -> bool:
    """True when there is no allowlist or ``address`` is on it."""
    return allow is None or any(same_address(address, a) for a in allow)
