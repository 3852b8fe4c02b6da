"""The lock files: every package the checkout and the image install, transitive ones included,
pinned to one version with its hashes, and in step with the pins people write."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")
HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}")


def normal(name: str) -> str:
    """A project name as the index compares it (PEP 503): PyCap is pycap, pip_api is pip-api."""
    return re.sub(r"[-_.]+", "-", name).lower()


def locked(lock: str) -> dict[str, tuple[str, frozenset[str]]]:
    """Each package of ``lock``: its version and its hashes."""
    found: dict[str, tuple[str, frozenset[str]]] = {}
    entries = re.split(r"\n(?=[A-Za-z0-9])", (ROOT / lock).read_text(encoding="utf-8"))
    for entry in entries:
        if entry.startswith("#"):
            continue
        pin = PIN.match(entry)
        assert pin, f"{lock}: not pinned with ==: {entry.splitlines()[0]}"
        found[normal(pin[1])] = (pin[2], frozenset(HASH.findall(entry)))
    return found


def written(requirements: str) -> dict[str, str]:
    """The pins of a requirements file people edit (and of the files it includes)."""
    pins: dict[str, str] = {}
    for line in (ROOT / requirements).read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r "):
            pins.update(written(line[3:].strip()))
        elif line:
            pin = PIN.fullmatch(line)
            assert pin, f"{requirements}: pin it with ==: {line}"
            pins[normal(pin[1])] = pin[2]
    return pins


@pytest.mark.parametrize(
    ("lock", "least"),
    [("requirements.lock", 20), ("requirements-dev.lock", 20), ("requirements-pip.lock", 1)],
)
def test_every_locked_package_has_one_version_and_its_hashes(lock: str, least: int) -> None:
    """pip --require-hashes installs nothing that is not in the lock with a matching hash: every
    entry is == one version with at least one sha256."""
    packages = locked(lock)
    assert len(packages) >= least  # transitive ones too, not only the direct pins
    assert all(hashes for _, hashes in packages.values()), lock


@pytest.mark.parametrize(
    ("requirements", "lock"),
    [
        ("requirements.txt", "requirements.lock"),
        ("requirements-dev.txt", "requirements-dev.lock"),
        ("requirements-pip.txt", "requirements-pip.lock"),
    ],
)
def test_the_lock_holds_each_written_pin(requirements: str, lock: str) -> None:
    """A pin changed in a requirements file without `make lock` fails here, naming it."""
    packages = locked(lock)
    stale = {
        name: version
        for name, version in written(requirements).items()
        if packages.get(name, ("",))[0] != version
    }
    assert not stale, f"{requirements} pins {stale} but {lock} does not: run make lock"


def test_the_checkout_and_the_image_run_the_same_packages() -> None:
    """requirements-dev.lock (the checkout's .venv) holds every package of requirements.lock (the
    image) at the same version with the same hashes."""
    runtime, development = locked("requirements.lock"), locked("requirements-dev.lock")
    assert {name: development.get(name) for name in runtime} == runtime


def test_the_bootstrap_installs_the_lock_with_hashes_and_no_source_builds() -> None:
    """make builds .venv from the development lock, hashes required, wheels only (no setup.py
    runs), with the locked pip installed first (Python 3.11's own refuses a lock with extras), and
    again whenever either lock changes."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "$(STAMP): requirements-pip.lock requirements-dev.lock\n" in makefile
    installs = re.findall(r"\$\(BIN\)/python -m pip install (?:[^\n]*\\\n)*[^\n]*", makefile)
    assert len(installs) == 2, "the bootstrap's two pip installs"
    for install, lock in zip(
        installs, ("requirements-pip.lock", "requirements-dev.lock"), strict=True
    ):
        for option in ("--require-hashes", "--only-binary :all:", f"-r {lock}"):
            assert option in install, (option, install)
