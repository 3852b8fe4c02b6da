"""How long to wait after a service we depend on said "not now": :class:`Backoff`.

Each consecutive failure doubles the wait, from ``base`` (the poll interval) up to
:data:`CAP`; a ``Retry-After`` the server gave is honoured when it is longer (up to
:data:`RETRY_AFTER_CAP`: a server asking for more than that is waited on again, not believed for
a day). Every wait is stretched by up to :data:`JITTER` of itself, never shortened, so several
studies' services that failed together do not all come back in the same second and a server's
``Retry-After`` is never undercut. One success resets the count.

The runner uses one for the cycles of every service (a cycle that raised a transient error);
the sender keeps one per channel (:mod:`messaging.outages`), so a Twilio outage holds SMS back
while e-mail goes on.
"""

from __future__ import annotations

import random

CAP = 300.0  # seconds: the longest wait our own doubling reaches
RETRY_AFTER_CAP = 1800.0  # seconds: the longest Retry-After we honour as given
JITTER = 0.25  # each wait is stretched by a random 0..25 % of itself


class Backoff:
    """Consecutive failures and the wait each one earns."""

    def __init__(self, base: float, rng: random.Random | None = None) -> None:
        self.base = max(base, 1.0)
        self.failures = 0
        self._rng = rng or random.Random()  # noqa: S311 (jitter, not secrecy)

    def failed(self, retry_after: float | None = None) -> float:
        """One more failure in a row: the seconds to wait before the next try."""
        self.failures += 1
        wait = min(CAP, self.base * 2.0 ** min(self.failures - 1, 32))
        if retry_after is not None and retry_after > 0:
            wait = max(wait, min(retry_after, RETRY_AFTER_CAP))
        return wait * (1 + JITTER * self._rng.random())

    def succeeded(self) -> None:
        self.failures = 0
