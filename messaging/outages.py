"""When Twilio or Graph cannot take a message: wait, per channel, and give up only after a day.

A 429, a 5xx or a connection failure *before* Twilio or Graph took a message means nothing went
out: the sender gives the record back as it was (no attempt spent, see
:mod:`messaging.send`), holds that channel back for a :class:`common.backoff.Backoff` wait
(doubling from the poll interval, honouring ``Retry-After``) and carries on with the other
channel. The first message due after the wait is the probe: if it goes, the channel is open
again; if not, the wait doubles.

A record fails for an outage (``failed``, reason :data:`GAVE_UP`) only when its message has
been due, and its channel continuously unavailable, for SEND_GIVE_UP_HOURS: the clock starts
at the later of the outage's first failure and the record's own due time. Until then it stays
where it was and its journal line says why.

This is one process's memory, like the pacers: nothing here is pipeline state. A restart
forgets the outage, so the count starts again (a record waits longer, it never fails sooner);
a sender run with ``--once`` (a CronJob) therefore never gives up on an outage: its records wait
until Twilio or Graph is back, or until their rule's anchor passes (``expired``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from common.backoff import Backoff
from common.clock import Clock

GAVE_UP = "unavailable"  # reason code of a record failed after SEND_GIVE_UP_HOURS of outage


@dataclass
class _Channel:
    backoff: Backoff
    since: datetime | None = None  # the first failure of the current outage (wall clock)
    until: float = 0.0  # monotonic: no new send before this
    retry_after: float | None = None  # what the server last asked for, if it did


@dataclass
class Outages:
    """Per channel (``sms``, ``email``): whether it is held back, and since when it failed."""

    clock: Clock
    base: float  # seconds: the first wait (the poll interval)
    rng: random.Random = field(default_factory=random.Random)
    _channels: dict[str, _Channel] = field(default_factory=dict)

    def _of(self, channel: str) -> _Channel:
        if channel not in self._channels:
            self._channels[channel] = _Channel(Backoff(self.base, self.rng))
        return self._channels[channel]

    def failed(self, channel: str, retry_after: float | None = None) -> datetime:
        """The channel failed (unavailable, or its answer lost): hold it back for the next wait.
        Returns when this outage began."""
        state = self._of(channel)
        if state.since is None:
            state.since = self.clock.now().astimezone(UTC)
        state.until = self.clock.monotonic() + state.backoff.failed(retry_after)
        state.retry_after = retry_after
        return state.since

    def worked(self, channel: str) -> None:
        """A message went out on the channel: the outage, if any, is over."""
        state = self._of(channel)
        state.backoff.succeeded()
        state.since, state.until, state.retry_after = None, 0.0, None

    def holding(self, channel: str) -> bool:
        """True while the channel's wait runs: send nothing on it."""
        state = self._channels.get(channel)
        return state is not None and self.clock.monotonic() < state.until


def waited(since: datetime, due: datetime | None, now: datetime) -> timedelta:
    """How long a message due at ``due`` has waited through an outage begun at ``since``
    (instants: each is taken in UTC, so a daylight-saving change neither adds nor hides an
    hour)."""
    start = since.astimezone(UTC)
    if due is not None:
        start = max(start, due.astimezone(UTC))
    return now.astimezone(UTC) - start
