"""The commands the README and the docs pages show run as written from a checkout.

Every ``.venv/bin/python -m ...`` line in a code block names a module, a subcommand and flags
that exist (checked against that command's own ``--help``), and the sandbox page's rehearsal runs
start to finish exactly as the page writes it (a study's own files aside): the simulators, then
``admin check``, each service until it has done a cycle and is stopped with SIGTERM, ``admin
status`` and a simulated reply.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from sandbox.httpserver import wait_until

ROOT = Path(__file__).resolve().parents[1]
PAGES = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    ROOT / "systemd" / "README.md",
    ROOT / "redcap" / "REPORTS.md",
]
PYTHON = ".venv/bin/python"
SANDBOX_COMMANDS = ("reply", "set", "sent", "advance")  # python -m sandbox's subcommands
SHELL = ("", "sh", "bash", "shell", "console")  # fenced blocks of commands; ```text is output


def code_blocks(text: str) -> list[str]:
    """The shell code blocks of a page, fence by fence (an output block in between, ```text,
    is neither a command nor the start of one)."""
    blocks: list[str] = []
    current: list[str] | None = None
    kind = ""
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            if current is None:
                current, kind = [], line.strip()[3:].strip()
            else:
                if kind in SHELL:
                    blocks.append("\n".join(current))
                current = None
        elif current is not None:
            current.append(line)
    return blocks


def documented() -> list[tuple[str, list[str]]]:
    """(page, argv after the interpreter) for every command of a code block that runs ours."""
    found = []
    for page in PAGES:
        for block in code_blocks(page.read_text(encoding="utf-8")):
            for line in block.splitlines():
                if PYTHON + " -m " not in line:
                    continue
                command = line[line.index(PYTHON) :].split(" > ")[0].split(" || ")[0]
                argv = shlex.split(command, comments=True)
                found.append((page.relative_to(ROOT).as_posix(), argv[1:]))
    return found


def shapes() -> dict[tuple[str, ...], set[str]]:
    """Per command (module, and the admin's or the sandbox's subcommand), the flags shown."""
    commands: dict[tuple[str, ...], set[str]] = {}
    for _, argv in documented():
        module = argv[1]
        rest = argv[2:]
        sub = [rest[0]] if rest and not rest[0].startswith("-") and _has_subcommands(module) else []
        flags = {arg.split("=")[0] for arg in rest if arg.startswith("--")}
        commands.setdefault((module, *sub), set()).update(flags)
    return commands


def _has_subcommands(module: str) -> bool:
    return module in ("services.admin", "sandbox")


def test_the_pages_show_commands() -> None:
    """The extraction sees the pages' commands (so an empty match cannot pass the check)."""
    pages = {page for page, _ in documented()}
    assert {"README.md", "docs/sandbox.md", "docs/operations.md"} <= pages
    assert len(shapes()) >= 15


@pytest.mark.parametrize("command", sorted(shapes()), ids=" ".join)
def test_a_documented_command_exists_with_its_flags(command: tuple[str, ...]) -> None:
    """The module, its subcommand and every flag the pages give it are real (its --help)."""
    module, *sub = command
    if module == "sandbox" and sub and sub[0] not in SANDBOX_COMMANDS:
        sub = []  # other words after "sandbox" are arguments
    done = subprocess.run(
        [sys.executable, "-m", module, *sub, "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    for flag in shapes()[command]:
        assert flag in done.stdout, f"{' '.join(command)}: {flag} is not one of its options"


# -- the sandbox page, run as written ------------------------------------------------------------
def sandbox_page() -> list[list[str]]:
    return [argv for page, argv in documented() if page == "docs/sandbox.md"]


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A directory to run the page's commands in, as a checkout: ``.venv`` is the real one and
    the code is on the path, so files the commands write (.env.sandbox) land here."""
    (tmp_path / ".venv").symlink_to(Path(sys.prefix))
    return tmp_path


def environment(checkout: Path) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(_PRODUCTION)}
    keep.update(PYTHONPATH=str(ROOT), XDG_RUNTIME_DIR=str(checkout))  # locks of its own
    return keep


_PRODUCTION = ("REDCAP_", "TWILIO_", "GRAPH_", "SMS_", "EMAIL_", "ALERT_", "DRY_RUN", "RULES_")


def run(checkout: Path, line: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        shlex.split(line),
        cwd=checkout,
        capture_output=True,
        text=True,
        timeout=60,
        env=environment(checkout),
    )


def serve_one_cycle(checkout: Path, line: str) -> str:
    """Start a service as written (it loops), wait for its first cycle, stop it with SIGTERM:
    exit 0; its log."""
    with (checkout / "service.log").open("w") as log:
        process = subprocess.Popen(
            shlex.split(line), cwd=checkout, stderr=log, stdout=log, env=environment(checkout)
        )
    try:
        wait_until(lambda: "cycle done" in (checkout / "service.log").read_text(), timeout=30)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    return (checkout / "service.log").read_text()


def test_the_sandbox_page_runs_as_written(checkout: Path) -> None:
    """The sandbox page: the simulators start and write .env.sandbox; admin check passes; the
    detector, the sender and the checker each run a cycle and stop cleanly on SIGTERM; admin
    status reports the project; a simulated participant texts back."""
    page = [" ".join(shlex.quote(a) for a in [PYTHON, *argv]) for argv in sandbox_page()]
    start = next(line for line in page if line.endswith("-m sandbox"))
    services = [line for line in page if "--env-file .env.sandbox" in line]
    assert len(services) == 5
    with sandbox_running(checkout, start):
        assert (checkout / ".env.sandbox").exists()
        check, *loops, status = services
        checked = run(checkout, check)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "all checks passed" in checked.stdout
        for line in loops:
            assert "started project=" in serve_one_cycle(checkout, line)
        reported = run(checkout, status)
        assert reported.returncode == 0, reported.stdout + reported.stderr
        assert reported.stdout.startswith("project 1 (redcap-relay demo)")
        reply = next(line for line in page if "reply --from" in line)
        replied = run(checkout, reply)
        assert replied.returncode == 0, replied.stderr


@contextmanager
def sandbox_running(checkout: Path, start: str) -> Iterator[None]:
    """``python -m sandbox`` as a page starts it, until it says it runs; SIGTERM (and a bounded
    wait, kill as the last resort) when the block ends."""
    with (checkout / "sandbox.log").open("w") as log:
        sim = subprocess.Popen(
            shlex.split(start), cwd=checkout, stdout=log, stderr=log, env=environment(checkout)
        )
    try:
        wait_until(lambda: "Ctrl-C to stop" in (checkout / "sandbox.log").read_text(), timeout=30)
        yield
    finally:
        sim.send_signal(signal.SIGTERM)
        try:
            sim.wait(timeout=30)
        except subprocess.TimeoutExpired:
            sim.kill()
            sim.wait(timeout=10)


# -- the rehearsal page, run as written ----------------------------------------------------------
def walkthrough() -> list[str]:
    """The commands of docs/rehearsal.md's walkthrough (before "With your own project", whose
    commands need a study's files), in page order, as written."""
    text = (ROOT / "docs" / "rehearsal.md").read_text(encoding="utf-8")
    steps = text.split("## With your own project")[0]
    return [
        line[line.index(PYTHON) :]
        for block in code_blocks(steps)
        for line in block.splitlines()
        if PYTHON + " -m " in line
    ]


def test_the_rehearsal_page_runs_as_written(checkout: Path) -> None:
    """docs/rehearsal.md start to finish: the sandbox with the rehearsal rules, check and
    baseline, participants set by hand, the clock advanced an hour then two days, each service
    --once, a reply in Spanish; what `sent` shows and `admin status` counts are the four cases
    the page describes."""
    # The page names sandbox/rehearsal_rules.toml, relative to the checkout.
    (checkout / "sandbox").symlink_to(ROOT / "sandbox")
    start, *steps = walkthrough()
    assert start.endswith("-m sandbox --rules-file sandbox/rehearsal_rules.toml")
    assert len(steps) >= 20
    said: dict[str, list[str]] = {}
    with sandbox_running(checkout, start):
        for line in steps:
            done = run(checkout, line)
            assert done.returncode == 0, f"{line}\n{done.stdout}{done.stderr}"
            assert "Traceback" not in done.stderr
            said.setdefault(line, []).append(done.stdout + done.stderr)
    sender = said[f"{PYTHON} -m services.sms_sender --env-file .env.sandbox --once"]
    assert "waiting_delay=7" in sender[0]  # registered: nothing due before the hour
    first, last = said[f"{PYTHON} -m sandbox sent"]
    assert "record 1, rule welcome  to +16175550101  delivered" in first
    assert "record 2, rule welcome  to bo@example.org  subject 'Your study survey'" in first
    assert "    Hi Bo," in first and "rule reminder" not in first
    assert "record 1, rule reminder" not in last  # Ada answered: cancelled, never sent
    assert "record 2, rule reminder  to bo@example.org" in last
    assert "record 3, rule reminder  to +16175550103  delivered" in last
    assert "Recordatorio: su visita es el" in last and "Responda SI para confirmar" in last
    assert "record 3, rule visit_answer" in last and "Gracias, su visita queda confirmada" in last
    [status] = said[f"{PYTHON} -m services.admin status --env-file .env.sandbox"]
    assert "health: ok" in status and "cancelled          1" in status
    assert "latest reply per participant: confirmed 1" in status
