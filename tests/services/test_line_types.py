"""TWILIO_LOOKUP=1: Twilio Lookup's line type, asked once per number before its first text and
kept on the record (relay_line_types), passes over the landlines phonenumbers cannot tell (US,
Canada) like those it can; an outage of Lookup never holds a message."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from messaging.checks import needs
from messaging.instrument import instrument_csv
from messaging.rules_file import rules_for
from sandbox.faults import Fault
from services import registration_detector
from services.admin.check import command_check
from services.sms_sender import Sender
from tests.services.conftest import Rig, start_rules_rig
from tests.services.killing import IMPORT, Step, kill_at

RULES = """
[[rule]]
name = "welcome"
when = "[registration_complete] = '2'"
delay_minutes = 0
template = "Welcome, {field:first_name}."

[[rule]]
name = "nudge"
when = "[welcome_status] = 'delivered' or [welcome_status] = 'sms_sent'"
delay_minutes = 0
template = "A nudge."
"""
FALLBACK = """
[[rule]]
name = "welcome"
when = "[registration_complete] = '2'"
delay_minutes = 0
channel = "sms,email"
template = "Welcome."
subject = "Welcome"
email_template = "Welcome."
"""
HOME = "+16175550100"
DESK = "+16175550123"  # a US landline: phonenumbers cannot tell, Lookup can


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    yield from start_rules_rig(tmp_path, RULES, TWILIO_LOOKUP="1")


def join(rig: Rig, record_id: str, phone: str, **values: str) -> None:
    rig.register(record_id, phone)
    rig.set(record_id, **{"email": "", **values})
    registration_detector.run_once(rig.ctx(needs_twilio=False))


def test_a_us_landline_is_skipped_and_a_mobile_texted_each_looked_up_once(rig: Rig) -> None:
    """The landline: skipped, not_textable, Lookup named, no digits; the mobile: texted. Each
    record holds its number's line type; the second rule's send asks Twilio nothing more."""
    rig.twilio.line_types.set(DESK, "landline")
    join(rig, "1", "(617) 555-0123")
    join(rig, "2", "(617) 555-0100")
    Sender(dry_run=False).run_once(rig.ctx())
    desk, home = rig.values("1"), rig.values("2")
    assert (desk["welcome_status"], desk["welcome_error_code"]) == ("skipped", "not_textable")
    why = desk["welcome_error_message"]
    assert "phone_number: Twilio Lookup says it is a landline, which cannot take an SMS" in why
    assert not any(digit in why for digit in "0123456789")
    assert home["welcome_status"] == "sms_sent"
    assert (desk["relay_line_types"], home["relay_line_types"]) == (
        f"{DESK} landline",
        f"{HOME} mobile",
    )
    assert rig.twilio.line_types.charged == 2
    registration_detector.run_once(rig.ctx(needs_twilio=False))
    Sender(dry_run=False).run_once(rig.ctx())
    assert rig.values("2")["nudge_status"] == "sms_sent"
    assert [m["to"] for m in rig.twilio.sent()] == [HOME, HOME]
    assert rig.twilio.line_types.charged == 2  # the nudge read the record's field


def test_a_mobile_in_the_next_phone_field_is_texted_instead(rig: Rig) -> None:
    """PHONE_FIELDS in order: the landline Lookup found first, the mobile second."""
    rig.twilio.line_types.set(DESK, "landline")
    join(rig, "1", "(617) 555-0123", mobile="(617) 555-0100")
    Sender(dry_run=False).run_once(rig.ctx())
    assert [m["to"] for m in rig.twilio.sent()] == [HOME]
    assert rig.values("1")["relay_line_types"].splitlines() == [
        f"{HOME} mobile",
        f"{DESK} landline",
    ]


def test_a_changed_number_is_looked_up_anew(rig: Rig) -> None:
    """The field knows the old number only: the new one is asked before it is texted."""
    join(rig, "1", "(617) 555-0100")
    rig.set("1", relay_line_types=f"{DESK} mobile")  # what an earlier number was
    Sender(dry_run=False).run_once(rig.ctx())
    assert rig.twilio.line_types.charged == 1
    assert rig.values("1")["relay_line_types"].splitlines() == [f"{HOME} mobile", f"{DESK} mobile"]


def test_a_lookup_outage_texts_the_number_and_asks_again_next_time(rig: Rig) -> None:
    """Lookup answers 503: the message goes as without TWILIO_LOOKUP, nothing is kept, and the
    next number is asked again once Lookup is back."""
    rig.twilio.server.faults.add(Fault(kind="status", status=503, match={"resource": "lookups"}))
    join(rig, "1", "(617) 555-0100")
    Sender(dry_run=False).run_once(rig.ctx())
    values = rig.values("1")
    assert values["welcome_status"] == "sms_sent" and values.get("relay_line_types", "") == ""
    assert rig.twilio.line_types.charged == 0
    registration_detector.run_once(rig.ctx(needs_twilio=False))
    Sender(dry_run=False).run_once(rig.ctx())
    assert rig.values("1")["relay_line_types"] == f"{HOME} mobile"


def test_a_dry_run_asks_lookup_nothing_and_writes_nothing(rig: Rig) -> None:
    join(rig, "1", "(617) 555-0100")
    Sender(dry_run=True).run_once(rig.ctx())
    assert rig.twilio.line_types.charged == 0 and rig.values("1").get("relay_line_types", "") == ""


def test_a_number_the_allowlist_leaves_out_is_not_looked_up(tmp_path: Path) -> None:
    """SMS_ALLOWED_NUMBERS (staging): the other numbers are skipped as not_allowed, as ever,
    and Twilio is asked (and paid) nothing for them."""
    for rig in start_rules_rig(tmp_path, RULES, TWILIO_LOOKUP="1", SMS_ALLOWED_NUMBERS=DESK):
        join(rig, "1", "(617) 555-0100")
        Sender(dry_run=False).run_once(rig.ctx())
        assert rig.values("1")["welcome_error_code"] == "not_allowed"
        assert rig.twilio.line_types.charged == 0


def test_sms_email_mails_a_us_landline(tmp_path: Path) -> None:
    """channel = "sms,email": the landline Lookup found is no reason to give up."""
    for rig in start_rules_rig(tmp_path, FALLBACK, TWILIO_LOOKUP="1", EMAIL_MAX_PER_MINUTE="600"):
        rig.twilio.line_types.set(DESK, "landline")
        join(rig, "1", "(617) 555-0123", email="ada@example.org")
        Sender(dry_run=False).run_once(rig.ctx())
        values = rig.values("1")
        assert (values["welcome_status"], values["welcome_channel"]) == ("sent_email", "email")
        assert rig.twilio.sent() == [] and len(rig.mailed_to("ada@example.org")) == 1


def test_without_twilio_lookup_a_us_landline_is_texted(tmp_path: Path) -> None:
    """The default: Twilio is asked nothing, and the project needs no line-type field."""
    for rig in start_rules_rig(tmp_path, RULES):
        rig.twilio.line_types.set(DESK, "landline")
        join(rig, "1", "(617) 555-0123")
        Sender(dry_run=False).run_once(rig.ctx())
        assert [m["to"] for m in rig.twilio.sent()] == [DESK]
        assert rig.twilio.line_types.charged == 0


def test_admin_check_names_the_missing_field_and_the_fix(
    rig: Rig, capsys: pytest.CaptureFixture[str]
) -> None:
    """With relay_line_types the check says a lookup is charged; without it, it fails naming
    the field and the fix, exit 3 (the project), as the services would."""
    env_file = str(rig.env_file())
    assert command_check(env_file, {}) == 0
    [line] = [x for x in capsys.readouterr().out.splitlines() if "Twilio Lookup" in x]
    assert line.startswith("[ok  ] Twilio Lookup:") and "Twilio charges each lookup" in line
    rig.project.fields[:] = [f for f in rig.project.fields if f.name != "relay_line_types"]
    assert command_check(env_file, {}) == 3
    out = capsys.readouterr().out
    assert "[FAIL] Twilio Lookup: relay_line_types missing" in out
    fix = out[out.index("[FAIL] Twilio Lookup") :].splitlines()[1]
    assert "admin instrument" in fix and "(or set TWILIO_LOOKUP=0)" in fix


def test_admin_instrument_prints_the_field_only_with_twilio_lookup(rig: Rig) -> None:
    rules = rules_for(rig.settings())
    assert "relay_line_types," in instrument_csv(rules, line_types=True)
    assert "relay_line_types" not in instrument_csv(rules)
    assert needs(rules, rig.settings()).sms


LOOKUP = {"resource": "lookups"}
KILLS = [
    ("lookup lost", "twilio", LOOKUP, False, 0),
    ("looked up, answer lost", "twilio", LOOKUP, True, 0),
    ("line type write lost", "redcap", IMPORT, False, 0),
    ("line type written, answer lost", "redcap", IMPORT, True, 0),
]


@pytest.mark.parametrize("step", KILLS, ids=[step[0] for step in KILLS])
def test_a_sender_killed_around_a_lookup_texts_once_and_pays_at_most_twice(
    rig: Rig, step: Step
) -> None:
    """kill -9 at the lookup or at the write of its answer: the next run texts the participant
    once, the record holds the line type, and Twilio charged one lookup more at most."""
    join(rig, "1", "(617) 555-0100")
    assert kill_at(rig, step, TWILIO_LOOKUP="1")
    assert rig.twilio.sent() == []  # the kill came before any claim
    Sender(dry_run=False).run_once(rig.ctx())
    values = rig.values("1")
    assert values["welcome_status"] == "sms_sent" and len(rig.twilio.sent()) == 1
    assert values["relay_line_types"] == f"{HOME} mobile"
    assert rig.twilio.line_types.charged <= 2
