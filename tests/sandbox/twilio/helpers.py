"""Shortcuts for the Twilio simulator tests: ``send`` creates a message through the SDK,
``refused`` expects that create to fail, and ``raw`` talks to the Messages resource without the
SDK. The fixtures live in this package's conftest.py."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from sandbox.twilio.server import TwilioSim

START = datetime(2026, 3, 2, 10, 0, 0, tzinfo=UTC)
PARTICIPANT = "+15550100001"


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
