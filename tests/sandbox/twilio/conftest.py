"""Fixtures for the Twilio simulator tests: a frozen clock, a running simulator, an SDK client.

Their ``sim`` overrides the REDCap ``sim`` of tests/sandbox/conftest.py inside this package.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC

import pytest
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from sandbox.clock import SimClock
from sandbox.twilio.server import TwilioSim
from tests.sandbox.twilio.helpers import START


@pytest.fixture(autouse=True)
def _no_region(monkeypatch: pytest.MonkeyPatch) -> None:
    # A region or edge makes the SDK rewrite the host (TWILIO_API.md §4.5).
    monkeypatch.delenv("TWILIO_REGION", raising=False)
    monkeypatch.delenv("TWILIO_EDGE", raising=False)


@pytest.fixture
def clock() -> SimClock:
    clock = SimClock(tz=UTC, start=START)
    clock.freeze()
    return clock


@pytest.fixture
def sim(clock: SimClock) -> Iterator[TwilioSim]:
    sim = TwilioSim(clock=clock, from_number="+15550009999").start()
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture
def client(sim: TwilioSim) -> Client:
    # Exactly how production builds its client, with the base URL swapped (method A).
    client = Client(sim.account_sid, sim.auth_token, http_client=TwilioHttpClient(timeout=5))
    client.api.base_url = sim.base_url
    return client
