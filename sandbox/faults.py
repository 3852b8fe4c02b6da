"""Fault injection shared by both simulators.

A test queues faults; each request asks :meth:`FaultPlan.take` for the first fault whose
``match`` fits it and that has uses left. Kinds:

- ``status``: answer ``status`` (5xx, 429, ...) with ``body`` instead of serving the request.
- ``latency``: sleep ``seconds`` and then serve the request normally.
- ``hang``: never answer (until ``seconds`` pass or the server stops). With ``after_apply=True``
  the request is applied first (a write lands) and only the answer is withheld: this is how the
  tests reproduce "the server did it, but the client never heard back".
- ``reset``: close the connection without an answer.
- ``html``: answer ``status`` (200, 403, ...) with an HTML page (``body``, or a proxy's "access
  denied" page) as a proxy, a WAF or a captive portal in front of the service does.
- ``trickle``: serve the request, but send the answer's body ``chunk`` bytes at a time with
  ``seconds`` between them (a slow-loris server; it ends early if the client hangs up).
- ``truncate``: serve the request, announce the whole body in ``Content-Length``, send only its
  first half (at least ``chunk`` bytes fewer than announced) and close the connection.

With ``after_apply=True``, ``status`` and ``html`` apply the request first and replace only its
answer: the service did it, the client reads something else (a create answered by a proxy's
page). ``trickle`` and ``truncate`` always apply it (the answer exists; only its delivery is
bad).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

FaultKind = Literal["status", "latency", "hang", "reset", "html", "trickle", "truncate"]


@dataclass
class Fault:
    """One injected misbehaviour, applied to the next ``times`` matching requests."""

    kind: FaultKind
    status: int = 500
    body: str = ""
    seconds: float = 30.0
    times: int = 1
    skip: int = 0  # let this many matching requests through untouched first
    after_apply: bool = False
    chunk: int = 4  # trickle: bytes per write; truncate: at least this many bytes withheld
    content_type: str = ""  # status: the answer's Content-Type (default text/plain)
    match: Mapping[str, str] = field(default_factory=dict)

    def fits(self, attrs: Mapping[str, str]) -> bool:
        return all(attrs.get(key) == value for key, value in self.match.items())


class FaultPlan:
    """A thread-safe queue of faults, consumed by matching requests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self.released = threading.Event()  # set on server stop: ends every hang at once

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, attrs: Mapping[str, str]) -> Fault | None:
        """The first fault fitting this request, with one use consumed; ``None`` if none."""
        with self._lock:
            for fault in self._faults:
                if fault.times > 0 and fault.fits(attrs):
                    if fault.skip > 0:
                        fault.skip -= 1
                        return None
                    fault.times -= 1
                    return fault
        return None

    def pending(self) -> int:
        with self._lock:
            return sum(f.times for f in self._faults)

    def wait(self, seconds: float) -> None:
        """Sleep for a hang or latency, cut short when the server stops."""
        self.released.wait(seconds)
