"""REDCap logic (filterLogic) parsing and evaluation in the simulator (REDCAP_API.md §2.3, §3).

Table-driven: each table is evaluated against one small in-test environment, a dict of raw
values keyed by (event, field, checkbox code, instance) with a fixed "now".
"""

from __future__ import annotations

from datetime import datetime

import pytest

from sandbox.redcap.logic import FieldRef, Logic, LogicError, parse_logic

NOW = datetime(2024, 5, 10, 12, 0, 0)
NUMERIC = frozenset({"age", "weight", "weight2", "height", "score", "meds_dose"})

Key = tuple[str | None, str, str | None, str | None]
VALUES: dict[Key, str] = {
    (None, "age", None, None): "34",
    (None, "weight", None, None): "",  # numeric and blank
    (None, "weight2", None, None): "",  # numeric and blank
    (None, "height", None, None): "170",
    (None, "score", None, None): "0",
    (None, "name", None, None): "Ann Smith",
    (None, "code", None, None): "05",
    (None, "blank_text", None, None): "",
    (None, "enrolled", None, None): "2024-05-01",
    (None, "visit_dt", None, None): "2024-05-09 08:30",
    (None, "status", None, None): "eligible_id_assigned",
    (None, "race", "1", None): "1",
    (None, "race", "2", None): "0",
    (None, "race", "-1", None): "1",
    (None, "race", "1", "2"): "0",
    ("baseline_arm_1", "age", None, None): "40",
    ("week_4_arm_1", "age", None, None): "",
    (None, "meds_dose", None, None): "15",
    (None, "meds_dose", None, "2"): "20",
    (None, "meds_dose", None, "first-instance"): "10",
    (None, "meds_dose", None, "last-instance"): "30",
    (None, "meds_dose", None, "previous-instance"): "12",
    (None, "meds_dose", None, "next-instance"): "18",
    (None, "meds_dose", None, "current-instance"): "15",
    ("baseline_arm_1", "meds_dose", None, "1"): "5",
}


class DictEnv:
    """A :class:`LogicEnv` over a dict; unknown keys read as blank, like an empty slot."""

    def __init__(self, values: dict[Key, str], numeric: frozenset[str], now: datetime) -> None:
        self.values = values
        self.numeric = numeric
        self.current = now

    def lookup(
        self, event: str | None, field: str, choice: str | None, instance: str | None
    ) -> str:
        return self.values.get((event, field, choice, instance), "")

    def is_numeric(self, field: str) -> bool:
        return field in self.numeric

    def now(self) -> datetime:
        return self.current


ENV = DictEnv(VALUES, NUMERIC, NOW)


def check(text: str) -> bool:
    return parse_logic(text).evaluate(ENV)


def cases(table: list[tuple[str, bool]]) -> pytest.MarkDecorator:
    return pytest.mark.parametrize(("text", "expected"), table, ids=[row[0] for row in table])


# -- operators --------------------------------------------------------------------------------
@cases(
    [
        ("[age] = 34", True),
        ("[age] == 34", True),
        ("[age] = '34'", True),
        ('[age] = "34"', True),
        ("[age] = 34.0", True),
        ("[age] <> 34", False),
        ("[age] != 30", True),
        ("[age] < 35", True),
        ("[age] < 34", False),
        ("[age] <= 34", True),
        ("[age] > 34", False),
        ("[age] >= 34", True),
        ("[status] = 'eligible_id_assigned'", True),
        ("[status] <> 'eligible_id_assigned'", False),
    ]
)
def test_comparison_operators(text: str, expected: bool) -> None:
    """= and ==, <> and !=, < <= > >= compare values (REDCAP_API.md §3 "Operators")."""
    assert check(text) is expected


