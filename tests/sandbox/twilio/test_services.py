"""The Messaging Service's sender numbers (Messaging API v1) as the SDK reads them, checked
against Twilio's own OpenAPI description (twilio-oai, twilio_messaging_v1.json); and the
simulator's answers dated by its own clock, as Twilio's are by Twilio's."""

from __future__ import annotations

import json
from email.utils import parsedate_to_datetime
from typing import Any

import pytest
import requests
from openapi_core import Config, OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from common.errors import ConfigError
from common.twilio_client import SmsGateway
from sandbox.clock import SimClock
from sandbox.twilio.server import TwilioSim
from tests.reference import TWILIO_MESSAGING_OPENAPI
from tests.sandbox.twilio.test_openapi import TWILIO_FORMATS, explain

MESSAGING = "https://messaging.twilio.com"
POOL = ("+15005550010", "+15005550011", "+15005550012")


@pytest.fixture(scope="module")
def openapi() -> OpenAPI:
    config = Config(
        extra_format_validators=TWILIO_FORMATS,
        extra_format_unmarshallers={name: lambda value: value for name in TWILIO_FORMATS},
        response_properties_default_policy="required",
        additional_properties_default_policy="forbid",
    )
    with TWILIO_MESSAGING_OPENAPI.open(encoding="utf-8") as handle:
        return OpenAPI.from_dict(json.load(handle), config=config)


@pytest.fixture
def pool(twilio_clock: SimClock) -> Any:
    sim = TwilioSim(clock=twilio_clock, service_numbers=POOL).start()
    try:
        yield sim
    finally:
        sim.stop()


def wire(sim: TwilioSim) -> tuple[Client, list[requests.Response]]:
    """An SDK client sending messaging.twilio.com to the simulator, every answer captured."""
    captured: list[requests.Response] = []

    def keep(response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
        captured.append(response)
        return response

    class ToSim(TwilioHttpClient):  # type: ignore[misc]
        def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            return super().request(method, url.replace(MESSAGING, sim.base_url), *args, **kwargs)

    http = ToSim(timeout=5, request_hooks={"response": [keep]})
    return Client(sim.account_sid, sim.auth_token, http_client=http), captured


def check(openapi: OpenAPI, sim: TwilioSim, response: requests.Response) -> None:
    request = response.request.copy()
    assert request.url is not None
    request.url = request.url.replace(sim.base_url, MESSAGING, 1)
    oreq = RequestsOpenAPIRequest(request)
    errors = openapi.unmarshal_request(oreq).errors
    assert errors == [], f"{request.method} {request.url}: {explain(errors)}"
    result = openapi.unmarshal_response(oreq, RequestsOpenAPIResponse(response))
    assert result.errors == [], f"{response.status_code} {request.url}: {explain(result.errors)}"


def test_the_pool_lists_in_pages_as_the_spec_says(openapi: OpenAPI, pool: TwilioSim) -> None:
    """The simulator's number and the service's others, over pages of 2 (next_page_url
    followed), each page and each number conforming to ListPhoneNumberResponse."""
    client, captured = wire(pool)
    service = client.messaging.v1.services(pool.messaging_service_sid)
    numbers = service.phone_numbers.list(page_size=2)
    assert [n.phone_number for n in numbers] == [pool.from_number, *POOL]
    assert all(
        n.sid.startswith("PN") and n.service_sid == pool.messaging_service_sid for n in numbers
    )
    assert len(captured) == 2
    one = service.phone_numbers(numbers[1].sid).fetch()
    assert one.phone_number == POOL[0]
    for response in captured:
        check(openapi, pool, response)


def test_another_service_is_not_found(pool: TwilioSim) -> None:
    """A Messaging Service SID the account does not have: 404, which the adapter turns into a
    line naming TWILIO_MESSAGING_SERVICE_SID."""
    gateway = SmsGateway(
        pool.account_sid,
        pool.auth_token,
        messaging_service_sid="MG" + "0" * 32,
        base_url=pool.base_url,
    )
    with pytest.raises(ConfigError, match="TWILIO_MESSAGING_SERVICE_SID"):
        gateway.sender_numbers()


def test_the_adapter_reads_every_number_we_send_from(pool: TwilioSim) -> None:
    """With a Messaging Service: its whole pool; with a From number: that number."""
    service = SmsGateway(
        pool.account_sid,
        pool.auth_token,
        messaging_service_sid=pool.messaging_service_sid,
        base_url=pool.base_url,
    )
    assert service.sender_numbers() == {pool.from_number, *POOL}
    single = SmsGateway(
        pool.account_sid, pool.auth_token, from_number=pool.from_number, base_url=pool.base_url
    )
    assert single.sender_numbers() == {pool.from_number}


def test_answers_are_dated_by_the_simulators_clock(pool: TwilioSim, twilio_clock: SimClock) -> None:
    """Every answer's Date header is the simulated clock's (what Twilio's own clock says),
    which the adapter reports for admin check's comparison."""
    gateway = SmsGateway(
        pool.account_sid, pool.auth_token, from_number=pool.from_number, base_url=pool.base_url
    )
    assert gateway.check_credentials() == twilio_clock.now().replace(microsecond=0)
    twilio_clock.advance(3600)
    response = requests.get(
        f"{pool.base_url}/2010-04-01/Accounts/{pool.account_sid}/Messages.json",
        auth=(pool.account_sid, pool.auth_token),
        timeout=5,
    )
    assert parsedate_to_datetime(response.headers["Date"]) == twilio_clock.now().replace(
        microsecond=0
    )
