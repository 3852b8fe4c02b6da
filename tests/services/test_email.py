"""E-mail as a channel of a rule, end to end: PyCap to the REDCap simulator, msal and Graph calls
to the Microsoft simulator. Channel choice and fallback, what REDCap records, the mail itself
(subject, text, HTML escaping, our header), bad addresses, Graph's refusals, lost answers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from common.errors import ProjectCheckError
from common.graph_client import MESSAGE_ID_HEADER
from services import delivery_checker, registration_detector
from services.sms_sender import Sender
from tests.services.conftest import Rig, start_rules_rig

INVITE = """
[[rule]]
name = "invite"
when = "[registration_complete] = '2'"
delay_minutes = 0
survey = "interest_form"
channel = "{channel}"
template = "Hi {{field:first_name}}, your survey: {{survey_link}}"
subject = "Your survey, {{field:first_name}}"
email_template = "Dear {{field:first_name}},\\n\\nYour survey: {{survey_link}}\\n"
email_html = "<p>Dear {{field:first_name}},</p><p><a href=\\"{{survey_link}}\\">Your survey</a></p>"
"""
PHONE = "+16175550100"
ADA = "Ada@example.org"  # as email-validator normalises "Ada@Example.ORG"


def rules(channel: str) -> str:
    text = INVITE.format(channel=channel)
    if channel == "email":
        text = "\n".join(line for line in text.splitlines() if not line.startswith("template"))
    return text


@pytest.fixture
def mail_rig(tmp_path: Path) -> Iterator[Rig]:
    yield from start_rules_rig(tmp_path, rules("email"), EMAIL_MAX_PER_MINUTE="6000")


@pytest.fixture
def both_rig(tmp_path: Path) -> Iterator[Rig]:
    yield from start_rules_rig(tmp_path, rules("sms,email"), EMAIL_MAX_PER_MINUTE="6000")


def join(rig: Rig, record_id: str, phone: str = "", **values: str) -> None:
    rig.register(record_id, phone)
    rig.set(record_id, **values)
    registration_detector.run_once(rig.ctx(needs_twilio=False))


def send(rig: Rig, **overrides: str) -> dict[str, int]:
    return dict(Sender(dry_run=False).run_once(rig.ctx(**overrides)).counts)


def test_email_only_rule_sends_one_mail_and_records_it(mail_rig: Rig) -> None:
    """A participant with an address and no phone gets one mail: subject, text, HTML with the
    link, our id in its header; REDCap holds sent_email, the channel, the address and that id."""
    join(mail_rig, "1", email="Ada@Example.ORG")
    assert send(mail_rig)["sent"] == 1
    [mail] = mail_rig.mailed_to(ADA)
    link = mail_rig.redcap_link("1")
    values = mail_rig.values("1")
    assert values["invite_status"] == "sent_email"
    assert (values["invite_channel"], values["invite_email_to"]) == ("email", ADA)
    assert values.get("invite_sms_to", "") == "" and values["invite_sms_count"] == "1"
    assert mail.headers[MESSAGE_ID_HEADER] == values["invite_sms_ref"]
    assert mail.subject == "Your survey, Ada"
    assert mail.content_type == "html" and f'href="{link}"' in mail.content
    assert send(mail_rig).get("sent", 0) == 0  # never twice
    assert len(mail_rig.mailed_to(ADA)) == 1


def test_email_only_study_needs_no_twilio_account(mail_rig: Rig) -> None:
    """Without any TWILIO_* setting an e-mail-only study's sender starts and sends."""
    join(mail_rig, "1", email=ADA)
    blank = {k: "" for k in mail_rig.env if k.startswith("TWILIO_")}
    done = mail_rig.run("services.sms_sender", "--once", **blank)
    assert done.returncode == 0, done.stderr
    assert mail_rig.values("1")["invite_status"] == "sent_email"
    assert ADA not in done.stderr and "A***@e***.org" in done.stderr


def test_html_values_are_escaped(mail_rig: Rig) -> None:
    """A value typed in REDCap is text in the HTML mail, never markup."""
    join(mail_rig, "1", email=ADA, first_name="<b>Ada</b> & co")
    send(mail_rig)
    [mail] = mail_rig.mailed_to(ADA)
    assert "&lt;b&gt;Ada&lt;/b&gt; &amp; co" in mail.content and "<b>" not in mail.content
    assert mail.subject == "Your survey, <b>Ada</b> & co"  # a subject is plain text


