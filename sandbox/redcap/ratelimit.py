"""REDCap's page-hit rate limiter: too many requests a minute from one IP bans it for good.

REDCap counts every request per client IP over a sliding 60-second window. The request that
takes the count over ``page_hit_threshold_per_minute`` (default 600; 0 disables the limiter) is
still served, but the IP goes on the banned list, and from then on every request from it gets a
plain-text 429 until an administrator removes the ban (REDCAP_API.md §6). The window runs on the
simulator's clock, so tests can let a minute pass without waiting for it.
"""

from __future__ import annotations

import threading
from collections import deque
from datetime import datetime, timedelta

from sandbox.clock import SimClock

DEFAULT_PER_MINUTE = 600
_WINDOW = timedelta(seconds=60)


def ban_message(ip: str) -> str:
    """The body REDCap prints to a banned IP (``Logging::checkBannedIp``)."""
    return f"Your IP address ({ip}) has been banned due to suspected abuse."


class RateLimiter:
    """Per-IP sliding-window counter with a permanent ban list; thread-safe."""

    def __init__(self, clock: SimClock, per_minute: int = DEFAULT_PER_MINUTE) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._hits: dict[str, deque[datetime]] = {}
        self._banned: set[str] = set()
        self.per_minute = per_minute

    def admit(self, ip: str) -> bool:
        """Count one request from ``ip``; False if the IP was already banned (answer 429)."""
        now = self._clock.now()
        with self._lock:
            if ip in self._banned:
                return False
            if self.per_minute <= 0:
                return True
            hits = self._hits.setdefault(ip, deque())
            hits.append(now)
            # REDCap counts hits strictly newer than one minute ago.
            while hits and hits[0] <= now - _WINDOW:
                hits.popleft()
            if len(hits) > self.per_minute:
                self._banned.add(ip)
                hits.clear()
            return True

    def is_banned(self, ip: str) -> bool:
        with self._lock:
            return ip in self._banned

    def unban(self, ip: str | None = None) -> None:
        """Lift the ban on ``ip``, or on every IP (what an admin's DELETE does)."""
        with self._lock:
            if ip is None:
                self._banned.clear()
                self._hits.clear()
            else:
                self._banned.discard(ip)
                self._hits.pop(ip, None)
