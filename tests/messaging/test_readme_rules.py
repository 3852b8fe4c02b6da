"""Every rules example in the README is a rules file that loads: the documentation cannot rot."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from messaging.rules_file import load_rules

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCKS = re.findall(r"```toml\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_the_readme_has_rules_examples() -> None:
    """The Rules section shows the seed use cases (so the parametrized test below is not empty)."""
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("block", BLOCKS, ids=[f"example {n}" for n in range(1, len(BLOCKS) + 1)])
def test_each_readme_rules_example_loads(tmp_path: Path, block: str) -> None:
    """Each example is valid TOML with valid rules and templates."""
    path = tmp_path / "rules.toml"
    path.write_text(block, encoding="utf-8")
    assert load_rules(path, default_event="")
