"""E-mail addresses: pick, validate with email-validator, and mask for logs.

Syntax only (``check_deliverability=False``): a DNS lookup per participant would make the send
path depend on the resolver and cost a round trip per record; Graph's ErrorInvalidRecipients
and bounces tell us the rest. Like phone numbers, addresses are PHI: reasons name the field and
what is wrong, never the address or its domain.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from email_validator import EmailNotValidError, validate_email

from common.errors import ConfigError, PermanentError


class InvalidEmail(PermanentError):
    """None of the configured e-mail fields holds an address we can write to."""


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


def pick_email(values: Mapping[str, str], fields: Sequence[str]) -> tuple[str, str]:
    """The first valid address among ``fields`` (in order), as (field, address).

    Raises InvalidEmail (``no_email`` / ``invalid_email``) naming the fields and what is wrong.
    """
    problems: list[str] = []
    for name in fields:
        raw = values.get(name, "")
        if not raw.strip():
            continue
        try:
            return name, normalize_email(raw)
        except ValueError as exc:
            problems.append(f"{name}: {exc}")
    if problems:
        raise InvalidEmail(
            "invalid_email", "no usable e-mail address (" + "; ".join(problems) + ")"
        )
    raise InvalidEmail("no_email", "no e-mail address in " + (", ".join(fields) or "EMAIL_FIELDS"))


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