def test_sms_first_then_email_when_there_is_no_usable_phone(both_rig: Rig) -> None:
    """sms,email: the phone when it is usable, else the address; neither is skipped."""
    join(both_rig, "1", phone="(617) 555-0100", email=ADA)
    join(both_rig, "2", email="bob@example.org")
    join(both_rig, "3", phone="12", email="carol@example.org")  # a phone that cannot be texted
    join(both_rig, "4", email="")
    counts = send(both_rig)
    assert counts["sent"] == 3 and counts["not_sent_no_contact"] == 1
    assert len(both_rig.sent_to(PHONE)) == 1 and both_rig.mailed_to(ADA) == []
    assert both_rig.values("1")["invite_channel"] == "sms"
    for rid in ("2", "3"):
        assert both_rig.values(rid)["invite_status"] == "sent_email"
    values = both_rig.values("4")
    assert (values["invite_status"], values["invite_error_code"]) == ("skipped", "no_contact")


def test_a_bad_address_is_skipped_with_a_reason_that_does_not_quote_it(mail_rig: Rig) -> None:
    """An address email-validator refuses: skipped, invalid_email, the field named, the
    address nowhere in the reason; the others are sent."""
    join(mail_rig, "1", email="ada..lovelace@example.org")
    join(mail_rig, "2", email="bob@example.org")
    counts = send(mail_rig)
    assert counts["sent"] == 1 and counts["not_sent_invalid_email"] == 1
    values = mail_rig.values("1")
    assert (values["invite_status"], values["invite_error_code"]) == ("skipped", "invalid_email")
    assert "email:" in values["invite_error_message"]
    assert "lovelace" not in values["invite_error_message"]


def test_graph_refusing_a_recipient_fails_that_record_only(mail_rig: Rig) -> None:
    """ErrorInvalidRecipients from Graph: failed with Graph's code; the next one is sent."""
    mail_rig.microsoft.refuse_next()
    join(mail_rig, "1", email=ADA)
    join(mail_rig, "2", email="bob@example.org")
    counts = send(mail_rig)
    assert counts == {"failed": 1, "sent": 1}
    values = mail_rig.values("1")
    assert (values["invite_status"], values["invite_error_code"]) == (
        "failed",
        "ErrorInvalidRecipients",
    )


def test_throttled_graph_is_waited_for_not_given_up(mail_rig: Rig) -> None:
    """A 429 with Retry-After is waited out (on the injected clock) and the mail goes once."""
    mail_rig.microsoft.throttle_next(1, retry_after=3)
    join(mail_rig, "1", email=ADA)
    assert send(mail_rig)["sent"] == 1
    assert len(mail_rig.mailed_to(ADA)) == 1


def test_a_lost_answer_is_found_in_sent_items_and_never_resent(mail_rig: Rig) -> None:
    """sendMail applied but its answer lost: outcome unknown; after the claim timeout the
    reconciler finds our header in Sent Items and adopts it: one mail, sent_email."""
    mail_rig.microsoft.hang_next(after_apply=True, seconds=10)
    join(mail_rig, "1", email=ADA)
    assert send(mail_rig, HTTP_TIMEOUT_SECONDS="1")["unknown"] == 1
    assert mail_rig.values("1")["invite_status"] == "sending"
    mail_rig.clock.advance(300)
    counts = send(mail_rig)
    assert counts["reconcile_adopted"] == 1 and counts.get("sent", 0) == 0
    assert mail_rig.values("1")["invite_status"] == "sent_email"
    assert len(mail_rig.mailed_to(ADA)) == 1


