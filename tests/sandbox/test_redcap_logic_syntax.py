"""REDCap logic (filterLogic) syntax in the simulator: what parses and what is refused.

Comments and whitespace, the field and event references a parsed logic reports to its caller,
and syntax errors, which must name the problem rather than match silently (REDCAP_API.md §2.3,
§3). The shared environment and shortcuts are in helpers_logic.py.
"""

from __future__ import annotations

import pytest

from sandbox.redcap.logic import FieldRef, LogicError, parse_logic
from tests.sandbox.helpers_logic import cases, check


# -- comments and whitespace ------------------------------------------------------------------
@cases(
    [
        ("// who is eligible\n[age] = 34", True),
        ("# note\n[age] = 34\n  // trailing comment line", True),
        ("[age] = 34\n\tand\n[height] = 170", True),
        ("[age] = 34\r\nand [height] = 1", False),
        ("\t[age]\t=\t34\t", True),
        ("[name] = 'Ann\\ Smith'", True),
    ]
)
def test_comments_and_whitespace(text: str, expected: bool) -> None:
    """Line breaks and tabs are spaces; // and # lines are comments (REDCAP_API.md §3)."""
    assert check(text) is expected


# -- references reported to the caller --------------------------------------------------------
def test_refs_events_and_prefixes_are_reported() -> None:
    """The caller sees every field and event reference to validate them (REDCAP_API.md §2.3)."""
    logic = parse_logic("[baseline_arm_1][age] > 30 and [race(2)][3] = '1' or [age] = [age]")
    assert logic.refs == (
        FieldRef("baseline_arm_1", "age", None, None),
        FieldRef(None, "race", "2", "3"),
        FieldRef(None, "age", None, None),
    )
    assert str(logic.refs[1]) == "[race(2)][3]"
    assert logic.events == frozenset({"baseline_arm_1"})
    assert not logic.all_prefixed
    prefixed = parse_logic("[baseline_arm_1][age] > 30 or [week_4_arm_1][sex] = '1'")
    assert prefixed.all_prefixed
    assert prefixed.events == frozenset({"baseline_arm_1", "week_4_arm_1"})
    assert not parse_logic("1 = 1").all_prefixed
    assert parse_logic("[age] = 1").text == "[age] = 1"


# -- syntax errors ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("  \n\t", "empty"),
        ("// only a comment\n# and another", "empty"),
        ("[age", "no closing ']'"),
        ("[age = 1", "no closing ']'"),
        ("([age] = 1", "missing ')'"),
        ("(([age] = 1) and [height] = 2", "missing ')'"),
        ("[age] = 1)", "unexpected ')'"),
        ("foo([age])", "unknown function 'foo'"),
        ("DateDiff([enrolled], 'today', 'd') > 1", "unknown function 'DateDiff'"),
        ("left([name], 1) = 'A'", "'left' is not supported"),
        ("[age] =", "expected a value"),
        ("[age] = 1 and", "expected a value"),
        ("= 1", "expected a value"),
        ("[age] > 1 or or [height] > 1", "expected a value"),
        ("()", "expected a value"),
        ("'abc", "unterminated string"),
        ('[name] = "abc', "unterminated string"),
        ("[Age] = 1", "invalid field reference '[Age]'"),
        ("[event-name] = 'x'", "invalid field reference"),
        ("[age][2x] = 1", "invalid field reference"),
        ("2^3 = 8", "'^' needs both sides in parentheses"),
        ("(2)^3 = 8", "'^' needs both sides in parentheses"),
        ("(2)^(3)^(2) = 64", "chained '^'"),
        ("[age]and[height]", "needs a space on each side"),
        ("[age] = 1 And [height] = 2", "expected an operator"),
        ("[age] [height]", "expected an operator"),
        ("[age] = 1e3", "expected an operator"),
        ("1 < [age] < 3", "chained comparison"),
        ("[age] = 1 = 1", "chained comparison"),
        ("-[age] > 1", "a sign can only come before a number"),
        ("datediff([enrolled], 'today')", "datediff() takes 3 to 5 arguments, got 2"),
        ("if([age] > 1, 1)", "if() takes 3 arguments"),
        ("sum()", "sum() takes 1 or more arguments"),
        ("contains([name] 'x')", "expected ',' or ')' in contains()"),
        ("contains([name],)", "expected a value"),
        ("[age] = 1 // trailing comment", "expected a value"),
        ("[age] % 2 = 0", "unexpected character '%'"),
        ("[age] & 1", "unexpected character '&'"),
        ("unknown_word = 1", "unknown word"),
    ],
)
def test_syntax_errors(text: str, message: str) -> None:
    """Unsupported syntax is an error naming it, never a silent match (REDCAP_API.md §2.3)."""
    with pytest.raises(LogicError) as caught:
        parse_logic(text)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
    assert len(str(caught.value)) < 200
