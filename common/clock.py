"""Time, injected: services ask a :class:`Clock`, so tests can move time instead of sleeping.

A rehearsal's services ask the sandbox's clock instead (:class:`RehearsalClock`): the file
``python -m sandbox`` writes and names in ``.env.sandbox`` (SANDBOX_CLOCK_FILE), which its
simulators follow too, so ``python -m sandbox advance 2d`` or ``--speed 60`` moves the rules'
time for every process of the rehearsal at once. Only ``now`` moves: sleeps, pacing and
timeouts stay in real seconds (they protect real servers). Settings refuse SANDBOX_CLOCK_FILE
unless every service it talks to is on this machine, so production always runs on
:class:`SystemClock`.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import Protocol

from common.errors import ConfigError

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


# -- a rehearsal's clock ------------------------------------------------------------------------
@dataclass(frozen=True)
class Warp:
    """Rehearsal time as a line through real time (both as Unix seconds): at real time ``real``
    it was ``sim``, and it runs ``speed`` times as fast as real time."""

    real: float
    sim: float
    speed: float = 1.0

    def at(self, real: float) -> float:
        return self.sim + (real - self.real) * self.speed

    def moved(self, real: float, seconds: float = 0.0, speed: float | None = None) -> Warp:
        """The same clock ``seconds`` further on from ``real``, at ``speed`` from there."""
        return Warp(real, self.at(real) + seconds, self.speed if speed is None else speed)


class ClockFile:
    """The file one rehearsal's processes share their clock through: ``{"real": ..., "sim":
    ..., "speed": ...}`` (a :class:`Warp`), replaced whole on every change so a reader never
    sees half of it. ``python -m sandbox`` writes it; its simulators and the services read it
    on every ``now`` (a cached read while the file is unchanged)."""

    def __init__(self, path: Path, real: Callable[[], float] = time.time) -> None:
        self.path = path
        self._real = real
        self._lock = threading.Lock()
        self._seen: tuple[int, int] | None = None
        self._warp: Warp | None = None

    def warp(self) -> Warp:
        """The clock as the file holds it now; ValueError if it cannot be read (and it never
        could: a file that disappears later, the sandbox stopping, keeps the last one)."""
        with self._lock:
            try:
                stat = self.path.stat()
                seen = (stat.st_ino, stat.st_mtime_ns)
                if seen != self._seen or self._warp is None:
                    data = json.loads(self.path.read_text(encoding="utf-8"))
                    self._warp = Warp(float(data["real"]), float(data["sim"]), float(data["speed"]))
                    self._seen = seen
            except (OSError, ValueError, KeyError, TypeError) as exc:
                if self._warp is None:
                    raise ValueError(f"{self.path}: not a sandbox clock ({exc})") from None
            return self._warp

    def now(self) -> float:
        """Rehearsal time now, as Unix seconds."""
        return self.warp().at(self._real())

    def write(self, warp: Warp) -> None:
        partial = self.path.with_name(self.path.name + ".partial")
        partial.write_text(json.dumps({"real": warp.real, "sim": warp.sim, "speed": warp.speed}))
        os.replace(partial, self.path)

    def start(self, speed: float = 1.0) -> None:
        """A new rehearsal: real time from now on, at ``speed``."""
        now = self._real()
        self.write(Warp(now, now, speed))

    def advance(self, seconds: float) -> float:
        """Move the rehearsal ``seconds`` forward; its time afterwards (Unix seconds)."""
        now = self._real()
        moved = self.warp().moved(now, seconds)
        self.write(moved)
        return moved.at(now)


class RehearsalClock(SystemClock):
    """The real clock, but ``now`` is the rehearsal's (its SANDBOX_CLOCK_FILE)."""

    def __init__(self, tz: tzinfo, path: Path) -> None:
        super().__init__(tz)
        self.file = ClockFile(path)
        try:
            self.file.warp()  # a clock that cannot be read fails at startup, not mid-cycle
        except ValueError as exc:
            raise ConfigError(f"SANDBOX_CLOCK_FILE: {exc}; start python -m sandbox again") from None

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.file.now(), self.tz)


def clock_for(tz: tzinfo, rehearsal_file: Path | None) -> Clock:
    """The services' clock: the real one, or a rehearsal's when SANDBOX_CLOCK_FILE is set."""
    return SystemClock(tz) if rehearsal_file is None else RehearsalClock(tz, rehearsal_file)
