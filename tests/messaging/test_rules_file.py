"""A RULES_FILE as coordinators write it: every mistake is one line naming the rule, the key and
the fix; a typo never passes silently."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.errors import ConfigError
from messaging.rules import KEYS
from messaging.rules_file import load_rules

GOOD = """
[[rule]]
name = "welcome"
when = "[registration_complete] = '2'"
delay_minutes = 1
survey = "interest_form"
template = "Thanks! {survey_link}"
"""


SUBJECT = 'subject = "Your survey"\n'
EMAIL_BODY = 'email_template = "See {survey_link}"\n'
EMAIL_ONLY = """
[[rule]]
name = "invite"
when = "[registration_complete] = '2'"
survey = "interest_form"
channel = "email"
subject = "Your survey"
email_template = "See {survey_link}"
"""


def load(tmp_path: Path, text: str) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(text, encoding="utf-8")
    load_rules(path, default_event="")


def test_a_good_rule_loads_with_its_fields_named_after_it(tmp_path: Path) -> None:
    """name prefixes every field; cancelled and expired join today's codes."""
    path = tmp_path / "rules.toml"
    path.write_text(GOOD, encoding="utf-8")
    [rule] = load_rules(path, default_event="")
    assert rule.fields.status == "welcome_status" and rule.fields.sid == "welcome_sms_sid"
    assert {"cancelled", "expired"} <= set(rule.fields.codes)
    assert rule.fields.count == "welcome_sms_count" and rule.fields.form == "relay"


BAD = [
    ("unknown key", GOOD.replace("delay_minutes", "delay"), "rule 'welcome': unknown key 'delay'"),
    ("allowed keys listed", GOOD.replace("delay_minutes", "delay"), "allowed keys: " + KEYS[0]),
    ("duplicate", GOOD + GOOD, "rule 'welcome' is defined twice"),
    ("no when", GOOD.replace("when =", "#"), "rule 'welcome': when is missing"),
    ("bad name", GOOD.replace('"welcome"', '"Welcome Text"'), "rule 1: name must be lower-case"),
    (
        "both timings",
        GOOD.replace("delay_minutes = 1", 'delay_minutes = 1\nanchor = "visit_datetime"'),
        "either delay_minutes or anchor",
    ),
    ("offset alone", GOOD + "offset_minutes = -60\n", "offset_minutes needs anchor"),
    ("repeat alone", GOOD + "repeat = 2\n", "repeat = 2 needs every_minutes"),
    ("every alone", GOOD + "every_minutes = 60\n", "every_minutes needs repeat"),
    ("series too tight", GOOD + "repeat = 1\nevery_minutes = 5\n", "from 10"),
    ("negative delay", GOOD.replace("delay_minutes = 1", "delay_minutes = -5"), "from 0"),
    ("words", GOOD.replace("delay_minutes = 1", 'delay_minutes = "soon"'), "number of minutes"),
    ("no template", GOOD.replace('template = "Thanks! {survey_link}"', ""), "template is missing"),
    (
        "bad placeholder",
        GOOD.replace("{survey_link}", "{survey_link} {name}"),
        "rule 'welcome': template",
    ),
    (
        "link without survey",
        GOOD.replace('survey = "interest_form"\n', ""),
        "rule 'welcome': template",
    ),
    ("not toml", "[[rule]\nname=", "not valid TOML"),
    ("no rules", "# nothing\n", "no rules"),
    ("top-level typo", 'rules = "x"\n' + GOOD, "unknown top-level key 'rules'"),
    (
        "language alone",
        GOOD + 'language_field = "language"\n',
        "language_field and languages go together",
    ),
    ("unknown channel", GOOD + 'channel = "whatsapp"\n', "channel = 'whatsapp' is not a channel"),
    ("email without subject", GOOD + EMAIL_BODY + 'channel = "sms,email"\n', "needs subject"),
    ("email without text", GOOD + SUBJECT + 'channel = "sms,email"\n', "needs email_template"),
    ("subject on an sms rule", GOOD + SUBJECT, "subject is for e-mail"),
    (
        "sms text on an email rule",
        GOOD + SUBJECT + EMAIL_BODY + 'channel = "email"\n',
        "template is the SMS text",
    ),
    (
        "two-line subject",
        EMAIL_ONLY.replace('subject = "Your survey"', 'subject = "Your\\nsurvey"'),
        "subject must be one line",
    ),
    (
        "email link without survey",
        EMAIL_ONLY.replace('survey = "interest_form"\n', ""),
        "rule 'invite': email_template",
    ),
    (
        "email misses a language",
        EMAIL_ONLY.replace(
            'email_template = "See {survey_link}"',
            'email_template.en = "{survey_link}"\nemail_template.es = "{survey_link}"\n'
            'language_field = "language"\nlanguages = { 1 = "en", 2 = "es" }',
        ),
        "rule 'invite': subject",
    ),
    (
        "html must carry the link",
        EMAIL_ONLY + 'email_html = "<p>Hello</p>"\n',
        "rule 'invite': email_html",
    ),
]


