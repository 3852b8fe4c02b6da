"""Numbers that cannot take an SMS (phonenumbers says: a landline where the numbering plan
tells, a toll-free, premium-rate or shared-cost number) are never texted: ``skipped`` with the
reason, or the e-mail on a rule that falls back to it; a mobile in a later phone field wins."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from common.contacts import pick_phone
from common.errors import InvalidPhone
from services import registration_detector
from services.sms_sender import Sender
from tests.services.conftest import Rig, start_rules_rig

WELCOME = """
[[rule]]
name = "welcome"
when = "[registration_complete] = '2'"
delay_minutes = 0
template = "Welcome, {field:first_name}."
"""
FALLBACK = WELCOME + 'channel = "sms,email"\nsubject = "Welcome"\nemail_template = "Welcome."\n'


@pytest.fixture
def sms_rig(tmp_path: Path) -> Iterator[Rig]:
    yield from start_rules_rig(tmp_path, WELCOME, PHONE_REGION="GB")


@pytest.fixture
def fallback_rig(tmp_path: Path) -> Iterator[Rig]:
    yield from start_rules_rig(tmp_path, FALLBACK, PHONE_REGION="GB", EMAIL_MAX_PER_MINUTE="600")


def join(rig: Rig, record_id: str, phone: str, **values: str) -> None:
    rig.register(record_id, phone)
    rig.set(record_id, email="", **values)
    registration_detector.run_once(rig.ctx(needs_twilio=False))


@pytest.mark.parametrize(
    ("phone", "kind"),
    [
        ("020 7946 0000", "a landline"),  # London
        ("0800 111 1111", "a toll-free number"),
        ("+1 800 555 0100", "a toll-free number"),
        ("0909 879 0000", "a premium-rate number"),
        ("+34 901 123 456", "a shared-cost number"),  # Spain's 901
    ],
)
def test_a_number_that_cannot_take_sms_is_skipped_with_its_reason(
    sms_rig: Rig, phone: str, kind: str
) -> None:
    """skipped, not_textable, the kind of number named (never its digits); nothing is sent."""
    join(sms_rig, "1", phone)
    counts = Sender(dry_run=False).run_once(sms_rig.ctx()).counts
    assert counts["not_sent_not_textable"] == 1 and sms_rig.twilio.sent() == []
    values = sms_rig.values("1")
    assert (values["welcome_status"], values["welcome_error_code"]) == ("skipped", "not_textable")
    assert f"phone_number: {kind}, which cannot take an SMS" in values["welcome_error_message"]
    assert not any(digit in values["welcome_error_message"] for digit in "0123456789")


def test_a_mobile_in_the_next_phone_field_is_texted_instead(sms_rig: Rig) -> None:
    """PHONE_FIELDS in order: a landline first, a mobile second: the mobile gets it."""
    join(sms_rig, "1", "020 7946 0000", mobile="07400 123456")
    Sender(dry_run=False).run_once(sms_rig.ctx())
    assert sms_rig.values("1")["welcome_status"] == "sms_sent"
    assert [m["to"] for m in sms_rig.twilio.sent()] == ["+447400123456"]


def test_sms_email_falls_back_to_the_address_for_a_landline(fallback_rig: Rig) -> None:
    """channel = "sms,email": a landline only is no reason to give up: the e-mail goes."""
    fallback_rig.register("1", "020 7946 0000")
    fallback_rig.set("1", email="ada@example.org")
    registration_detector.run_once(fallback_rig.ctx(needs_twilio=False))
    Sender(dry_run=False).run_once(fallback_rig.ctx())
    values = fallback_rig.values("1")
    assert (values["welcome_status"], values["welcome_channel"]) == ("sent_email", "email")
    assert fallback_rig.twilio.sent() == [] and len(fallback_rig.mailed_to("ada@example.org")) == 1


@pytest.mark.parametrize(
    ("phone", "region"),
    [
        ("(617) 555-0100", "US"),
        ("+1 500 555 0006", "US"),
        ("07400 123456", "GB"),
        ("06 12 34 56 78", "FR"),
    ],
)
def test_mobiles_and_us_numbers_pass(phone: str, region: str) -> None:
    """US and Canadian numbers cannot be told apart (FIXED_LINE_OR_MOBILE): they pass, as do
    mobiles and Twilio's test numbers."""
    assert pick_phone({"phone": phone}, ["phone"], region)[0] == "phone"


def test_an_unusable_number_among_them_is_invalid_not_untextable() -> None:
    """A landline and a mistyped number: invalid_phone (fix the number), each reason given."""
    with pytest.raises(InvalidPhone) as caught:
        pick_phone({"phone": "020 7946 0000", "mobile": "12"}, ["phone", "mobile"], "GB")
    assert caught.value.code == "invalid_phone"
    assert "phone: a landline" in str(caught.value) and "mobile: wrong number" in str(caught.value)
