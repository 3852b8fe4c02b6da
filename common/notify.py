"""Telling systemd how a service is doing: the sd_notify protocol in a few lines of our own.

systemd (``Type=notify``) passes ``$NOTIFY_SOCKET``, the address of an AF_UNIX datagram socket (a
path, or ``@name`` for the abstract namespace), and with ``WatchdogSec=`` also ``$WATCHDOG_USEC``
(and ``$WATCHDOG_PID``). A service sends it newline-separated ``KEY=VALUE`` lines in one
datagram: ``READY=1`` once started, ``WATCHDOG=1`` as a keep-alive (systemd's advice: every half
interval), ``STATUS=...`` for ``systemctl status``, ``STOPPING=1`` on the way out. Outside systemd
(no ``$NOTIFY_SOCKET``) every call does nothing, so the services run the same from a shell.

Sending never raises: a service must not fail because its supervisor went away. The protocol
also allows ``vsock:`` addresses (VMs); we support only AF_UNIX and say so once.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping

log = logging.getLogger("redcap_relay.notify")


class Notifier:
    """The service's line to systemd; a no-op without ``$NOTIFY_SOCKET``."""

    def __init__(self, address: str | None, watchdog_seconds: float | None = None) -> None:
        self.address = _socket_address(address) if address else None
        # Seconds after which systemd kills a silent service; None: no watchdog.
        self.watchdog_seconds = watchdog_seconds
        self._sock: socket.socket | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], pid: int | None = None) -> Notifier:
        """What systemd passed in the environment. ``$WATCHDOG_PID``, when set, names the one
        process the watchdog is for (a child inheriting the environment must not ping)."""
        address = environ.get("NOTIFY_SOCKET") or None
        watchdog: float | None = None
        usec = environ.get("WATCHDOG_USEC", "")
        owner = environ.get("WATCHDOG_PID", "")
        mine = not owner or owner == str(os.getpid() if pid is None else pid)
        if usec.isdigit() and int(usec) > 0 and mine:
            watchdog = int(usec) / 1_000_000
        return cls(address, watchdog)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def ready(self, status: str = "") -> None:
        self.send("READY=1", *_status(status))

    def watchdog(self, status: str = "") -> None:
        """A keep-alive, with the latest status if given."""
        self.send("WATCHDOG=1", *_status(status))

    def status(self, status: str) -> None:
        self.send(*_status(status))

    def stopping(self, status: str = "") -> None:
        self.send("STOPPING=1", *_status(status))

    def send(self, *lines: str) -> bool:
        """One datagram of ``KEY=VALUE`` lines; whether it left (never raises)."""
        if self.address is None or not lines:
            return False
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto("\n".join(lines).encode("utf-8"), self.address)
        except OSError as exc:
            log.debug("sd_notify to %s failed: %s", self.address, exc)
            return False
        return True

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _socket_address(address: str) -> str | None:
    if address.startswith("@"):
        return "\0" + address[1:]  # Linux abstract namespace: a leading NUL byte
    if address.startswith("/"):
        return address
    log.warning("NOTIFY_SOCKET=%s is not an AF_UNIX address; not notifying systemd", address)
    return None


def _status(text: str) -> tuple[str, ...]:
    # One datagram is lines of KEY=VALUE: a newline inside the status would start a new key.
    flat = " ".join(text.split())
    return (f"STATUS={flat}",) if flat else ()


class Heartbeat:
    """When the service pings systemd's watchdog, from the one thread that runs the cycles.

    ``beat`` pings now (a cycle ended). ``progress`` pings when a quarter of the watchdog interval
    has passed since the last ping; the runner calls it at every stop check a cycle makes (between
    records, chunks, sleeps), so a long backlog keeps the service alive while a cycle stuck in one
    request (or anywhere that never checks) goes silent and systemd kills it.
    """

    def __init__(self, notifier: Notifier, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.notifier = notifier
        self._monotonic = monotonic
        self._thread = threading.get_ident()
        self._last = monotonic()
        self._stopping = False
        watchdog = notifier.watchdog_seconds
        # systemd's advice is half the interval; a quarter leaves room for a slow step after it.
        self.every = watchdog / 4 if notifier.enabled and watchdog else None

    def beat(self, status: str = "") -> None:
        if self.every is not None:
            self.notifier.watchdog(status)
            self._last = self._monotonic()
        elif status:
            self.notifier.status(status)

    def progress(self) -> None:
        if self.every is None or threading.get_ident() != self._thread:
            return  # another thread's progress says nothing about the cycle
        if self._monotonic() - self._last >= self.every:
            self.beat()

    def stopping(self, status: str = "stopping (signal received)") -> None:
        """``STOPPING=1``, once."""
        if not self._stopping and threading.get_ident() == self._thread:
            self._stopping = True
            self.notifier.stopping(status)
