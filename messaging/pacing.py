"""The send rate as a promise at Twilio's door: :class:`SendPacer`.

**Guarantee.** With ``SMS_MAX_PER_SECOND=N`` (a whole number), no 1-second window ever holds
more than N message creates *as Twilio receives them*, whatever the network does to each
request, across chunks and cycles (one pacer lives as long as the process). More generally, with
``burst = max(1, floor(N))`` and ``window = max(1 s, burst / N)``: no window of that length holds
more than ``burst`` creates. So a fraction above 1 is rounded down (2.5 sends at most 2 a second:
no pacing can average 2.5 while keeping every second at 2), and below 1 it spaces single sends
(0.5 sends one every 2 s).

**Why.** Sends are sequential, so Twilio receives create *i* at some moment between the start of
its request (``start_i``) and the arrival of the answer (``end_i``). A window holds ``burst + 1``
creates only if ``arrival[i + burst] - arrival[i] < window``. The pacer starts request
``i + burst`` no earlier than ``end_i + window``; then ``arrival[i + burst] >= start[i + burst]
>= end_i + window >= arrival[i] + window``, whatever the jitter. Pacing the starts alone cannot
promise this: a slow request followed by a fast one lands closer together than they left.

**Cost.** One round trip per ``burst`` sends: about ``burst / (window + latency)`` a second.
Negligible on loopback; against the real Twilio with 200 ms round trips, N=1 gives about 0.83
a second. (Sends are sequential, so they never exceed ``1 / latency`` anyway: at N=10 and 200 ms
that is 5 a second and the pacer never waits.) Starts are also kept ``window / burst`` apart, so
the sends of a window go out evenly rather than in a burst; that changes the shape, not the rate.

**Scope.** One pacer per process: the Sender keeps one across chunks and cycles, ``admin force``
makes its own. They never send at once (both hold the sender lock), but a pacer does not know
the previous process's last sends, so the promise across a restart relies on the restart taking
more than a second before its first create.

Time comes from the injected clock's ``monotonic()`` (ManualClock tests never sleep; the real
clock reads the OS monotonic clock, so a wall clock stepped by NTP cannot shorten a wait).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

from common.clock import Clock

RESOLUTION = 1e-7  # seconds: a wait shorter than this is float noise below any clock's tick


class SendPacer:
    """Wraps each Twilio create: waits for its turn, then notes when its request was over."""

    def __init__(self, per_second: float, clock: Clock) -> None:
        if per_second <= 0:
            raise ValueError("per_second must be positive")
        self.burst = max(1, math.floor(per_second))
        self.window = max(1.0, self.burst / per_second)
        self.spacing = self.window / self.burst
        self._clock = clock
        self._read = clock.monotonic
        self._ends: deque[float] = deque(maxlen=self.burst)  # the last `burst` requests' ends
        self._last_start: float | None = None

    @contextmanager
    def paced(self) -> Iterator[None]:
        """Around one create: returns when it may start; its end is noted even if it raised
        (a rejected or timed-out create may still have reached Twilio)."""
        self._wait_turn()
        try:
            yield
        finally:
            self._ends.append(self._read())

    def _due(self) -> float | None:
        due: list[float] = []
        if len(self._ends) == self.burst:
            due.append(self._ends[0] + self.window)
        if self._last_start is not None:
            due.append(self._last_start + self.spacing)
        return max(due) if due else None

    def _wait_turn(self) -> None:
        due = self._due()
        if due is not None:
            now = self._read()
            # Never more than one window: a reading that went backwards cannot stall sending.
            until = now + min(due - now, self.window)
            while (wait := until - self._read()) > RESOLUTION:
                self._clock.sleep(_whole_microseconds(wait))
        self._last_start = self._read()


def _whole_microseconds(seconds: float) -> float:
    # Rounded up (ManualClock keeps whole microseconds: a sleep rounded down would fall short),
    # but not for float noise, which would add a microsecond to every wait.
    return math.ceil(seconds * 1_000_000 - 0.01) / 1_000_000


class Pacers:
    """One pacer per channel, kept as long as the process: SMS at SMS_MAX_PER_SECOND, e-mail at
    EMAIL_MAX_PER_MINUTE (Exchange Online allows a mailbox about 30 messages a minute)."""

    def __init__(self, sms_per_second: float, email_per_minute: float, clock: Clock) -> None:
        self.sms = SendPacer(sms_per_second, clock)
        self.email = SendPacer(email_per_minute / 60, clock)

    def for_channel(self, channel: str) -> SendPacer:
        return self.email if channel == "email" else self.sms
