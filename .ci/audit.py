"""pip-audit over a lock file, for CI and ``make audit``: a known vulnerability fails; advisory data
that cannot be reached is a skip said in one line, never a silent pass.

pip-audit alone does not tell the two apart. Behind a registry mirror that serves packages but
not PyPI's per-version JSON, where the advisories are, it reports every package "not found on
PyPI" and exits 0 saying "No known vulnerabilities found"; with no network at all it ends in a
traceback, exit 1, as it does for a bad lock file. So it writes JSON here and this script reads
it. Exit 0: every package looked up and none has a known vulnerability, or nothing could be
looked up (said so); exit 1: a known vulnerability (each named, with the versions that fix it),
whatever else happened, or pip-audit failed for another reason.

    python .ci/audit.py [--pip-audit PROGRAM] [--timeout SECONDS] LOCK

``--pip-audit``: run PROGRAM instead of ``python -m pip_audit`` (the tests' stand-in).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

# What pip-audit's traceback says when the advisory service never answered.
UNREACHABLE = re.compile(
    r"ConnectionError|NameResolutionError|Max retries exceeded|Failed to resolve|"
    r"Temporary failure in name resolution|Name or service not known|Network is unreachable|"
    r"Connection refused|ConnectTimeout|ReadTimeout|timed out|SSLError|ProxyError|ServiceError"
)
UPGRADE = "upgrade it: make lock LOCK_FLAGS='--upgrade-package NAME' (README, Development)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("lock", type=Path)
    parser.add_argument("--pip-audit", dest="program", help="the pip-audit to run")
    parser.add_argument("--timeout", type=float, default=300, help="seconds for the whole audit")
    args = parser.parse_args(argv)
    command = [args.program] if args.program else [sys.executable, "-m", "pip_audit"]
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "audit.json"
        try:
            done = subprocess.run(
                [
                    *command,
                    "--requirement",
                    str(args.lock),
                    "--require-hashes",
                    "--disable-pip",  # the lock is complete: nothing to resolve or install
                    "--progress-spinner",
                    "off",
                    "--format",
                    "json",
                    "--output",
                    str(report),
                ],
                capture_output=True,
                text=True,
                timeout=args.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return skipped(args.lock, f"no answer within {args.timeout:g} s")
        try:
            found = json.loads(report.read_text()) if report.is_file() else None
        except ValueError:  # cut short
            found = None
    if found is None:
        said = f"{done.stdout}\n{done.stderr}"
        reason = UNREACHABLE.search(said)
        if reason:
            line = next(x for x in said.splitlines() if reason.group() in x)
            return skipped(args.lock, line.strip())
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"audit: pip-audit failed (exit {done.returncode}) on {args.lock}: {last}")
        return 1
    return judge(args.lock, found["dependencies"])


def judge(lock: Path, dependencies: list[dict[str, Any]]) -> int:
    """The verdict on pip-audit's JSON: vulnerabilities first, then what could not be looked up."""
    vulnerable = [d for d in dependencies if d.get("vulns")]
    for dep in vulnerable:
        for vuln in dep["vulns"]:
            fixes = ", ".join(vuln.get("fix_versions") or []) or "no fixed version yet"
            print(
                f"audit: {dep['name']} {dep['version']} in {lock}: known vulnerability "
                f"{vuln['id']} (fixed in {fixes}); {UPGRADE}"
            )
    unchecked = [d for d in dependencies if "skip_reason" in d]
    if vulnerable:
        return 1
    if unchecked and len(unchecked) == len(dependencies):
        return skipped(lock, f"every package unknown to it, e.g. {unchecked[0]['skip_reason']}")
    checked = len(dependencies) - len(unchecked)
    if unchecked:
        names = ", ".join(d["name"] for d in unchecked)
        print(f"audit: {lock}: {len(unchecked)} package(s) could not be looked up: {names}")
    print(f"audit: {lock}: {checked} packages looked up, no known vulnerability")
    return 0


def skipped(lock: Path, why: str) -> int:
    print(
        f"audit: SKIPPED, {lock} not checked: the advisory data (PyPI's JSON API) could not be "
        f"reached ({why}); run make audit where it can be"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
