"""Time, injected: services ask a :class:`Clock`, so tests can move time instead of sleeping."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, tzinfo
from typing import Protocol

# How far another system's clock (Twilio's, Microsoft's) may disagree with ours: a lookup of what
# was sent since a moment looks this far before it.
SKEW = timedelta(minutes=5)


class Clock(Protocol):
    """What services need to know about time."""

    tz: tzinfo

    def now(self) -> datetime:
        """Current time, aware, in the study's TIMEZONE."""
        ...

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> None:
        """Wait ``seconds``; return early if ``stop`` is set."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary start, never going back: for measuring waits (a wall
        clock stepped by NTP must not shorten one)."""
        ...


class SystemClock:
    """The real clock."""

    def __init__(self, tz: tzinfo) -> None:
        self.tz = tz

    def now(self) -> datetime:
        return datetime.now(self.tz)

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> None:
        if seconds <= 0:
            return
        if stop is None:
            time.sleep(seconds)
        else:
            stop.wait(seconds)


class ManualClock:
    """A clock that only moves when told to (``advance``) or when slept on; for tests."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self.tz = start.tzinfo
        self._start = start
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        with self._lock:
            return (self._now - self._start).total_seconds()

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += timedelta(seconds=seconds)

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> None:
        if seconds > 0:
            self.advance(seconds)
