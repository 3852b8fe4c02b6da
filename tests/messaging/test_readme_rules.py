"""Every rules example in the README and docs/ is a rules file that loads: the docs cannot rot."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from messaging.rules_file import load_rules

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
EXAMPLES = [
    (page.relative_to(ROOT).as_posix(), block)
    for page in PAGES
    for block in re.findall(r"```toml\n(.*?)```", page.read_text(encoding="utf-8"), flags=re.S)
]


def test_the_docs_have_rules_examples() -> None:
    """The rules and replies pages show the seed use cases (so the test below is not empty)."""
    assert len(EXAMPLES) >= 6
    assert {"docs/rules.md", "docs/replies.md"} <= {page for page, _ in EXAMPLES}


@pytest.mark.parametrize(
    "block",
    [block for _, block in EXAMPLES],
    ids=[f"{page} example {n}" for n, (page, _) in enumerate(EXAMPLES, start=1)],
)
def test_each_rules_example_loads(tmp_path: Path, block: str) -> None:
    """Each example is valid TOML with valid rules and templates."""
    path = tmp_path / "rules.toml"
    path.write_text(block, encoding="utf-8")
    assert load_rules(path, default_event="")
