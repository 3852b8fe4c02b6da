"""The simulator's real traffic checked against Twilio's own OpenAPI spec (twilio-oai, API v2010).

The SDK's requests and the simulator's answers are captured on the wire (a requests response hook)
and validated with openapi-core (TWILIO_API.md §5.4). Error answers are left out: the spec
documents none. The URL is presented as https://api.twilio.com, the spec's only server. The check
is stricter than the spec by default: every documented response property must be present and no
other may appear, and Twilio's own formats (phone-number, RFC 2822 dates, currency, uri-map) are
checked rather than skipped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from openapi_core import Config, OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from sandbox.clock import SimClock
from sandbox.twilio.server import TwilioSim
from tests.reference import TWILIO_OPENAPI

SPEC = TWILIO_OPENAPI
TWILIO = "https://api.twilio.com"
PARTICIPANT = "+15550100001"
RFC2822 = re.compile(r"^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000$")


def _is_str(pattern: str) -> Any:
    return lambda value: isinstance(value, str) and re.fullmatch(pattern, value) is not None


# Twilio's own formats, unknown to openapi-core (which would otherwise refuse or skip them).
TWILIO_FORMATS = {
    "phone-number": _is_str(r"\+[1-9][0-9]{7,14}"),
    "date-time-rfc-2822": lambda value: isinstance(value, str) and bool(RFC2822.match(value)),
    "currency": _is_str(r"[A-Z]{3}"),
    "uri-map": lambda value: (
        isinstance(value, dict)
        and all(isinstance(v, str) and v.startswith("/2010-04-01/") for v in value.values())
    ),
}


def load_openapi(path: Path, patch: Callable[[dict[str, Any]], None] | None = None) -> OpenAPI:
    """One of twilio-oai's descriptions, checked strictly: exactly its properties, Twilio's own
    formats validated. ``patch`` fixes the spec where it says too little (before loading)."""
    config = Config(
        extra_format_validators=TWILIO_FORMATS,
        extra_format_unmarshallers={name: lambda value: value for name in TWILIO_FORMATS},
        # The spec marks nothing required and allows extras: insist on exactly its properties.
        response_properties_default_policy="required",
        additional_properties_default_policy="forbid",
    )
    # from_file_path would choke on the JSON's surrogate escapes (TWILIO_API.md §5.4).
    with path.open(encoding="utf-8") as handle:
        spec = json.load(handle)
    if patch is not None:
        patch(spec)
    return OpenAPI.from_dict(spec, config=config)


def _free_form_uris(spec: dict[str, Any]) -> None:
    # "uri-map" is a free-form map of names to URIs: say so, or "forbid" refuses every key.
    message = spec["components"]["schemas"]["api.v2010.account.message"]
    message["properties"]["subresource_uris"]["additionalProperties"] = {"type": "string"}


@pytest.fixture(scope="module")
def openapi() -> OpenAPI:
    return load_openapi(SPEC, _free_form_uris)  # ~1-2 s to load: once per module


@pytest.fixture
def wire(sim: TwilioSim) -> tuple[Client, list[requests.Response]]:
    """A production-shaped client whose every response is captured."""
    captured: list[requests.Response] = []

    def keep(response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
        captured.append(response)
        return response

    http = TwilioHttpClient(timeout=5, request_hooks={"response": [keep]})
    client = Client(sim.account_sid, sim.auth_token, http_client=http)
    client.api.base_url = sim.base_url
    return client, captured


def explain(errors: Any) -> str:
    """The validation errors with their causes (openapi-core's reprs alone say little)."""
    parts = []
    for error in errors:
        cause = error.__cause__
        details = getattr(cause, "schema_errors", None) or [cause]
        lines = [f"{getattr(d, 'json_path', '')} {str(d).splitlines()[0]}" for d in details]
        parts.append(f"{error!r}: " + "; ".join(lines))
    return " | ".join(parts)


def check(
    openapi: OpenAPI, sim: TwilioSim, response: requests.Response, host: str = TWILIO
) -> None:
    """Fail with the spec's complaints about this request or its response (presented as sent to
    ``host``, the spec's server)."""
    request = response.request.copy()
    assert request.url is not None
    request.url = request.url.replace(sim.base_url, host, 1)
    oreq = RequestsOpenAPIRequest(request)
    request_errors = openapi.unmarshal_request(oreq).errors
    assert request_errors == [], f"{request.method} {request.url}: {explain(request_errors)}"
    result = openapi.unmarshal_response(oreq, RequestsOpenAPIResponse(response))
    assert result.errors == [], f"{response.status_code} {request.url}: {explain(result.errors)}"


def test_create_conforms(
    openapi: OpenAPI, sim: TwilioSim, wire: tuple[Client, list[requests.Response]]
) -> None:
    """Create requests and 201 answers match CreateMessageRequest / the message schema (§5.4)."""
    client, captured = wire
    client.messages.create(
        to=PARTICIPANT,
        from_=sim.from_number,
        body="Your survey 👍",
        status_callback="https://relay.example.org/twilio/status",
        validity_period=3600,
    )
    client.messages.create(
        to=PARTICIPANT, messaging_service_sid=sim.messaging_service_sid, body="via service"
    )
    assert [r.status_code for r in captured] == [201, 201]
    for response in captured:
        check(openapi, sim, response)


def test_fetch_conforms_through_the_lifecycle(
    openapi: OpenAPI,
    sim: TwilioSim,
    clock: SimClock,
    wire: tuple[Client, list[requests.Response]],
) -> None:
    """Fetch answers match the message schema in every status, billed or not (§5.4)."""
    client, captured = wire
    sids = [
        client.messages.create(to=to, from_=sim.from_number, body="x").sid
        for to in (PARTICIPANT, "+15005553003", "+15005553001")
    ]
    inbound = sim.inject_inbound(PARTICIPANT, sim.from_number, "STOP")
    for _ in range(3):
        for sid in [*sids, inbound]:
            client.messages(sid).fetch()
        clock.advance(2)
    statuses = {json.loads(r.text)["status"] for r in captured}
    assert {"queued", "sent", "delivered", "undelivered", "failed", "received"} <= statuses
    for response in captured:
        check(openapi, sim, response)


def test_list_and_paging_conform(
    openapi: OpenAPI,
    sim: TwilioSim,
    clock: SimClock,
    wire: tuple[Client, list[requests.Response]],
) -> None:
    """List pages (filters, PageSize, next-page PageTokens) match ListMessageResponse (§5.4)."""
    client, captured = wire
    for n in range(5):
        client.messages.create(to=PARTICIPANT, from_=sim.from_number, body=f"n{n}")
        clock.advance(3)
    captured.clear()
    listed = client.messages.list(
        to=PARTICIPANT,
        from_=sim.from_number,
        date_sent_after=datetime(2026, 3, 2, tzinfo=UTC),
        page_size=2,
    )
    assert len(listed) == 5
    assert len(captured) == 3
    assert "PageToken=PA" in (captured[-1].request.url or "")
    for response in captured:
        check(openapi, sim, response)


def test_validation_catches_a_wrong_shape(openapi: OpenAPI, sim: TwilioSim) -> None:
    """The check can fail: a body with num_segments as a number breaks the schema."""
    response = requests.post(
        f"{sim.base_url}/2010-04-01/Accounts/{sim.account_sid}/Messages.json",
        data={"To": PARTICIPANT, "From": sim.from_number, "Body": "x"},
        auth=(sim.account_sid, sim.auth_token),
        timeout=5,
    )
    broken = json.loads(response.text)
    broken["num_segments"] = 1
    response._content = json.dumps(broken).encode()
    with pytest.raises(AssertionError, match="num_segments"):
        check(openapi, sim, response)
