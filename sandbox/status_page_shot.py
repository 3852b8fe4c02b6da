"""The status page and the weekly report of the demo project, and their screenshots
(docs/status-page.png, docs/weekly-report.png).

``python -m sandbox.status_page_shot [--report] [PNG]`` plays ``make demo``'s story (the same
rules, participants, visits and replies, the four services as real processes) without its
commentary, writes ``admin status --html`` (or, with ``--report``, ``admin report --html``) of
the end state and photographs it with headless Chromium (Debian's ``chromium``).
:func:`screenshot` is what the tests render the pages with.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from zoneinfo import ZoneInfo

from redcap.project import Project as PyCapProject

from messaging.rules_file import load_study
from sandbox.demo_cli import ALERTS, RULES_FILE, SERVICES, play, stop_all
from sandbox.envfile import write_env
from sandbox.participants import demo_cohort, register
from sandbox.redcap.demo import build_demo_project
from sandbox.rehearsal import add_rule_fields
from sandbox.session import Sandbox

CHROMIUM = "chromium"  # Debian's package; found on PATH
ROOT = Path(__file__).resolve().parents[1]
# Headless, offline and quiet: no first-run UI, no updates, no sync, no network of its own.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def screenshot(
    html: Path,
    png: Path,
    *,
    chromium: str = CHROMIUM,
    size: tuple[int, int] = (1200, 1600),
    timeout: float = 60.0,
) -> None:
    """Render ``html`` in headless Chromium into ``png``; Chromium (and its children) is killed
    if it takes longer than ``timeout`` seconds (subprocess.TimeoutExpired is raised)."""
    with tempfile.TemporaryDirectory() as profile:
        args = [
            chromium,
            *FLAGS,
            f"--user-data-dir={profile}",
            f"--screenshot={png}",
            f"--window-size={size[0]},{size[1]}",
            html.resolve().as_uri(),
        ]
        proc = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: only what we started
            proc.wait(timeout=10)
            raise


def demo_page(html: Path, python: str = sys.executable, command: str = "status") -> int:
    """Play the demo and write the page of ``admin COMMAND --html`` (``status`` or ``report``)
    to ``html``; its exit code."""
    rules = load_study(RULES_FILE, default_event="", alerts=True)
    project = add_rule_fields(build_demo_project(), rules)
    with Sandbox(project) as box, tempfile.TemporaryDirectory() as tmp:
        env = box.settings(LOCK_DIR=tmp, RULES_FILE=str(RULES_FILE), **ALERTS)
        env_file = Path(tmp) / ".env.sandbox"
        write_env(env_file, env)
        for person in demo_cohort(3):
            register(project, box.clock, person)
        admin = [python, "-m", "services.admin"]
        quiet = subprocess.DEVNULL
        baseline = [*admin, "baseline", "--env-file", str(env_file)]
        subprocess.run(baseline, timeout=60, stdout=quiet, stderr=quiet, cwd=ROOT)
        procs = [
            subprocess.Popen(
                [python, "-m", f"services.{name}", "--env-file", str(env_file)],
                stdout=quiet,
                stderr=quiet,
                cwd=ROOT,
            )
            for name in SERVICES
        ]
        try:
            pycap = PyCapProject(box.redcap.url, box.redcap.token, timeout=10)
            play(project, box.clock, box.twilio, ZoneInfo(env["TIMEZONE"]), pycap, rules)
        finally:
            stop_all(procs)
        done = subprocess.run(
            [*admin, command, "--html", str(html), "--env-file", str(env_file)],
            timeout=60,
            stdout=subprocess.DEVNULL,
            cwd=ROOT,
        )
        return done.returncode


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    command = "report" if "--report" in args else "status"
    args = [arg for arg in args if arg != "--report"]
    default = "weekly-report.png" if command == "report" else "status-page.png"
    png = Path(args[0] if args else ROOT / "docs" / default)
    with tempfile.TemporaryDirectory() as tmp:
        html = Path(tmp) / f"{command}.html"
        code = demo_page(html, command=command)
        screenshot(html, png, size=(1200, 2200 if command == "report" else 2600))
    sys.stdout.write(f"wrote {png} (admin {command} exited {code})\n")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
