"""admin with e-mail rules, run as a coordinator would (subprocess), against the sandbox: check
verifies Graph and samples each e-mail, status counts what went by e-mail, force sends one."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.services.conftest import Rig, start_rules_rig

BOTH = """
[[rule]]
name = "invite"
when = "[registration_complete] = '2'"
delay_minutes = 0
survey = "interest_form"
channel = "sms,email"
template = "Hi {field:first_name}, your survey: {survey_link}"
subject = "Your survey, {field:first_name}"
email_template = "Dear {field:first_name},\\n\\nYour survey: {survey_link}\\n"
email_html = "<p>Dear {field:first_name},</p><p><a href=\\"{survey_link}\\">Your survey</a></p>"
"""
EMAIL_ONLY = """
[[rule]]
name = "news"
when = "[registration_complete] = '2'"
delay_minutes = 0
channel = "email"
language_field = "language"
languages = { 1 = "en", 2 = "es" }
subject.en = "Study news"
subject.es = "Noticias del estudio"
email_template.en = "Hello {field:first_name}, thank you for taking part."
email_template.es = "Hola {field:first_name}, gracias por participar."
"""
NO_TWILIO = {
    "TWILIO_ACCOUNT_SID": "",
    "TWILIO_AUTH_TOKEN": "",
    "TWILIO_FROM_NUMBER": "",
    "TWILIO_API_BASE_URL": "",
}


@pytest.fixture
def both(tmp_path: Path) -> Iterator[Rig]:
    yield from start_rules_rig(tmp_path, BOTH)


@pytest.fixture
def email_only(tmp_path: Path) -> Iterator[Rig]:
    yield from start_rules_rig(tmp_path, EMAIL_ONLY)


def lines(stdout: str) -> dict[str, str]:
    """Checklist lines by their ``[mark] name`` part."""
    return {line.split(":")[0]: line for line in stdout.splitlines() if line.startswith("[")}


def test_check_verifies_graph_and_samples_the_mail(both: Rig) -> None:
    """An SMS-or-e-mail rule: Twilio and Graph both checked, the SMS text's segments and the
    e-mail's subject, text and HTML sampled."""
    done = both.run("services.admin", "check")
    assert done.returncode == 0, done.stdout + done.stderr
    found = lines(done.stdout)
    assert "[ok  ] Twilio credentials" in found
    assert "token acquired" in found["[ok  ] Graph credentials"]
    assert "the sender's mailbox exists" in found["[ok  ] Graph sender"]
    assert "SMS segment" in found["[ok  ] template invite"]
    mail = found["[ok  ] e-mail invite"]
    assert "subject 'Your survey, Sample'" in mail and "with a typical link" in mail
    assert "HTML about" in mail
    assert "all checks passed" in done.stdout


def test_a_wrong_graph_secret_is_one_failing_line(both: Rig) -> None:
    """A wrong GRAPH_CLIENT_SECRET: exit 1, one [FAIL] naming the setting and the fix, the
    secret nowhere, no traceback."""
    secret = "not-the-secret-of-this-app"
    done = both.run("services.admin", "check", GRAPH_CLIENT_SECRET=secret)
    assert done.returncode == 2  # refused credentials are configuration
    failed = [line for line in done.stdout.splitlines() if line.startswith("[FAIL]")]
    assert len(failed) == 1 and "GRAPH_CLIENT_SECRET" in failed[0], done.stdout
    assert failed[0].startswith("[FAIL] Graph credentials")
    assert "fix:" in done.stdout and "1 check(s) failed" in done.stdout
    output = done.stdout + done.stderr
    assert secret not in output and "Traceback" not in output


def test_missing_graph_settings_name_the_one_to_set(both: Rig) -> None:
    """No GRAPH_SENDER: the settings line names it; nothing is asked of Microsoft."""
    done = both.run("services.admin", "check", GRAPH_SENDER="")
    assert done.returncode == 2
    assert "GRAPH_SENDER" in lines(done.stdout)["[FAIL] Graph settings"]
    assert both.microsoft.tokens_issued() == 0


def test_an_email_only_study_passes_without_twilio(email_only: Rig) -> None:
    """No TWILIO_* at all: check passes, says Twilio is not needed, samples each language's
    e-mail and shows no SMS line for the rule (its SMS template is a placeholder)."""
    done = email_only.run("services.admin", "check", **NO_TWILIO)
    assert done.returncode == 0, done.stdout + done.stderr
    found = lines(done.stdout)
    assert "not needed" in found["[ok  ] Twilio"]
    assert "subject 'Study news'" in found["[ok  ] e-mail news (en)"]
    assert "subject 'Noticias del estudio'" in found["[ok  ] e-mail news (es)"]
    assert not any(name.startswith("[ok  ] template") for name in found)
    assert "e-mail only" not in done.stdout and "SMS segment" not in done.stdout
    assert "phone fields" not in done.stdout


def test_status_counts_mail_as_sent_and_splits_by_channel(both: Rig) -> None:
    """One texted, one mailed (no phone): sent 2, by channel 1 and 1, sent_email in the funnel,
    in --json and in the text."""
    both.register("1", "(617) 555-0100")
    both.register("2", "")
    assert both.run("services.registration_detector", "--once").returncode == 0
    sent = both.run("services.sms_sender", "--once")
    assert sent.returncode == 0, sent.stderr
    done = both.run("services.admin", "status", "--json")
    assert done.returncode == 0, done.stderr
    invite = json.loads(done.stdout)["rules"]["invite"]
    assert invite["by_status"]["sent_email"] == 1 and invite["by_status"]["sms_sent"] == 1
    assert invite["sent"] == 2 and invite["sent_by_channel"] == {"sms": 1, "email": 1}
    text = both.run("services.admin", "status").stdout
    assert "sent_email" in text and "sent: 2 (SMS 1, e-mail 1)" in text


def test_force_sends_an_email_rule_and_says_so(email_only: Rig) -> None:
    """force on an e-mail-only rule (no Twilio): one mail, sent_email, "sent by e-mail"; a
    second force is refused without --resend, in words that fit e-mail."""
    email_only.register("1", "")
    assert email_only.run("services.registration_detector", "--once").returncode == 0
    done = email_only.run("services.admin", "force", "1", "--rule", "news", **NO_TWILIO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "record 1: sent by e-mail" in done.stdout
    assert email_only.values("1")["news_status"] == "sent_email"
    [mail] = email_only.mailed_to("participant1@example.org")
    assert mail.subject == "Study news"
    again = email_only.run("services.admin", "force", "1", "--rule", "news", **NO_TWILIO)
    assert again.returncode == 1 and "--resend to send it again" in again.stdout
    assert "text" not in again.stdout