def test_a_lost_answer_without_a_copy_is_looked_for_then_reviewed_never_resent(
    mail_rig: Rig,
) -> None:
    """sendMail's answer lost and no copy in Sent Items: the claim stays ``sending`` and is
    looked for every cycle for EMAIL_SENT_ITEMS_GRACE_MINUTES, then ``needs_review`` naming the
    header id; no second mail, ever (the missing copy alone proves nothing)."""
    mail_rig.microsoft.hang_next(after_apply=False, seconds=10)
    join(mail_rig, "1", email=ADA)
    assert send(mail_rig, HTTP_TIMEOUT_SECONDS="1")["unknown"] == 1
    for _ in range(3):
        mail_rig.clock.advance(300)  # 5, 10, 15 minutes: within claim timeout + grace
        assert send(mail_rig)["reconcile_waiting_copy"] == 1
        assert mail_rig.values("1")["invite_status"] == "sending"
    mail_rig.clock.advance(121)
    assert send(mail_rig)["reconcile_needs_review"] == 1
    values = mail_rig.values("1")
    assert values["invite_status"] == "needs_review"
    assert values["invite_sms_ref"] in values["invite_error_message"]
    assert "EMAIL_SENT_ITEMS_GRACE_MINUTES" in values["invite_error_message"]
    send(mail_rig)
    assert mail_rig.mailed_to(ADA) == []


def test_a_copy_saved_late_is_found_and_adopted(mail_rig: Rig) -> None:
    """Exchange saves the Sent Items copy 10 minutes late: the claim waits, the copy appears,
    the record is ``sent_email``; one mail."""
    mail_rig.microsoft.delay_sent_items(600)
    mail_rig.microsoft.hang_next(after_apply=True, seconds=10)
    join(mail_rig, "1", email=ADA)
    assert send(mail_rig, HTTP_TIMEOUT_SECONDS="1")["unknown"] == 1
    mail_rig.clock.advance(300)
    assert send(mail_rig)["reconcile_waiting_copy"] == 1
    mail_rig.sim_clock.advance(601)
    mail_rig.clock.advance(301)
    assert send(mail_rig)["reconcile_adopted"] == 1
    assert mail_rig.values("1")["invite_status"] == "sent_email"
    assert len(mail_rig.mailed_to(ADA)) == 1


def test_without_sent_items_an_unknown_outcome_goes_to_review(mail_rig: Rig) -> None:
    """GRAPH_CAN_READ_SENT=0: nothing can tell whether it went, so needs_review naming the
    header id to search for; it is never sent again on its own."""
    mail_rig.microsoft.hang_next(after_apply=True, seconds=10)
    join(mail_rig, "1", email=ADA)
    send(mail_rig, HTTP_TIMEOUT_SECONDS="1", GRAPH_CAN_READ_SENT="0")
    mail_rig.clock.advance(300)
    assert send(mail_rig, GRAPH_CAN_READ_SENT="0")["reconcile_needs_review"] == 1
    values = mail_rig.values("1")
    assert values["invite_status"] == "needs_review"
    assert values["invite_sms_ref"] in values["invite_error_message"]
    assert MESSAGE_ID_HEADER in values["invite_error_message"]
    send(mail_rig, GRAPH_CAN_READ_SENT="0")
    assert len(mail_rig.mailed_to(ADA)) == 1


def test_a_project_without_the_email_fields_is_refused_naming_the_setting(mail_rig: Rig) -> None:
    """EMAIL_FIELDS naming no field: one line naming it and the field that looks right; an
    e-mail-only study needs no phone field at all."""
    with pytest.raises(ProjectCheckError, match="none of EMAIL_FIELDS exists") as caught:
        mail_rig.ctx(EMAIL_FIELDS="contact_mail")
    assert "fields validated as e-mail: email" in str(caught.value)
    assert mail_rig.ctx(PHONE_FIELDS="no_such_phone").layout.email_fields == ("email",)


def test_one_token_serves_a_senders_cycles_and_the_checker_ignores_mail(mail_rig: Rig) -> None:
    """msal's cache: one token for every mail of a running sender; the delivery checker has
    nothing to ask Twilio about a mail (sent_email is final)."""
    ctx, sender = mail_rig.ctx(), Sender(dry_run=False)
    for rid in ("1", "2", "3"):
        join(mail_rig, rid, email=f"p{rid}@example.org")
        assert sender.run_once(ctx).counts["sent"] == 1
    assert mail_rig.microsoft.tokens_issued() == 1
    assert delivery_checker.run_once(mail_rig.ctx()).summary() == "idle"
    assert mail_rig.values("1")["invite_status"] == "sent_email"
