"""The simulators' clock: real time plus an offset that tests and the demo can move forward.

Both simulators read time only through a :class:`SimClock`, so a test can say "two hours pass"
(``clock.advance(7200)``) and see REDCap's ``datediff(..., 'now')`` and Twilio's status
progression move with it, without sleeping. ``python -m sandbox`` gives its clock a ``follow``:
the rehearsal's shared clock (the file the services read too), in place of the wall clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, tzinfo


class SimClock:
    """Wall-clock time (or ``follow``'s, Unix seconds) shifted by an adjustable offset;
    thread-safe."""

    def __init__(
        self,
        tz: tzinfo | None = None,
        start: datetime | None = None,
        follow: Callable[[], float] | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._tz = tz
        self._follow = follow or time.time
        self._offset = timedelta(0)
        self._frozen: datetime | None = None
        if start is not None:
            self.set(start)

    def _base(self) -> datetime:
        return datetime.fromtimestamp(self._follow(), self._tz).astimezone(self._tz)

    def now(self) -> datetime:
        """The simulated time, timezone-aware (in the clock's zone, or the system's)."""
        with self._lock:
            if self._frozen is not None:
                return self._frozen
            return self._base() + self._offset

    def local_naive(self) -> datetime:
        """The simulated time as REDCap stores it: server-local wall time, no zone."""
        return self.now().replace(tzinfo=None)

    def advance(self, seconds: float) -> None:
        """Move simulated time forward (or back, if negative)."""
        with self._lock:
            if self._frozen is not None:
                self._frozen += timedelta(seconds=seconds)
            else:
                self._offset += timedelta(seconds=seconds)

    def set(self, when: datetime) -> None:
        """Jump to ``when`` (aware) and keep running from there."""
        with self._lock:
            self._frozen = None
            self._offset = when - self._base()

    def freeze(self, when: datetime | None = None) -> None:
        """Stop the clock at ``when`` (default: now); ``advance`` still moves it."""
        current = self.now() if when is None else when
        with self._lock:
            self._frozen = current

    def unfreeze(self) -> None:
        """Let a frozen clock run again from where it stands."""
        current = self.now()
        with self._lock:
            self._frozen = None
            self._offset = current - self._base()