@cases(
    [
        ("[age] > 30 and [height] > 200", False),
        ("[age] > 30 AND [height] > 100", True),
        ("[age] > 30 && [height] > 100", True),
        ("[age] > 30&&[height] > 200", False),
        ("[age] > 40 or [height] > 100", True),
        ("[age] > 40 OR [height] > 200", False),
        ("[age] > 40 || [height] > 100", True),
        ("not([age] = 34)", False),
        ("not ([age] = 1)", True),
        ("NOT([age] = 1)", True),
        ("!([age] = 34)", False),
        ("!([age] = 1)", True),
        ("true", True),
        ("TRUE and [age] = 34", True),
        ("false or [age] = 1", False),
        ("true and false", False),
        # and binds tighter than or: T or (F and F)
        ("[age] = 34 or [age] = 1 and [height] = 1", True),
        ("([age] = 34 or [age] = 1) and [height] = 1", False),
        # not binds to the next operand, as PHP's ! does: (not 34) = 1 is false = true
        ("not [age] = 1", False),
        ("not [score] = 1", True),
    ]
)
def test_boolean_operators_and_precedence(text: str, expected: bool) -> None:
    """and/AND/&&, or/OR/||, not/!, true/false; PHP precedence (REDCAP_API.md §3)."""
    assert check(text) is expected


@cases(
    [
        ("[age] + 1 = 35", True),
        ("[age] - 4 = 30", True),
        ("[age] * 2 = 68", True),
        ("[age] / 4 = 8.5", True),
        ("1 + 2 * 3 = 7", True),
        ("(1 + 2) * 3 = 9", True),
        ("10 - 2 - 3 = 5", True),
        ("12 / 2 / 3 = 2", True),
        ("[age] > 30 + 5", False),
        ("[age] * -1 = -34", True),
        ("[age] - -1 = 35", True),
        ("+2 = 2", True),
        ("2.5 * 2 = 5", True),
        (".5 * 4 = 2", True),
        ("(2)^(10) = 1024", True),
        ("([age] - 30)^(2) = 16", True),
        ("2 * (3)^(2) = 18", True),
        ("(4)^(0.5) = 2", True),
        ("round((-8)^(1/3), 6) = -2", True),
        ("[weight] + 1 > 0", False),
        ("[weight] + 1 = ''", True),
    ]
)
def test_arithmetic(text: str, expected: bool) -> None:
    """+ - * / and (x)^(y) bind tighter than comparisons; NaN propagates (REDCAP_API.md §3)."""
    assert check(text) is expected


# -- blanks -----------------------------------------------------------------------------------
@cases(
    [
        ("[weight] > 30", False),
        ("[weight] < 30", False),
        ("[weight] = 30", False),
        ("[weight] >= 0", False),
        ("[weight] = 0", False),
        ("[weight] <> 30", True),
        ("[weight] != 30", True),
        ("[weight] = ''", True),
        ('[weight] = ""', True),
        ("'' = [weight]", True),
        ("[weight] <> ''", False),
        ("[weight] != ''", False),
        ("[age] = ''", False),
        ("[age] <> ''", True),
        ("[score] = ''", False),
        ("[score] = 0", True),
        ("[weight] = 'abc'", False),
        ("[weight] <> 'abc'", True),
    ]
)
def test_blank_numeric_field(text: str, expected: bool) -> None:
    """A blank numeric field is NaN: only <> is true; = '' tests blank (REDCAP_API.md §3)."""
    assert check(text) is expected


@cases(
    [
        ("[blank_text] = ''", True),
        ("[blank_text] <> ''", False),
        ("[blank_text] = 0", False),
        ("[blank_text] < 10", True),
        ("[name] = 'Ann Smith'", True),
        ("[name] = 'ann smith'", False),
        ("[code] = 5", True),
        ("[code] = '5'", True),
        ("[code] = '05'", True),
        ("[code] > 4", True),
        ("[enrolled] > '2024-04-30'", True),
        ("[enrolled] < '2024-05-02'", True),
        ("[enrolled] = '2024-05-01'", True),
        ("'10' > 9", True),
        ("'10' > '9'", True),
        ("'1e1' = 10", True),
        ("'a10' > 'a9'", False),
        ("'abc' < 'abd'", True),
    ]
)
def test_text_fields_compare_as_php_values(text: str, expected: bool) -> None:
    """Text and dates compare as PHP values; numeric strings numerically (REDCAP_API.md §3)."""
    assert check(text) is expected


