"""CI's pip-audit step (.ci/audit.py), against a stand-in pip-audit that answers as the real one
does in each case: a known vulnerability always fails; advisory data that cannot be reached is a
skip said in one line; anything else that goes wrong fails."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
LOCK = "requirements-dev.lock"
CLEAN = {"name": "requests", "version": "2.34.2", "vulns": []}
VULNERABLE = {
    "name": "urllib3",
    "version": "2.0.0",
    "vulns": [{"id": "GHSA-g4mx-q9vg-27p4", "fix_versions": ["2.0.6", "1.26.17"], "aliases": []}],
}
# What pip-audit reports for each package when PyPI's per-version JSON is not served (a mirror).
NOT_FOUND = {
    "name": "aiohappyeyeballs",
    "skip_reason": "Dependency not found on PyPI and could not be audited: "
    "aiohappyeyeballs (2.7.1)",
}
# The end of its traceback with no network (as a real run's, asking pypi.org).
NO_NETWORK = (
    "Traceback (most recent call last):\n  ...\nrequests.exceptions.ConnectionError: "
    "HTTPSConnectionPool(host='pypi.org', port=443): Max retries exceeded with url: "
    '/pypi/aiohappyeyeballs/2.7.1/json (Caused by NameResolutionError("Failed to resolve '
    "'pypi.org' ([Errno -2] Name or service not known)\"))\n"
)


def audit(
    tmp_path: Path,
    *,
    report: dict[str, Any] | None = None,
    stderr: str = "",
    code: int = 0,
    sleep: float = 0,
    timeout: float = 30,
) -> subprocess.CompletedProcess[str]:
    """Run .ci/audit.py with a pip-audit that first checks it was asked for JSON about the hashed
    lock without pip (else exit 64), then writes ``report``, says ``stderr``, exits ``code``."""
    program = tmp_path / "pip-audit"
    program.write_text(
        f"#!{sys.executable}\n"
        "import json, sys, time\n"
        "args = sys.argv[1:]\n"
        "asked = lambda flag: args[args.index(flag) + 1]\n"
        "if not {'--require-hashes', '--disable-pip'} <= set(args) or asked('--format') != "
        f"'json' or asked('--requirement') != {LOCK!r}:\n"
        "    sys.exit(64)\n"
        f"time.sleep({sleep})\n"
        f"report = {report!r}\n"
        "if report is not None:\n"
        "    open(asked('--output'), 'w').write(json.dumps(report))\n"
        f"sys.stderr.write({stderr!r})\n"
        f"sys.exit({code})\n",
        encoding="utf-8",
    )
    program.chmod(0o700)
    return subprocess.run(
        [
            sys.executable,
            ".ci/audit.py",
            "--pip-audit",
            str(program),
            "--timeout",
            f"{timeout}",
            LOCK,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_clean_lock_passes_saying_how_many_were_looked_up(tmp_path: Path) -> None:
    """Every package looked up, none vulnerable: exit 0, one line with the count."""
    done = audit(tmp_path, report={"dependencies": [CLEAN, CLEAN], "fixes": []})
    assert done.returncode == 0
    assert done.stdout == f"audit: {LOCK}: 2 packages looked up, no known vulnerability\n"


@pytest.mark.parametrize("also_unreachable", [False, True])
def test_a_known_vulnerability_fails_naming_it_and_the_fix(
    tmp_path: Path, also_unreachable: bool
) -> None:
    """A vulnerability fails CI (exit 1), naming the package, version, advisory and the fixed
    versions, even when other packages could not be looked up."""
    deps = [CLEAN, VULNERABLE, *([NOT_FOUND] if also_unreachable else [])]
    done = audit(tmp_path, report={"dependencies": deps, "fixes": []}, code=1)
    assert done.returncode == 1
    assert f"audit: urllib3 2.0.0 in {LOCK}: known vulnerability GHSA-g4mx-q9vg-27p4" in done.stdout
    assert "(fixed in 2.0.6, 1.26.17); upgrade it: make lock" in done.stdout
    assert "SKIPPED" not in done.stdout


@pytest.mark.parametrize(
    ("case", "answer"),
    [
        ("a mirror without the advisories", {"report": {"dependencies": [NOT_FOUND] * 3}}),
        ("no network", {"stderr": NO_NETWORK, "code": 1}),
        ("no answer", {"sleep": 30, "timeout": 1}),
    ],
)
def test_advisory_data_out_of_reach_is_a_skip_said_in_one_line(
    tmp_path: Path, case: str, answer: dict[str, Any]
) -> None:
    """Nothing could be looked up: exit 0 (CI may reach only the package registry), in one line
    that says SKIPPED, what was not checked and why; never "no known vulnerability"."""
    done = audit(tmp_path, **answer)
    assert done.returncode == 0, done.stdout
    [line] = done.stdout.splitlines()
    assert line.startswith(f"audit: SKIPPED, {LOCK} not checked: the advisory data")
    assert "no known vulnerability" not in line and "run make audit where it can be" in line


def test_some_packages_not_looked_up_are_named(tmp_path: Path) -> None:
    """A few packages unknown to the advisory service, the rest clean: exit 0, naming them."""
    done = audit(tmp_path, report={"dependencies": [CLEAN, NOT_FOUND], "fixes": []})
    assert done.returncode == 0
    assert f"{LOCK}: 1 package(s) could not be looked up: aiohappyeyeballs" in done.stdout
    assert f"{LOCK}: 1 packages looked up, no known vulnerability" in done.stdout


@pytest.mark.parametrize(
    "stderr",
    ["ERROR:pip_audit._cli:requirement file is not fully hashed\n", ""],
)
def test_any_other_failure_fails(tmp_path: Path, stderr: str) -> None:
    """pip-audit failing for another reason (a bad lock, wrong flags) fails CI, saying so."""
    done = audit(tmp_path, stderr=stderr, code=1)
    assert done.returncode == 1
    assert done.stdout.startswith(f"audit: pip-audit failed (exit 1) on {LOCK}: ")
    assert "SKIPPED" not in done.stdout