REPLIES = """
replies.confirmed = ["yes"]
replies.cancelled = ["no"]
answer_cancelled.en = "Thank you."
answer_cancelled.es = "Gracias."
language_field = "language"
languages = { 1 = "en", 2 = "es" }
"""
BY_LANGUAGE = GOOD.replace(
    'template = "Thanks! {survey_link}"',
    'template.en = "Thanks! {survey_link}"\ntemplate.es = "Gracias {survey_link}"',
)
BAD += [
    (
        "an auto-answer's placeholder, by its key as written",
        BY_LANGUAGE + REPLIES.replace('"Gracias."', '"Gracias {nombre}."'),
        "rule 'welcome': answer_cancelled.es: placeholder {nombre} is not allowed",
    ),
    (
        "a link in an auto-answer",
        BY_LANGUAGE + REPLIES.replace('"Thank you."', '"Thank you: {survey_link}"'),
        "answer_cancelled.en: placeholder {survey_link}: an auto-answer carries no survey link",
    ),
    (
        "a link in the subject of a rule with a survey",
        EMAIL_ONLY.replace('"Your survey"', '"Your survey {survey_link}"'),
        "rule 'invite': subject: placeholder {survey_link}: the subject carries no survey link",
    ),
    (
        "a brace never closed, said without parser words",
        GOOD.replace("Thanks! {survey_link}", "Thanks {field:first_name! {survey_link}"),
        "template: the '{' at character 8 ('Thanks {field:first_...') is never closed",
    ),
    (
        "a brace closing nothing",
        GOOD.replace("Thanks! {survey_link}", "Thanks! {survey_link} :-}"),
        "template: the '}' at character 25 ('...vey_link} :-}') closes no placeholder",
    ),
    (
        "a typo in a key: did you mean",
        GOOD.replace("delay_minutes", "delay_minute"),
        "unknown key 'delay_minute'; did you mean 'delay_minutes'?",
    ),
    (
        "a typo in an answer key: did you mean",
        BY_LANGUAGE + REPLIES.replace("answer_cancelled", "answer_canceled"),
        "answer_canceled answers no reply in replies; did you mean 'answer_cancelled'?",
    ),
]


@pytest.mark.parametrize(("case", "text", "said"), BAD, ids=[case for case, _, _ in BAD])
def test_a_bad_rules_file_is_one_line_naming_rule_key_and_fix(
    tmp_path: Path, case: str, text: str, said: str
) -> None:
    """ConfigError, one line, naming what is wrong where, pointing to the rules page; never
    parser jargon, never the settings page."""
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    message = str(caught.value)
    assert said in message, message
    assert "\n" not in message and message.startswith("RULES_FILE ")
    assert message.endswith("(see docs/rules.md)") and message.count("docs/rules.md") == 1
    assert ".env.example" not in message and "format spec" not in message
    assert message.count("rule 'welcome'") <= 1 and message.count("rule 'invite'") <= 1


def test_a_missing_rules_file_says_so(tmp_path: Path) -> None:
    """RULES_FILE naming no file: one line with the fix."""
    with pytest.raises(ConfigError, match="no such file; set RULES_FILE"):
        load_rules(tmp_path / "nope.toml", default_event="")


def test_an_email_rule_has_the_email_fields_and_code_and_an_sms_rule_does_not(
    tmp_path: Path,
) -> None:
    """R_channel, R_email_to and sent_email exist only for rules that send e-mail, so a project
    set up before e-mail passes its checks unchanged; the subject's fields are read too."""
    path = tmp_path / "rules.toml"
    path.write_text(
        GOOD + EMAIL_ONLY.replace('"Your survey"', '"Hello {field:first_name}"'), encoding="utf-8"
    )
    sms, mail = load_rules(path, default_event="")
    assert sms.channels == ("sms",) and sms.fields.channel is None
    assert "sent_email" not in sms.fields.codes and "welcome_channel" not in sms.fields.kinds()
    assert mail.channels == ("email",) and not mail.sends_sms
    assert {"invite_channel", "invite_email_to"} <= set(mail.fields.kinds())
    assert "sent_email" in mail.fields.codes and "first_name" in mail.read


def test_channel_order_is_the_fallback_order(tmp_path: Path) -> None:
    """ "email,sms" tries the address first; spaces and case do not matter."""
    path = tmp_path / "rules.toml"
    text = GOOD + SUBJECT + EMAIL_BODY + 'channel = "Email, SMS"\n'
    path.write_text(text, encoding="utf-8")
    [rule] = load_rules(path, default_event="")
    assert rule.channels == ("email", "sms")


def test_alerts_give_every_rule_its_alerted_at_field(tmp_path: Path) -> None:
    """With ALERT_EMAIL_TO set, R_alerted_at is one of the rule's fields."""
    path = tmp_path / "rules.toml"
    path.write_text(GOOD, encoding="utf-8")
    [rule] = load_rules(path, default_event="", alerts=True)
    assert rule.fields.alerted_at == "welcome_alerted_at" in rule.fields.kinds()


# A TOML string may end in a newline ("welcome\n"); `re.match` with `$` let one through, and the
# name went on into REDCap field names. Each case: what, the good text, the bad one, what is said.
NEWLINE_NAMES = [
    ("rule name", 'name = "welcome"', 'name = "welcome\\n"', "name must be"),
    (
        "placeholder",
        "Thanks! {survey_link}",
        "Hi {field:name\\n}! {survey_link}",
        "{field:name\\n}",
    ),
    ("link", "Thanks! {survey_link}", "{survey_link} {url:field:id\\n}", "{url:field:id\\n}"),
]


@pytest.mark.parametrize(
    ("what", "good", "bad", "said"), NEWLINE_NAMES, ids=[n[0] for n in NEWLINE_NAMES]
)
def test_a_name_ending_in_a_newline_is_refused(
    tmp_path: Path, what: str, good: str, bad: str, said: str
) -> None:
    """A rule's names are matched whole (``$`` let a trailing newline through): refused, said in
    one line. Names read from their own key are stripped of spaces and newlines first."""
    assert good in GOOD
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, GOOD.replace(good, bad))
    assert said in str(caught.value) and "\n" not in str(caught.value)