@cases(
    [
        ("[weight] = [weight2]", True),
        ("[weight] <= [weight2]", True),
        ("[weight] >= [weight2]", True),
        ("[weight] < [weight2]", False),
        ("[weight] <> [weight2]", False),
        ("[weight] = [age]", False),
        ("[weight] < [age]", False),
        ("[weight] > [age]", False),
        ("[age] > [weight]", False),
        ("[weight] <> [age]", True),
        ("[height] > [age]", True),
        ("[age] = [age]", True),
        ("([weight]) = ([weight2])", True),
    ]
)
def test_field_against_field_uses_chknullcompare(text: str, expected: bool) -> None:
    """Two numeric fields follow chkNullCompare: blank vs blank is '' vs '' (REDCAP_API.md §3)."""
    assert check(text) is expected


# -- references -------------------------------------------------------------------------------
@cases(
    [
        ("[race(1)] = '1'", True),
        ("[race(2)] = '1'", False),
        ("[race(2)] = 0", True),
        ("[race(1)] = 1 and [race(2)] = 0", True),
        ("[race(-1)] = 1", True),
        ("[race(1)][2] = 0", True),
        ("[baseline_arm_1][age] = 40", True),
        ("[week_4_arm_1][age] = ''", True),
        ("[baseline_arm_1][age] > [age]", True),
        ("[meds_dose] = 15", True),
        ("[meds_dose][2] = 20", True),
        ("[meds_dose][current-instance] = 15", True),
        ("[meds_dose][first-instance] = 10", True),
        ("[meds_dose][last-instance] = 30", True),
        ("[meds_dose][previous-instance] = 12", True),
        ("[meds_dose][next-instance] = 18", True),
        ("[baseline_arm_1][meds_dose][1] = 5", True),
        ("[age:value] = 34", True),
    ]
)
def test_references_reach_the_env(text: str, expected: bool) -> None:
    """Checkbox [f(code)], [event][f] and instance suffixes are looked up (REDCAP_API.md §2.3)."""
    assert check(text) is expected


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


def test_parsed_once_evaluated_per_row() -> None:
    """filterLogic is evaluated per record, event and instance (REDCAP_API.md §2.3)."""
    logic: Logic = parse_logic("[age] >= 18 and [status] = 'ok'")
    rows = [("17", "ok"), ("18", "ok"), ("40", "no"), ("", "ok")]
    results = [
        logic.evaluate(
            DictEnv(
                {(None, "age", None, None): age, (None, "status", None, None): status},
                NUMERIC,
                NOW,
            )
        )
        for age, status in rows
    ]
    assert results == [False, True, False, False]


# -- functions --------------------------------------------------------------------------------
@cases(
    [
        ("datediff([enrolled], 'today', 'd') = 9", True),
        ("datediff('today', [enrolled], 'd') = 9", True),
        ("datediff('today', [enrolled], 'd', true) = -9", True),
        ("datediff('today', [enrolled], 'd', 'true') = -9", True),
        ("datediff([enrolled], 'today', 'd', true) = 9", True),
        ("datediff('today', [enrolled], 'd', 'ymd', true) = -9", True),
        ("datediff([enrolled], 'TODAY', 'd') = 9", True),
        ("datediff([enrolled], 'today', 'd') <= 7", False),
        ("datediff([enrolled], 'now', 'h') = 228", True),
        ("datediff([visit_dt], 'now', 'm') = 1650", True),
        ("datediff([visit_dt], 'now', 's') = 99000", True),
        ("datediff([visit_dt], 'today', 'h') = 15.5", True),
        ("datediff('2024-05-10 11:00:00', 'now', 'h') = 1", True),
        ("datediff('2024-01-01 10:00', '2024-01-01 10:00:30', 's') = 30", True),
        ("round(datediff('2024-01-01', '2025-01-01', 'y'), 4) = 1.0021", True),
        ("round(datediff('2024-01-01', '2024-01-31', 'M'), 3) = 0.986", True),
        ("datediff([blank_text], 'today', 'd') = ''", True),
        ("datediff([blank_text], 'today', 'd') > 0", False),
        ("datediff([blank_text], 'today', 'd') <> 5", True),
        ("datediff('2024-13-01', 'today', 'd') = ''", True),
        ("datediff('05/01/2024', 'today', 'd') = ''", True),
        ("datediff([enrolled], 'today', 'w') = ''", True),
    ]
)
def test_datediff(text: str, expected: bool) -> None:
    """datediff units y/M/d/h/m/s, 'today'/'now', signed; bad dates are NaN (REDCAP_API.md §3)."""
    assert check(text) is expected


