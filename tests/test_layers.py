"""The layer contracts that make lint checks (pyproject.toml [tool.importlinter]) are not vacuous:
an upward import, from common/ into the engine, breaks them and names the contract."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("common", "messaging", "services", "sandbox", "bench")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tree)},
    )


def copy_tree(tmp: Path) -> Path:
    for name in PACKAGES:
        shutil.copytree(ROOT / name, tmp / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp / "pyproject.toml")
    return tmp


def test_the_checkout_keeps_every_contract(tmp_path: Path) -> None:
    """Today's code: every contract kept, exit 0."""
    done = lint_imports(copy_tree(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_common_importing_the_engine_breaks_the_layers(tmp_path: Path) -> None:
    """One import of messaging/ in common/ fails the check, naming the layers contract."""
    tree = copy_tree(tmp_path)
    clock = tree / "common" / "clock.py"
    clock.write_text(clock.read_text() + "\nimport messaging.rules  # noqa: E402\n")
    done = lint_imports(tree)
    assert done.returncode != 0
    assert "Layers only go down" in done.stdout and "BROKEN" in done.stdout
    assert "common.clock -> messaging.rules" in done.stdout
