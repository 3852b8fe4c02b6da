"""kill -9 of the sender at every step of an e-mail's send path: never two mails, none lost unseen.

As in test_crash.py, one request of the send path hangs (before or after the server applies it),
the real sender process is SIGKILLed while stuck there, and fresh senders run until the record
settles. What must hold depends on whether Sent Items can be read:

- never two mails, whatever the step;
- a mail that went is ``sent_email`` when Sent Items can be read (its copy is found), else
  ``needs_review``; a launched mail (its id written) that never went is ``needs_review`` once
  the grace for a late copy is over (EMAIL_SENT_ITEMS_GRACE_MINUTES, 0 here): a missing copy
  alone never resends; a claim without an id never reached Graph and is sent, once. The review
  names the ``x-redcap-relay-id`` to search for. Which step ends where is pinned exactly
  (:data:`WITH_SENT_ITEMS`, :data:`WITHOUT_SENT_ITEMS`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from common.graph_client import MESSAGE_ID_HEADER
from services import registration_detector
from tests.services.conftest import Rig, start_rules_rig
from tests.services.killing import IMPORT, KILL_SETTINGS, Step, kill_at

RULE = """
[[rule]]
name = "invite"
when = "[registration_complete] = '2'"
delay_minutes = 0
survey = "interest_form"
channel = "{channel}"
subject = "Your survey, {{field:first_name}}"
email_template = "Dear {{field:first_name}},\\n\\nYour survey: {{survey_link}}\\n"
"""
SMS_TEMPLATE = 'template = "Hi {field:first_name}, your survey: {survey_link}"\n'
PHONE = "+16175550100"
SEND_MAIL = {"service": "graph", "op": "sendMail"}

# An e-mail's kill points: the claim import, the launch import (its mail id, with the outcomes
# so far), the sendMail, the result import; each lost before or after it is applied.
STEPS: list[Step] = [
    ("claim write lost", "redcap", IMPORT, False, 0),
    ("claim written, answer lost", "redcap", IMPORT, True, 0),
    ("launch write lost", "redcap", IMPORT, False, 1),
    ("launched, answer lost", "redcap", IMPORT, True, 1),
    ("sendMail lost", "microsoft", SEND_MAIL, False, 0),
    ("sendMail applied, answer lost", "microsoft", SEND_MAIL, True, 0),
    ("result write lost", "redcap", IMPORT, False, 2),
    ("result written, answer lost", "redcap", IMPORT, True, 2),
]
# Where each step ends after restarts: (status, mails). Only a launched mail (its id written)
# that a crash leaves unrecorded may end in review, with none; a claim without an id never
# reached Graph and is sent, once; a mail that went unrecorded is adopted from Sent Items, or
# reviewed.
WITH_SENT_ITEMS = {
    "claim write lost": ("sent_email", 1),
    "claim written, answer lost": ("sent_email", 1),
    "launch write lost": ("sent_email", 1),
    "launched, answer lost": ("needs_review", 0),
    "sendMail lost": ("needs_review", 0),
    "sendMail applied, answer lost": ("sent_email", 1),
    "result write lost": ("sent_email", 1),
    "result written, answer lost": ("sent_email", 1),
}
WITHOUT_SENT_ITEMS = {
    "claim write lost": ("sent_email", 1),  # nothing written: sent as if nothing had happened
    "claim written, answer lost": ("sent_email", 1),  # no mail id: given back, then sent
    "launch write lost": ("sent_email", 1),
    "launched, answer lost": ("needs_review", 0),
    "sendMail lost": ("needs_review", 0),
    "sendMail applied, answer lost": ("needs_review", 1),
    "result write lost": ("needs_review", 1),
    "result written, answer lost": ("sent_email", 1),
}
SETTLED = ("sent_email", "sms_sent", "needs_review")
SETTINGS = {**KILL_SETTINGS, "EMAIL_SENT_ITEMS_GRACE_MINUTES": "0"}


def address(record_id: str) -> str:
    return f"participant{record_id}@example.org"


@pytest.fixture
def mail_rig(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Rig]:
    """An e-mail rule's rig; ``request.param``: (channel, GRAPH_CAN_READ_SENT)."""
    channel, can_read_sent = getattr(request, "param", ("email", "1"))
    text = RULE.format(channel=channel) + (SMS_TEMPLATE if "sms" in channel else "")
    yield from start_rules_rig(
        tmp_path, text, EMAIL_MAX_PER_MINUTE="6000", GRAPH_CAN_READ_SENT=can_read_sent
    )


def join(rig: Rig, record_id: str, phone: str = "") -> None:
    rig.register(record_id, phone)
    if not phone:
        rig.set(record_id, email=address(record_id))
    registration_detector.run_once(rig.ctx(needs_twilio=False))


def status(rig: Rig, record_id: str) -> str:
    return rig.values(record_id).get("invite_status", "")


def settle(rig: Rig, record_ids: Sequence[str]) -> None:
    """Fresh senders, as systemd would restart them, until every record settles; then one more,
    which must change nothing (a settled record is never sent again)."""
    for _ in range(4):
        done = rig.run("services.sms_sender", "--once", timeout=30, **SETTINGS)
        assert done.returncode == 0, done.stderr
        if all(status(rig, rid) in SETTLED for rid in record_ids):
            break
    before = {rid: (rig.values(rid), len(rig.mailed_to(address(rid)))) for rid in record_ids}
    done = rig.run("services.sms_sender", "--once", timeout=30, **SETTINGS)
    assert done.returncode == 0, done.stderr
    assert {rid: (rig.values(rid), len(rig.mailed_to(address(rid)))) for rid in record_ids} == (
        before
    )


