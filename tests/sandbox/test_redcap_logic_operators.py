"""REDCap logic (filterLogic) operators in the simulator, and how they treat blanks and text.

Comparison, boolean and arithmetic operators with PHP precedence; then blank numeric fields
(NaN), text and date fields compared as PHP values, and field-against-field comparisons with
chkNullCompare (REDCAP_API.md §3). Each table is evaluated against the environment in
helpers_logic.py.
"""

from __future__ import annotations

from tests.sandbox.helpers_logic import cases, check


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
