"""One sender (and one reply poller) per project: an exclusive, non-blocking OS lock (flock).

Every process that sends for a project (the sender, ``admin force``) holds its ``sender`` lock;
the reply poller holds its ``replies`` lock, and the detector of a study with study ID rules its
``assign`` lock (:func:`project_lock`): one process gives IDs per project.

The kernel drops the lock when the process dies, even on kill -9, so no stale lock survives.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from common.errors import ConfigError, RelayError


class AlreadyRunning(RelayError):
    """Another process holds the lock."""


class ProcessLock:
    def __init__(self, directory: Path, name: str, holder: str = "sender") -> None:
        self.path = directory / f"{name}.lock"
        self.holder = holder  # who holds it, for the message: "sender", "reply poller"
        self._fd: int | None = None

    def acquire(self) -> ProcessLock:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise ConfigError(f"LOCK_DIR: cannot create {self.path} ({exc.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise AlreadyRunning(
                f"another {self.holder} is already running for this project (lock {self.path}); "
                "stop it first (systemctl --user list-units 'redcap-relay*' shows what runs)"
            ) from None
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


SENDER, REPLIES, ASSIGNER = "sender", "replies", "assign"
_HOLDERS = {SENDER: "sender", REPLIES: "reply poller", ASSIGNER: "detector giving study IDs"}


def project_lock(directory: Path, project_id: int, role: str) -> ProcessLock:
    """The lock of ``role`` (SENDER, REPLIES or ASSIGNER) for one project, in LOCK_DIR."""
    return ProcessLock(directory, f"redcap-relay-{role}-{project_id}", holder=_HOLDERS[role])