def assert_names_mail_id(values: dict[str, str]) -> None:
    """A review's reason tells a person which header value to search Sent Items for."""
    assert values["invite_error_code"] == "unresolved_send"
    assert values["invite_sms_ref"] and values["invite_sms_ref"] in values["invite_error_message"]
    assert MESSAGE_ID_HEADER in values["invite_error_message"]


@pytest.mark.parametrize("mail_rig", [("email", "1")], indirect=True)
@pytest.mark.parametrize("step", STEPS, ids=[step[0] for step in STEPS])
def test_with_sent_items_every_step_ends_sent_or_in_review_never_twice(
    mail_rig: Rig, step: Step
) -> None:
    """GRAPH_CAN_READ_SENT=1: a kill -9 at any step ends where WITH_SENT_ITEMS says: a mail
    that went is found and ``sent_email`` (the id REDCap holds, no attempt used up by the
    crash); a claim whose mail never went is reviewed, not resent."""
    join(mail_rig, "1")
    assert kill_at(mail_rig, step), "sender never reached the step"
    settle(mail_rig, ["1"])
    mails, values = mail_rig.mailed_to(address("1")), mail_rig.values("1")
    assert (values["invite_status"], len(mails)) == WITH_SENT_ITEMS[step[0]]
    if mails:
        assert mails[0].headers[MESSAGE_ID_HEADER] == values["invite_sms_ref"]
        assert values["invite_sms_attempts"] == "1" and values["invite_sms_count"] == "1"
    else:
        assert_names_mail_id(values)


@pytest.mark.parametrize("mail_rig", [("email", "0")], indirect=True)
@pytest.mark.parametrize("step", STEPS, ids=[step[0] for step in STEPS])
def test_without_sent_items_every_step_ends_sent_or_in_review_never_twice(
    mail_rig: Rig, step: Step
) -> None:
    """GRAPH_CAN_READ_SENT=0: a kill -9 at any step never leads to a second mail; the record
    ends where WITHOUT_SENT_ITEMS says, a review naming the mail's header id."""
    join(mail_rig, "1")
    assert kill_at(mail_rig, step), "sender never reached the step"
    settle(mail_rig, ["1"])
    mails, values = mail_rig.mailed_to(address("1")), mail_rig.values("1")
    assert (values["invite_status"], len(mails)) == WITHOUT_SENT_ITEMS[step[0]]
    if values["invite_status"] == "needs_review":
        assert_names_mail_id(values)
    if mails:
        assert mails[0].headers[MESSAGE_ID_HEADER] == values["invite_sms_ref"]


@pytest.mark.parametrize("mail_rig", [("email", "0"), ("email", "1")], indirect=True)
@pytest.mark.parametrize("applied", [False, True], ids=["lost", "applied"])
def test_a_kill_leaves_at_most_the_mail_in_flight_to_review(mail_rig: Rig, applied: bool) -> None:
    """Three participants, killed in the second one's sendMail: e-mails are launched one at a
    time (the first one's outcome written with the second's id), so only that one is in
    question; the third, claimed without an id, is given back; the others get one mail each.
    The one in flight is found in Sent Items if it went and Sent Items can be read, else
    reviewed; never resent."""
    for rid in ("1", "2", "3"):
        join(mail_rig, rid)
    assert kill_at(mail_rig, ("second sendMail", "microsoft", SEND_MAIL, applied, 1))
    assert [status(mail_rig, rid) for rid in ("1", "2", "3")] == [
        "sent_email",
        "sending",
        "sending",
    ]
    assert mail_rig.values("3").get("invite_sms_ref", "") == ""
    settle(mail_rig, ["1", "2", "3"])
    found = applied and mail_rig.settings().graph_can_read_sent
    assert [status(mail_rig, rid) for rid in ("1", "2", "3")] == [
        "sent_email",
        "sent_email" if found else "needs_review",
        "sent_email",
    ]
    assert [len(mail_rig.mailed_to(address(rid))) for rid in ("1", "2", "3")] == [1, applied, 1]
    if not found:
        assert_names_mail_id(mail_rig.values("2"))


@pytest.mark.parametrize("mail_rig", [("sms,email", "1")], indirect=True)
@pytest.mark.parametrize("applied", [False, True], ids=["lost", "applied"])
def test_sms_or_email_rule_killed_at_the_mail_never_messages_anyone_twice(
    mail_rig: Rig, applied: bool
) -> None:
    """sms,email with Sent Items, one participant with a phone and one with only an address,
    killed in the sendMail: one SMS, recorded; the mail found and recorded if it went, else
    reviewed; nobody messaged twice, nobody texted in place of the mail."""
    join(mail_rig, "1", "(617) 555-0100")
    join(mail_rig, "2")
    assert kill_at(mail_rig, ("sendMail", "microsoft", SEND_MAIL, applied, 0))
    assert (status(mail_rig, "1"), status(mail_rig, "2")) == ("sms_sent", "sending")
    settle(mail_rig, ["1", "2"])
    [sms] = mail_rig.sent_to(PHONE)
    one, two = mail_rig.values("1"), mail_rig.values("2")
    assert (one["invite_status"], one["invite_sms_sid"]) == ("sms_sent", sms["sid"])
    mails = mail_rig.mailed_to(address("2"))
    assert len(mails) == applied
    if applied:
        assert (two["invite_status"], two["invite_channel"]) == ("sent_email", "email")
        assert mails[0].headers[MESSAGE_ID_HEADER] == two["invite_sms_ref"]
    else:
        assert two["invite_status"] == "needs_review"
    assert mail_rig.mailed_to(address("1")) == []
