"""admin with rules: check renders every template in every language and counts its segments."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.services.conftest import Rig, start_rules_rig

RULES = """
[[rule]]
name = "visit"
when = "[visit_datetime] <> ''"
anchor = "visit_datetime"
offset_minutes = -1440
template.en = "See you {field:visit_datetime:datetime}."
template.es = "Le esperamos el {field:visit_datetime:date:full}. Responda SÍ para confirmar."
language_field = "language"
languages = { 1 = "en", 2 = "es" }

[[rule]]
name = "long"
when = "[registration_complete] = '2'"
delay_minutes = 1
survey = "interest_form"
template = "{survey_link} LONG"
"""


@pytest.fixture
def rules(tmp_path: Path) -> Iterator[Rig]:
    yield from start_rules_rig(tmp_path, RULES.replace("LONG", "x" * 500))


def test_check_reports_each_templates_segments_and_warns_above_three(rules: Rig) -> None:
    """One line per rule and language: length, segments, GSM-7 or UCS-2; over 3 is [warn]."""
    done = rules.run("services.admin", "check")
    assert done.returncode == 0, done.stdout
    lines = {line.split(":")[0]: line for line in done.stdout.splitlines() if "template" in line}
    assert "1 SMS segment (GSM-7)" in lines["[ok  ] template visit (en)"]
    assert "(UCS-2)" in lines["[ok  ] template visit (es)"]  # Í is not in GSM-7
    assert "4 SMS segments (GSM-7); shorten it" in lines["[warn] template long"]
    assert "[ok  ] rule visit" in done.stdout and "[ok  ] rule long" in done.stdout


WELCOME_AND_REMINDER = """
[[rule]]
name = "welcome"
when = "[registration_complete] = '2'"
delay_minutes = 60
survey = "interest_form"
template = "Welcome! {survey_link}"

[[rule]]
name = "reminder"
when = "[registration_complete] = '2'"
delay_minutes = 2880
survey = "interest_form"
stop_when = "[interest_form_complete] = '2'"
template = "A reminder: {survey_link}"
"""


def test_force_and_requeue_act_on_the_rule_named(tmp_path: Path) -> None:
    """force --rule sends that rule's message now; requeue --rule gives a cancelled reminder
    another go; an unknown rule is one line naming the rules there are."""
    for rig in start_rules_rig(tmp_path, WELCOME_AND_REMINDER):
        rig.register("1", "(617) 555-0100")
        assert rig.run("services.registration_detector", "--once").returncode == 0
        forced = rig.run("services.admin", "force", "1", "--rule", "welcome")
        assert forced.returncode == 0 and "record 1: sent" in forced.stdout
        [message] = rig.sent_to("+16175550100")
        assert str(message["body"]).startswith("Welcome!")
        assert rig.values("1")["reminder_status"] == "registered"  # the other rule untouched
        rig.set("1", reminder_status="cancelled", reminder_error_code="stop_when")
        requeued = rig.run("services.admin", "requeue", "1", "--rule", "reminder")
        assert requeued.returncode == 0, requeued.stdout
        values = rig.values("1")
        assert values["reminder_status"] == "registered"
        assert values.get("reminder_error_code", "") == ""
        assert values["welcome_status"] == "sms_sent"
        unknown = rig.run("services.admin", "requeue", "1", "--rule", "remindr")
        assert unknown.returncode == 2
        said = (
            "--rule remindr: no such rule; did you mean reminder? the rules are: welcome, reminder"
        )
        assert said in unknown.stderr


def test_force_honours_stop_when_unless_told_to_ignore_it(tmp_path: Path) -> None:
    """A reminder whose stop_when holds (the survey is done) is refused by force, saying so and
    how to override; --ignore-stop sends it, saying that too."""
    for rig in start_rules_rig(tmp_path, WELCOME_AND_REMINDER):
        rig.register("1", "(617) 555-0100")
        assert rig.run("services.registration_detector", "--once").returncode == 0
        rig.set("1", interest_form_complete="2")
        refused = rig.run("services.admin", "force", "1", "--rule", "reminder")
        assert refused.returncode == 1 and rig.twilio.sent() == []
        assert "rule reminder's stop_when holds ([interest_form_complete] = '2')" in refused.stdout
        assert "add --ignore-stop" in refused.stdout
        assert rig.values("1")["reminder_status"] == "registered"  # nothing written
        forced = rig.run("services.admin", "force", "1", "--rule", "reminder", "--ignore-stop")
        assert forced.returncode == 0, forced.stdout
        assert "sending anyway (--ignore-stop)" in forced.stdout
        assert "record 1: sent" in forced.stdout and len(rig.twilio.sent()) == 1
