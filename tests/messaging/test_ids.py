"""[[assign]] tables as coordinators write them: each mistake is one line naming the rule (and
the group), the key and the fix; and what an ID of a group looks like, read back exactly once.
Pure unit tests."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench.assign_soak import ASSIGN as TWO_GROUPS
from common.errors import ConfigError
from messaging.ids import AssignRule, split_id
from messaging.rules_file import load_study

MESSAGE = """
[[rule]]
name = "invitation"
when = "[study_id_status] = 'assigned'"
template = "Your study ID is {field:study_id}."
"""
# The soak's two groups, and a third sharing the patients' run of numbers (no prefix).
ASSIGN = (
    TWO_GROUPS
    + """
[[assign.group]]
name = "late"
when = "[study_group] = '3'"
start = 3000
"""
)


def load(tmp_path: Path, text: str) -> AssignRule:
    path = tmp_path / "rules.toml"
    path.write_text(text, encoding="utf-8")
    (rule,) = load_study(path, default_event="enrollment_arm_1").assign
    return rule


def test_the_groups_read_from_the_file(tmp_path: Path) -> None:
    """Names, logic, starts, prefixes, widths; groups with one prefix end where the next starts;
    the rule's fields are its own; the event defaults to REDCAP_EVENT."""
    rule = load(tmp_path, MESSAGE + ASSIGN)
    control, patient, late = rule.groups
    assert (control.prefix, control.start, control.width, control.limit) == ("HC-", 3000, 5, None)
    assert (late.start, late.limit, patient.start, patient.limit) == (3000, 10200, 10200, None)
    assert rule.event == "enrollment_arm_1" and rule.fields.status == "study_id_status"
    assert list(rule.fields.kinds()) == [
        "study_id_status",
        "study_id_group",
        "study_id_assigned_at",
        "study_id_error_code",
        "study_id_error_message",
    ]


def test_an_id_reads_back_as_exactly_one_group_and_number(tmp_path: Path) -> None:
    """Each group's IDs, zero-padded or not, parse back to it; values of no group do not."""
    rule = load(tmp_path, MESSAGE + ASSIGN)
    control, patient, late = rule.groups
    assert control.format(3000) == "HC-03000" and patient.format(10200) == "10200"
    assert rule.group_of("HC-03000") == (control, 3000)
    assert rule.group_of(" HC-3 ") is None  # below the start: no group of the rule
    assert rule.group_of("10199") == (late, 10199) and rule.group_of("10200") == (patient, 10200)
    assert rule.group_of("2999") is None and rule.group_of("HC-") is None
    assert rule.group_of("XY-3000") is None and rule.group_of("") is None
    assert rule.highest(["HC-03004", "HC-03001", "10250", "3007", "junk", ""]) == {
        "control": 3004,
        "patient": 10250,
        "late": 3007,
    }
    assert split_id("S2-0042") == ("S2-", 42) and split_id("abc") is None


BAD = [
    ('[assign]\nname = "study_id"\n', "assign must be [[assign]] tables"),
    (ASSIGN.replace('name = "study_id"', 'name = "Study ID"'), "name must be lower-case"),
    (ASSIGN.replace('field = "study_id"', 'field = "Study ID"'), "field must name the REDCap"),
    (ASSIGN.replace("when = \"[eligible] = '1'\"", ""), "assign 'study_id': when is missing"),
    (ASSIGN + "colour = 1\n", "group 'late': unknown key 'colour'; allowed keys: name, when"),
    (
        ASSIGN.replace("[[assign]]\n", "[[assign]]\nfields = 1\n"),
        "assign 'study_id': unknown key 'fields'; allowed keys: name, field, when, event, group",
    ),
    (ASSIGN.split("[[assign.group]]")[0], "no groups; add at least one [[assign.group]]"),
    (ASSIGN.replace("start = 10200", ""), "group 'patient': start is missing"),
    (ASSIGN.replace("start = 10200", "start = -1"), "start must be a whole number from 0"),
    (ASSIGN.replace("start = 10200", "start = 1.5"), "start must be a whole number"),
    (ASSIGN.replace("width = 5", "width = 40"), "width must be a whole number from 0 to 12"),
    (ASSIGN.replace('prefix = "HC-"', 'prefix = "HC1"'), "not ending in a digit"),
    (ASSIGN.replace('prefix = "HC-"', 'prefix = "H C"'), "prefix = 'H C' must be"),
    (ASSIGN.replace("start = 10200", "start = 3000"), "both start at 3000"),
    (ASSIGN.replace('name = "late"', 'name = "patient"'), "group 'patient' is defined twice"),
    (
        ASSIGN.replace("when = \"[study_group] = '2'\"", ""),
        "group 'patient': when is missing; with several groups",
    ),
    (ASSIGN.replace('name = "study_id"', 'name = "invitation"'), "has the name of a [[rule]]"),
]


@pytest.mark.parametrize(("text", "says"), BAD, ids=[says for _, says in BAD])
def test_each_mistake_is_one_line_naming_it(tmp_path: Path, text: str, says: str) -> None:
    """ConfigError, one line, naming the rule (and group), the key and the fix."""
    path = tmp_path / "rules.toml"
    path.write_text(MESSAGE + text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_study(path, default_event="")
    message = str(caught.value)
    assert says in message and "\n" not in message and message.startswith("RULES_FILE ")


def test_two_rules_for_one_field_or_one_name_are_refused(tmp_path: Path) -> None:
    """Two [[assign]] tables may not share a name or a field (two runs in one field)."""
    other = ASSIGN.replace('name = "study_id"', 'name = "other_id"')
    path = tmp_path / "rules.toml"
    path.write_text(MESSAGE + ASSIGN + other, encoding="utf-8")
    with pytest.raises(ConfigError, match="field 'study_id' is already given IDs"):
        load_study(path, default_event="")
    path.write_text(MESSAGE + ASSIGN + ASSIGN, encoding="utf-8")
    with pytest.raises(ConfigError, match="assign 'study_id' is defined twice"):
        load_study(path, default_event="")


def test_one_group_needs_no_when(tmp_path: Path) -> None:
    """With one group, every record the rule applies to takes it."""
    one = ASSIGN.split("[[assign.group]]")[0] + '[[assign.group]]\nname = "all"\nstart = 1\n'
    (group,) = load(tmp_path, MESSAGE + one).groups
    assert (group.when, group.start, group.limit) == ("", 1, None)


@pytest.mark.parametrize(
    ("good", "bad", "said"),
    [
        ('name = "study_id"', 'name = "study_id\\n"', "name must be"),
        ('name = "control"', 'name = "control\\n"', "group 1: name must be"),
        ('prefix = "HC-"', 'prefix = "HC-\\n"', "prefix = 'HC-\\n'"),
        ('field = "study_id"', 'field = "study_id"\nevent = "arm_1\\n"', "event must be"),
    ],
)
def test_an_assign_name_ending_in_a_newline_is_refused(
    tmp_path: Path, good: str, bad: str, said: str
) -> None:
    """Names, events and prefixes are matched whole (``$`` let a trailing newline through, into
    the fields' names and every ID): refused, in one line."""
    assert good in ASSIGN
    with pytest.raises(ConfigError, match=re.escape(said)) as caught:
        load(tmp_path, MESSAGE + ASSIGN.replace(good, bad, 1))
    assert "\n" not in str(caught.value)
