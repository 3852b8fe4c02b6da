"""Fixtures shared across test packages: the Microsoft simulator (``ms``, on a frozen clock
``ms_clock``) and the Twilio simulator (``twilio_sim``, on ``twilio_clock``), each used by its
own tests and by its adapter's."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from sandbox.clock import SimClock
from sandbox.microsoft.server import MicrosoftSim
from sandbox.twilio.server import TwilioSim

START = datetime(2026, 3, 3, 14, 0, tzinfo=UTC)
TWILIO_START = datetime(2026, 3, 2, 10, 0, 0, tzinfo=UTC)
TWILIO_NUMBER = "+15550009999"  # the study's number in the Twilio simulator tests


@pytest.fixture(autouse=True)
def _no_region(monkeypatch: pytest.MonkeyPatch) -> None:
    # MSAL_FORCE_REGION would send a confidential client to a regional host (TWILIO_API.md §6.4);
    # a Twilio region or edge makes the SDK rewrite the host (§4.5).
    for name in ("MSAL_FORCE_REGION", "TWILIO_REGION", "TWILIO_EDGE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def twilio_clock() -> SimClock:
    clock = SimClock(tz=UTC, start=TWILIO_START)
    clock.freeze()
    return clock


@pytest.fixture
def twilio_sim(twilio_clock: SimClock) -> Iterator[TwilioSim]:
    sim = TwilioSim(clock=twilio_clock, from_number=TWILIO_NUMBER).start()
    try:
        yield sim
    finally:
        sim.stop()


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
