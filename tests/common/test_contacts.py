"""E-mail addresses: what is accepted, how a refusal reads (never quoting the address), masking
for logs, and the address-list settings."""

from __future__ import annotations

import pytest

from common.contacts import (
    InvalidEmail,
    allowed,
    mask_email,
    normalize_email,
    parse_address_list,
    pick_email,
)
from common.errors import ConfigError


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("  Ada@Example.ORG ", "Ada@example.org"),
        ("ada+study@example.org", "ada+study@example.org"),
        ("josé@exämple.org", "josé@exämple.org"),
    ],
)
def test_good_addresses_are_normalised(raw: str, normal: str) -> None:
    """Surrounding space goes, the domain is lower-cased, international addresses pass."""
    assert normalize_email(raw) == normal


@pytest.mark.parametrize(
    "raw",
    [
        "ada.lovelace",
        "ada.lovelace@",
        "ada..lovelace@example.org",
        "ada lovelace@example.org",
        "ada@localhost",
        "lovelace@example.invalid",
    ],
)
def test_bad_addresses_are_refused_without_quoting_them(raw: str) -> None:
    """A reason a coordinator can act on, but no part of the address (it is PHI)."""
    with pytest.raises(ValueError, match=r"\w") as caught:
        normalize_email(raw)
    reason = str(caught.value)
    assert reason and "lovelace" not in reason and "example" not in reason


def test_pick_email_takes_the_first_usable_field_and_names_what_failed() -> None:
    """Fields in order; a bad one is named with its reason; none at all is no_email."""
    values = {"email": "not-an-address", "email_2": "ada@example.org"}
    assert pick_email(values, ("email", "email_2")) == ("email_2", "ada@example.org")
    with pytest.raises(InvalidEmail) as bad:
        pick_email({"email": "not-an-address"}, ("email",))
    assert bad.value.code == "invalid_email" and "email:" in str(bad.value)
    with pytest.raises(InvalidEmail) as none:
        pick_email({"email": "  "}, ("email", "email_2"))
    assert none.value.code == "no_email" and "email, email_2" in str(none.value)


def test_masked_addresses_keep_only_first_letters_and_the_top_level_domain() -> None:
    """Enough to tell two log lines apart, never the address."""
    assert mask_email("ada.lovelace@example.org") == "a***@e***.org"
    assert mask_email("no-at-sign") == "***"


def test_address_lists_are_validated_and_the_allowlist_ignores_case() -> None:
    """ALERT_EMAIL_TO / EMAIL_ALLOWED_ADDRESSES: comma-separated, each checked."""
    listed = parse_address_list("a@example.org, B@Example.org,,a@example.org", "ALERT_EMAIL_TO")
    assert listed == ("a@example.org", "B@example.org")
    assert allowed("b@EXAMPLE.org", listed) and not allowed("c@example.org", listed)
    assert allowed("anyone@example.org", None)
    with pytest.raises(ConfigError, match="ALERT_EMAIL_TO: entry 2 is not an e-mail address"):
        parse_address_list("a@example.org, nope", "ALERT_EMAIL_TO")