@cases(
    [
        ("contains([name], 'smith')", True),
        ("contains([name], 'jones')", False),
        ("not_contain([name], 'JONES')", True),
        ("not_contain([name], 'SMITH')", False),
        ("starts_with([name], 'ann')", True),
        ("starts_with([name], 'smith')", False),
        ("ends_with([name], 'SMITH')", True),
        ("ends_with([name], 'ann')", False),
        ("isblankormissingcode([weight])", True),
        ("isblankormissingcode([blank_text])", True),
        ("isblankormissingcode([age])", False),
        ("isblankormissingcode([score])", False),
        ("if([age] > 30, 'old', 'young') = 'old'", True),
        ("if([weight] > 30, 1, 0) = 0", True),
        ("if([age] > 30, [age], 1 / 0) = 34", True),
        ("sum([age], [height]) = 204", True),
        ("sum([age], [weight], 'x') = 34", True),
        ("sum([weight]) = ''", True),
        ("round(2.5) = 3", True),
        ("round(-2.5) = -3", True),
        ("round(1.005, 2) = 1.01", True),
        ("round(1234, -2) = 1200", True),
        ("round([weight]) = ''", True),
        ("round('abc') = ''", True),
        ("round(2.4, 1.5) = ''", True),
        ("abs(-3) = 3", True),
        ("abs([age] - 40) = 6", True),
        ("min([age], [height], 100) = 34", True),
        ("max([age], [height], [weight]) = 170", True),
        ("max([weight]) = ''", True),
        ("length([name]) = 9", True),
        ("length([blank_text]) = 0", True),
        ("length([age] / 4) = 3", True),
        ("lower([name]) = 'ann smith'", True),
        ("upper([name]) = 'ANN SMITH'", True),
        ("trim('  x ') = 'x'", True),
        ("length(trim('  x ')) = 1", True),
    ]
)
def test_functions(text: str, expected: bool) -> None:
    """String, blank, if and number functions behave as REDCap's PHP ones (REDCAP_API.md §3)."""
    assert check(text) is expected


# -- comments, whitespace, evaluation errors, result ------------------------------------------
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


@cases(
    [
        ("[age] / 0 = 1", False),
        ("not([age] / 0 = 1)", False),
        ("[age] = 34 or [age] / 0 = 1", True),
        ("[name] + 1 > 0", False),
        ("not([blank_text] * 2 = 1)", False),
    ]
)
def test_evaluation_errors_drop_the_row(text: str, expected: bool) -> None:
    """A PHP error while evaluating makes REDCap drop the row (RC LogicTester::applyLogic)."""
    assert check(text) is expected


@cases(
    [
        ("[age]", True),
        ("[score]", True),
        ("[weight]", True),
        ("datediff([enrolled], 'today', 'd')", True),
        ("false", False),
        ("1 = 2", False),
        ("true", True),
    ]
)
def test_row_kept_unless_logic_is_false(text: str, expected: bool) -> None:
    """REDCap keeps a row unless the logic's value is exactly false (RC applyLogic === false)."""
    assert check(text) is expected


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
