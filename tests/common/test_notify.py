"""sd_notify: what the services send systemd over $NOTIFY_SOCKET, and when the watchdog pings."""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.notify import Heartbeat, Notifier


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = tmp_path / "notify"
    sock.bind(str(path))
    sock.settimeout(5)
    try:
        yield str(path), sock
    finally:
        sock.close()


def test_messages_reach_a_path_socket_as_key_value_lines(
    listener: tuple[str, socket.socket],
) -> None:
    """READY, WATCHDOG, STATUS and STOPPING arrive as one datagram each, status on one line."""
    address, sock = listener
    notifier = Notifier.from_environ({"NOTIFY_SOCKET": address})
    notifier.ready("started, project 15")
    notifier.watchdog("last cycle:\nregistered=2")
    notifier.stopping()
    got = [sock.recv(4096).decode() for _ in range(3)]
    notifier.close()
    assert got == [
        "READY=1\nSTATUS=started, project 15",
        "WATCHDOG=1\nSTATUS=last cycle: registered=2",
        "STOPPING=1",
    ]


def test_abstract_namespace_address() -> None:
    """An address starting with @ is Linux's abstract namespace (a leading NUL byte)."""
    name = f"redcap-relay-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(5)
    try:
        assert Notifier.from_environ({"NOTIFY_SOCKET": "@" + name}).send("READY=1")
        assert sock.recv(4096) == b"READY=1"
    finally:
        sock.close()


def test_without_notify_socket_nothing_is_sent_and_nothing_fails() -> None:
    """Outside systemd every call is a no-op; a vanished socket never raises."""
    quiet = Notifier.from_environ({})
    assert not quiet.enabled and not quiet.send("READY=1")
    gone = Notifier.from_environ({"NOTIFY_SOCKET": "/nonexistent/notify"})
    assert gone.enabled and not gone.send("WATCHDOG=1")
    assert not Notifier.from_environ({"NOTIFY_SOCKET": "vsock:2:1234"}).enabled


def test_watchdog_interval_comes_from_watchdog_usec_for_this_process_only() -> None:
    """WATCHDOG_USEC gives the interval; a WATCHDOG_PID naming another process disables it."""
    env = {"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "30000000"}
    assert Notifier.from_environ(env, pid=7).watchdog_seconds == 30
    assert Notifier.from_environ({**env, "WATCHDOG_PID": "7"}, pid=7).watchdog_seconds == 30
    assert Notifier.from_environ({**env, "WATCHDOG_PID": "8"}, pid=7).watchdog_seconds is None
    assert Notifier.from_environ({**env, "WATCHDOG_USEC": "soon"}).watchdog_seconds is None


def test_heartbeat_pings_on_progress_every_quarter_interval_from_its_own_thread(
    listener: tuple[str, socket.socket],
) -> None:
    """Progress pings at most every quarter of the watchdog interval, and only from the thread
    that runs the cycles; a cycle's end always pings; STOPPING is said once."""
    address, sock = listener
    now = [0.0]
    beat = Heartbeat(Notifier(address, watchdog_seconds=8), monotonic=lambda: now[0])
    assert beat.every == 2
    beat.progress()  # too soon
    now[0] = 2.5
    other = threading.Thread(target=beat.progress)
    other.start()
    other.join()  # another thread: says nothing about the cycle
    beat.progress()
    beat.progress()  # just pinged
    beat.beat("last cycle: idle")
    beat.stopping()
    beat.stopping()
    sock.settimeout(0.5)
    got = []
    try:
        while True:
            got.append(sock.recv(4096).decode())
    except TimeoutError:
        pass
    assert got == [
        "WATCHDOG=1",
        "WATCHDOG=1\nSTATUS=last cycle: idle",
        "STOPPING=1\nSTATUS=stopping (signal received)",
    ]
