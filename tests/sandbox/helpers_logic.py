"""A small environment for the REDCap logic (filterLogic) tests, and shortcuts over it.

Table-driven: each table is evaluated against one small in-test environment, a dict of raw
values keyed by (event, field, checkbox code, instance) with a fixed "now". ``check(text)``
parses and evaluates one logic string against ``ENV``; ``cases(table)`` parametrizes a test over
``(text, expected)`` rows, each row's id being its text.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from sandbox.redcap.logic import parse_logic

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
