"""REDCap logic (filterLogic) evaluation in the simulator: references, functions, the result.

Checkbox, event and instance references looked up in the environment, one parsed logic
evaluated per row, the supported functions (datediff, string, blank, if and number ones), errors
while evaluating, and when a row is kept (REDCAP_API.md §2.3, §3). Each table is evaluated
against the environment in helpers_logic.py.
"""

from __future__ import annotations

from sandbox.redcap.logic import Logic, parse_logic
from tests.sandbox.helpers_logic import NOW, NUMERIC, DictEnv, cases, check


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


# -- evaluation errors and the result ---------------------------------------------------------
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
