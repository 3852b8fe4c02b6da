"""What the project check says about a rule: the exact key as the rules file writes it, once,
with the fix; and the checks a first hour showed missing (language codes against the field's
choices, a date-only anchor counted in whole days, auto-answers' segments, reply words Twilio
may take as keywords, a consent term in every rule)."""

from __future__ import annotations

from pathlib import Path

from sandbox.redcap.model import Field
from services.admin.golive import sender
from tests.services.conftest import Rig, start_rules_rig

VISIT = """
[[rule]]
name = "visit"
when = "[visit_datetime] <> ''"
anchor = "visit_datetime"
offset_minutes = -1440
template.en = "Your visit is {field:visit_datetime:datetime}. Reply YES or NO."
template.es = "Su visita es el {field:visit_datetime:datetime}. Responda SI o NO."
language_field = "language"
languages = { 1 = "en", 2 = "es" }
replies.confirmed = ["yes", "si"]
replies.cancelled = ["no"]
answer_confirmed.en = "Thank you, see you then."
answer_confirmed.es = "Gracias, hasta pronto."
answer_cancelled.en = "Thank you. We will call you."
answer_cancelled.es = "Gracias. Le llamaremos."
"""

ENGLISH_ONLY = """
[[rule]]
name = "visit"
when = "[visit_datetime] <> ''"
anchor = "visit_datetime"
offset_minutes = -1440
template.en = "Your visit is {field:visit_datetime:datetime}."
language_field = "language"
languages = { 1 = "en" }
"""

WELCOME = """
[[rule]]
name = "welcome"
when = "[registration_complete] = '2'"
delay_minutes = 60
survey = "interest_form"
channel = "sms,email"
template = "Hi {field:first_name}: {survey_link}"
subject = "Your survey"
email_template = "Dear {field:first_name}, {survey_link}"
"""


def check(tmp_path: Path, rules: str, **settings: str) -> tuple[int, list[str]]:
    """``admin check`` on the demo project with these rules: its exit code and lines."""
    for rig in start_rules_rig(tmp_path, rules):
        done = rig.run("services.admin", "check", **settings)
        assert "Traceback" not in done.stdout + done.stderr
        return done.returncode, done.stdout.splitlines()
    raise AssertionError("the rig did not start")


def failures(lines: list[str]) -> list[str]:
    """Each [FAIL] line with its fix line."""
    return [f"{line} {lines[i + 1].strip()}" for i, line in enumerate(lines) if "[FAIL]" in line]


def test_a_bad_field_in_an_auto_answer_is_named_by_its_key_once(tmp_path: Path) -> None:
    """answer_cancelled.es, not "template"; once (not again for the visit_answer companion);
    with the likely field."""
    rules = VISIT.replace("Le llamaremos.", "Le llamaremos el {field:visit_datetme:date}.")
    code, lines = check(tmp_path, rules)
    [failed] = failures(lines)
    assert code == 3
    assert failed.startswith(
        "[FAIL] rule visit: answer_cancelled.es uses {field:visit_datetme}, and visit_datetme "
        "is not a field of this project"
    )
    assert "fix: did you mean visit_datetime? correct the placeholder" in failed
    assert "rule visit: rule visit" not in "\n".join(lines)


def test_a_bad_field_in_the_email_text_is_named_email_template(tmp_path: Path) -> None:
    """The e-mail's text, not the SMS template, is named."""
    code, lines = check(tmp_path, WELCOME.replace("Dear {field:first_name}", "Dear {field:nme}"))
    [failed] = failures(lines)
    assert code == 3 and "[FAIL] rule welcome: email_template uses {field:nme}" in failed


def test_the_rule_name_is_said_once_and_services_say_the_same(tmp_path: Path) -> None:
    """A bad anchor: "rule visit: anchor = ..." once in the checklist and in the service's
    one line (exit 3)."""
    rules = VISIT.replace('anchor = "visit_datetime"', 'anchor = "visit_dattime"')
    for rig in start_rules_rig(tmp_path, rules):
        done = rig.run("services.admin", "check")
        assert "[FAIL] rule visit: anchor = 'visit_dattime' is not a field" in done.stdout
        assert "did you mean visit_datetime?" in done.stdout
        served = rig.run("services.registration_detector", "--once")
        assert served.returncode == 3
        [line] = served.stderr.strip().splitlines()
        assert "rule visit: anchor = 'visit_dattime' is not a field" in line
        assert line.count("rule visit") == 1


