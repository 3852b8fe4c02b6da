"""Fixtures shared across test packages: the Microsoft simulator (``ms``, on a frozen clock
``ms_clock``), used by its own tests and by the Graph adapter's."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from sandbox.clock import SimClock
from sandbox.microsoft.server import MicrosoftSim

START = datetime(2026, 3, 3, 14, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _no_region(monkeypatch: pytest.MonkeyPatch) -> None:
    # MSAL_FORCE_REGION would send a confidential client to a regional host (TWILIO_API.md §6.4).
    monkeypatch.delenv("MSAL_FORCE_REGION", raising=False)


@pytest.fixture
def ms_clock() -> SimClock:
    clock = SimClock(tz=UTC, start=START)
    clock.freeze()
    return clock


@pytest.fixture
def ms(ms_clock: SimClock) -> Iterator[MicrosoftSim]:
    sim = MicrosoftSim(clock=ms_clock).start()
    try:
        yield sim
    finally:
        sim.stop()
