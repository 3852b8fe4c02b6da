"""Fixtures for the Twilio simulator tests: a frozen clock, a running simulator, an SDK client.

Their ``sim`` (tests/conftest.py's ``twilio_sim``) overrides the REDCap ``sim`` of
tests/sandbox/conftest.py inside this package.
"""

from __future__ import annotations

import pytest
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from sandbox.clock import SimClock
from sandbox.twilio.server import TwilioSim


@pytest.fixture
def clock(twilio_clock: SimClock) -> SimClock:
    return twilio_clock


@pytest.fixture
def sim(twilio_sim: TwilioSim) -> TwilioSim:
    return twilio_sim


@pytest.fixture
def client(sim: TwilioSim) -> Client:
    # Exactly how production builds its client, with the base URL swapped (method A).
    client = Client(sim.account_sid, sim.auth_token, http_client=TwilioHttpClient(timeout=5))
    client.api.base_url = sim.base_url
    return client