def test_a_language_code_the_field_lacks_fails_and_an_unmapped_choice_warns(tmp_path: Path) -> None:
    """languages = { 1, 3 } on a field of choices 1 and 2: 3 is a typo (fail, naming the
    field's codes); choice 2 (Español) would silently get English (warn)."""
    code, lines = check(tmp_path, VISIT.replace("2 = ", "3 = "))
    [failed] = failures(lines)
    assert code == 3
    assert "[FAIL] rule visit: languages: code '3' is not a choice of language" in failed
    assert "(its codes: 1, 2)" in failed
    code, lines = check(tmp_path, ENGLISH_ONLY)
    assert code == 0, lines
    [warned] = [line for line in lines if line.startswith("[warn] rule visit")]
    assert "language choice 2 (Español) is not in languages: those participants get en" in warned


def test_a_date_only_anchor_counted_in_days_warns_with_a_daytime_offset(tmp_path: Path) -> None:
    """offset -1440 on a date field sends at 00:00: a warning with the offset for 09:00."""
    rules = VISIT.replace("visit_datetime", "visit_date").replace(":datetime}", ":date}")
    for rig in start_rules_rig(tmp_path, rules):
        date_field = Field(
            "visit_date",
            "registration",
            "text",
            text_validation_type_or_show_slider_number="date_ymd",
        )
        rig.project.fields.insert(5, date_field)
        done = rig.run("services.admin", "check")
        assert done.returncode == 0, done.stdout
        [warned] = [line for line in done.stdout.splitlines() if "a date without a time" in line]
        assert warned.startswith("[warn] rule visit: anchor visit_date is a date without a time")
        assert "offset_minutes = -1440 sends at 00:00" in warned
        assert "offset_minutes = -900 sends at 09:00 instead" in warned


def test_auto_answers_get_their_segments_and_yes_gets_a_keyword_warning(tmp_path: Path) -> None:
    """Every auto-answer in every language is rendered and counted like a template; "yes" is
    Twilio's opt-in keyword too, which admin check says."""
    code, lines = check(tmp_path, VISIT)
    assert code == 0, lines
    answers = [line for line in lines if line.startswith("[ok  ] auto-answer visit")]
    assert len(answers) == 4
    assert any("answer_cancelled.es: about 23 characters: 1 SMS segment" in a for a in answers)
    [words] = [line for line in lines if line.startswith("[warn] reply words")]
    assert "rule visit: 'yes' is also Twilio's opt-in keyword" in words
    assert "recorded as opted_in, not confirmed" in words


def test_with_consent_field_a_rule_that_ignores_it_warns(tmp_path: Path) -> None:
    """CONSENT_FIELD=consent: a rule whose when does not test [consent] is a [warn] with the
    term to add; one that does is ok."""
    rules = WELCOME + VISIT.replace(
        "when = \"[visit_datetime] <> ''\"", "when = \"[visit_datetime] <> '' and [consent] = '1'\""
    )
    code, lines = check(tmp_path, rules, CONSENT_FIELD="consent")
    assert code == 0, lines
    consent = [line for line in lines if " consent: " in line]
    assert consent[0].startswith("[warn] consent: rule welcome: its when does not test [consent]")
    assert "add \"and [consent] = '1'\"" in consent[0]
    assert consent[1] == "[ok  ] consent: rule visit: its when tests [consent]"
    code, lines = check(tmp_path, WELCOME, CONSENT_FIELD="consented")
    missing = "[warn] consent: CONSENT_FIELD='consented' is not a field of this project"
    assert code == 0 and any(line.startswith(missing) for line in lines)


def test_the_sender_number_says_what_the_carriers_need(rig: Rig) -> None:
    """A US local number needs A2P 10DLC (30034), a toll-free one verification (30032), a
    Messaging Service both for its numbers; Twilio's test number is said to be one."""
    done = rig.run("services.admin", "check")
    assert "[ok  ] Twilio sender: +15005550006: Twilio's test number" in done.stdout
    settings = rig.settings(TWILIO_FROM_NUMBER="+16175550123")
    assert "A2P 10DLC" in sender(settings).detail and "30034" in sender(settings).detail
    toll_free = sender(rig.settings(TWILIO_FROM_NUMBER="+18005550100")).detail
    assert "toll-free verification" in toll_free and "30032" in toll_free
    service = sender(
        rig.settings(TWILIO_FROM_NUMBER="", TWILIO_MESSAGING_SERVICE_SID="MG" + "a" * 32)
    )
    assert service.detail.startswith("Messaging Service MGaaaa...")
