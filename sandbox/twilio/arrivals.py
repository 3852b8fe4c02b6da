"""When each Messages create reached the simulator, in real time: what Twilio's door saw.

A real harness could timestamp requests at the far end; this log gives tests and ``bench/`` the
same view, so a send-rate promise is checked where it is made (Twilio's side), not from the
sender's own notes. Times are real (``time.monotonic`` and the wall clock), never the SimClock,
which tests freeze and move.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class Arrival:
    """One create request, fully read by the server, before auth, faults or validation."""

    monotonic: float  # time.monotonic() seconds: compare arrivals with each other
    wall: datetime  # real UTC time: for reports


class ArrivalLog:
    """Thread-safe, append-only record of create arrivals, oldest first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._arrivals: list[Arrival] = []

    def note(self) -> None:
        # Under the lock so the order of the list is the order of the readings.
        with self._lock:
            self._arrivals.append(Arrival(time.monotonic(), datetime.now(UTC)))

    def snapshot(self) -> list[Arrival]:
        with self._lock:
            return list(self._arrivals)


def busiest_window(times: Sequence[float], seconds: float = 1.0) -> int:
    """The most of ``times`` inside any half-open window ``[t, t + seconds)``."""
    ordered = sorted(times)
    most, first = 0, 0
    for last, at in enumerate(ordered):
        while at - ordered[first] >= seconds:
            first += 1
        most = max(most, last - first + 1)
    return most


def achieved_rate(times: Sequence[float]) -> float:
    """Creates per second from the first arrival to the last (0.0 for fewer than two)."""
    if len(times) < 2:
        return 0.0
    span = max(times) - min(times)
    return (len(times) - 1) / span if span > 0 else float("inf")
