"""Fixtures and shortcuts shared by the Twilio simulator tests (``test_twilio_sim_*.py``).

The fixtures are registered with ``name=`` so that a test module that imports them gets
``clock``, ``sim``, ``client`` and the autouse ``_no_region``; its ``sim`` then overrides the
REDCap ``sim`` of conftest.py for that module only. ``send`` creates a message through the SDK,
``refused`` expects that create to fail, and ``raw`` talks to the Messages resource without the
SDK.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from sandbox.clock import SimClock
from sandbox.twilio.server import TwilioSim

START = datetime(2026, 3, 2, 10, 0, 0, tzinfo=UTC)
PARTICIPANT = "+15550100001"


@pytest.fixture(autouse=True, name="_no_region")
def twilio_no_region(monkeypatch: pytest.MonkeyPatch) -> None:
    # A region or edge makes the SDK rewrite the host (TWILIO_API.md §4.5).
    monkeypatch.delenv("TWILIO_REGION", raising=False)
    monkeypatch.delenv("TWILIO_EDGE", raising=False)


@pytest.fixture(name="clock")
def twilio_clock() -> SimClock:
    clock = SimClock(tz=UTC, start=START)
    clock.freeze()
    return clock


@pytest.fixture(name="sim")
def twilio_sim(clock: SimClock) -> Iterator[TwilioSim]:
    sim = TwilioSim(clock=clock, from_number="+15550009999").start()
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture(name="client")
def twilio_client(sim: TwilioSim) -> Client:
    # Exactly how production builds its client, with the base URL swapped (method A).
    client = Client(sim.account_sid, sim.auth_token, http_client=TwilioHttpClient(timeout=5))
    client.api.base_url = sim.base_url
    return client


def send(client: Client, sim: TwilioSim, to: str = PARTICIPANT, **kwargs: Any) -> Any:
    kwargs.setdefault("body", "Your survey: https://example.org/s/abc")
    return client.messages.create(to=to, from_=sim.from_number, **kwargs)


def refused(client: Client, sim: TwilioSim, **kwargs: Any) -> TwilioRestException:
    with pytest.raises(TwilioRestException) as caught:
        send(client, sim, **kwargs)
    return caught.value


def raw(sim: TwilioSim, method: str, path: str = "", **kwargs: Any) -> requests.Response:
    url = f"{sim.base_url}/2010-04-01/Accounts/{sim.account_sid}/Messages{path}.json"
    kwargs.setdefault("auth", (sim.account_sid, sim.auth_token))
    return requests.request(method, url, timeout=5, **kwargs)
