"""Ending a process a test started: bounded waits, kill as the last resort, never a leak."""

from __future__ import annotations

import signal
import subprocess


def finish(proc: subprocess.Popen[str], *, terminate: bool, timeout: float) -> tuple[int, str, str]:
    """SIGTERM it first (if ``terminate``), wait at most ``timeout`` s, then kill; returns the
    exit code, stdout and stderr."""
    if terminate and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
    return proc.returncode, out or "", err or ""
