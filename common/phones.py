"""Phone numbers: pick, normalize to E.164 with phonenumbers, and mask for logs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import phonenumbers

from common.errors import InvalidPhone


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


def pick_phone(values: Mapping[str, str], fields: Sequence[str], region: str) -> tuple[str, str]:
    """The first usable phone among ``fields`` (in order), as (field, E.164).

    Raises InvalidPhone naming the fields tried and why each failed, without the digits.
    """
    problems: list[str] = []
    for name in fields:
        raw = values.get(name, "")
        if not raw.strip():
            continue
        try:
            return name, normalize_phone(raw, region)
        except ValueError as exc:
            problems.append(f"{name}: {exc}")
    if problems:
        raise InvalidPhone("invalid_phone", "no usable phone number (" + "; ".join(problems) + ")")
    raise InvalidPhone("no_phone", "no phone number in " + ", ".join(fields))


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
