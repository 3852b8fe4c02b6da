"""A message's life in the Twilio simulator: statuses over time, callbacks, changes, inbound.

Status progression on the simulated clock and the outcome numbers' final states, Messaging
Service sends, signed status callbacks, redacting, deleting and canceling, inbound messages with
STOP/START opt-out and the signed incoming-message webhook, and configurable lifecycle timings.
Driven through the real twilio SDK as production drives it; each test that pins a Twilio
behaviour cites the section of the team's Twilio notes (TWILIO_API.md) it follows.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from sandbox.clock import SimClock
from sandbox.httpserver import Request, Response, SimServer, wait_until
from sandbox.twilio.client import make_client
from sandbox.twilio.numbers import OUTCOMES
from sandbox.twilio.server import TwilioSim
from tests.sandbox.twilio.helpers import (
    PARTICIPANT,
    refused,
    send,
)


class Recorder:
    """A webhook receiver: records each request and answers 200."""

    def __init__(self) -> None:
        self.requests: list[Request] = []

    def describe(self, request: Request) -> dict[str, str]:
        return {"path": request.path}

    def handle(self, request: Request) -> Response:
        self.requests.append(request)
        return Response(200, "<Response/>", content_type="text/xml")


@pytest.fixture
def receiver() -> Iterator[tuple[SimServer, Recorder]]:
    recorder = Recorder()
    server = SimServer(recorder).start()
    try:
        yield server, recorder
    finally:
        server.stop()


# -- lifecycle over simulated time -----------------------------------------------------------


def test_status_progresses_with_the_clock(client: Client, sim: TwilioSim, clock: SimClock) -> None:
    """queued -> sending -> sent -> delivered; date_sent and price appear at sent (§2.1, §8.6)."""
    sid = send(client, sim).sid
    seen = []
    for _ in range(4):
        message = client.messages(sid).fetch()
        seen.append((message.status, message.date_sent is not None, message.price))
        clock.advance(1.5)
    assert seen == [
        ("queued", False, None),
        ("sending", False, None),
        ("sent", True, "-0.00790"),
        ("delivered", True, "-0.00790"),
    ]
    assert client.messages(sid).fetch().date_sent == datetime(2026, 3, 2, 10, 0, 2, tzinfo=UTC)


@pytest.mark.parametrize(
    "to", [to for to, outcome in OUTCOMES.items() if outcome.status == "undelivered"]
)
def test_undelivered_outcome_numbers(
    client: Client, sim: TwilioSim, clock: SimClock, to: str
) -> None:
    """Our outcome numbers end undelivered with their 30xxx code (TWILIO_API.md §2.2)."""
    sid = send(client, sim, to=to).sid
    clock.advance(3)
    assert client.messages(sid).fetch().status == "sent"
    clock.advance(1)
    message = client.messages(sid).fetch()
    assert message.status == "undelivered"
    assert message.error_code == int("30" + to[-3:])
    assert message.error_message
    assert to in TwilioSim.OUTCOME_NUMBERS


def test_sent_can_be_final(client: Client, sim: TwilioSim, clock: SimClock) -> None:
    """A message may stay sent forever when no receipt comes (TWILIO_API.md §2.1)."""
    sid = send(client, sim, to="+15005553000").sid
    clock.advance(3 * 86400)
    assert client.messages(sid).fetch().status == "sent"


def test_queue_overflow_fails_30001(client: Client, sim: TwilioSim, clock: SimClock) -> None:
    """failed/30001 never leaves Twilio, so it has no date_sent (TWILIO_API.md §2.1, §2.2)."""
    sid = send(client, sim, to="+15005553001").sid
    clock.advance(5)
    message = client.messages(sid).fetch()
    assert (message.status, message.error_code, message.date_sent) == ("failed", 30001, None)


def test_validity_period_expiry_fails_30036(
    client: Client, sim: TwilioSim, clock: SimClock
) -> None:
    """A message still queued when its ValidityPeriod ends fails with 30036 (§3.1)."""
    sid = send(client, sim, to="+15005553036", validity_period=60).sid
    clock.advance(59)
    assert client.messages(sid).fetch().status == "queued"
    clock.advance(1)
    message = client.messages(sid).fetch()
    assert (message.status, message.error_code) == ("failed", 30036)


def test_messaging_service_starts_accepted(client: Client, sim: TwilioSim, clock: SimClock) -> None:
    """With a Messaging Service: accepted, from null, 0 segments until a sender is picked (§1.4)."""
    message = client.messages.create(
        to=PARTICIPANT, messaging_service_sid=sim.messaging_service_sid, body="hi"
    )
    assert (message.status, message.from_, message.num_segments) == ("accepted", None, "0")
    clock.advance(5)
    later = client.messages(message.sid).fetch()
    assert (later.status, later.from_, later.num_segments) == ("delivered", sim.from_number, "1")


def test_unknown_messaging_service(client: Client) -> None:
    """A malformed MG SID is 21705, an unknown one 21701 (Twilio error dictionary)."""
    for service, code in (("MG123", 21705), ("MG" + "a" * 32, 21701)):
        with pytest.raises(TwilioRestException) as caught:
            client.messages.create(to=PARTICIPANT, messaging_service_sid=service, body="x")
        assert caught.value.code == code


# -- status callbacks ------------------------------------------------------------------------


def test_status_callbacks_are_signed_and_ordered(
    client: Client,
    sim: TwilioSim,
    clock: SimClock,
    receiver: tuple[SimServer, Recorder],
) -> None:
    """Each non-initial status is POSTed, signed with the Auth Token (TWILIO_API.md §2.1, §4.7)."""
    server, recorder = receiver
    url = f"{server.base_url}/status?record=17"
    sid = send(client, sim, to="+15005553003", status_callback=url).sid
    clock.advance(10)
    assert wait_until(lambda: len(recorder.requests) == 3, timeout=5)
    validator = RequestValidator(sim.auth_token)
    statuses = []
    for request in recorder.requests:
        params = {key: values[0] for key, values in request.form().items()}
        assert validator.validate(url, params, request.headers["X-Twilio-Signature"])
        assert params["MessageSid"] == params["SmsSid"] == sid
        assert params["AccountSid"] == sim.account_sid
        statuses.append((params["MessageStatus"], params.get("ErrorCode")))
    assert statuses == [("sending", None), ("sent", None), ("undelivered", "30003")]
    assert "RawDlrDoneDate" in recorder.requests[-1].form()
    assert all(d.status == 200 for d in sim.callbacks())


def test_unreachable_callback_does_not_block(
    client: Client, sim: TwilioSim, clock: SimClock
) -> None:
    """Callbacks are best effort: a dead receiver is recorded, the API carries on (§8.7)."""
    sid = send(client, sim, status_callback="http://127.0.0.1:9/cb").sid
    clock.advance(10)
    assert client.messages(sid).fetch().status == "delivered"
    assert wait_until(lambda: len(sim.callbacks()) == 3, timeout=5)
    assert all(d.status is None and d.error for d in sim.callbacks())


# -- update and delete -----------------------------------------------------------------------


def test_redact_and_delete(client: Client, sim: TwilioSim, clock: SimClock) -> None:
    """Body="" redacts; delete is refused (20009) until final, then 404s (§1.1, §8.10)."""
    sid = send(client, sim).sid
    with pytest.raises(TwilioRestException) as caught:
        client.messages(sid).delete()
    assert caught.value.code == 20009
    clock.advance(5)
    assert client.messages(sid).update(body="").body == ""
    assert client.messages(sid).delete() is True
    with pytest.raises(TwilioRestException) as gone:
        client.messages(sid).fetch()
    assert gone.value.code == 20404


def test_cancel_needs_a_scheduled_message(client: Client, sim: TwilioSim) -> None:
    """Status=canceled only works on scheduled messages; otherwise 30409 (§8.10)."""
    sid = send(client, sim).sid
    with pytest.raises(TwilioRestException) as caught:
        client.messages(sid).update(status="canceled")
    assert caught.value.code == 30409


# -- inbound and opt-out ---------------------------------------------------------------------


def test_inbound_stop_blocks_then_start_unblocks(client: Client, sim: TwilioSim) -> None:
    """STOP blocks the pair (21610) until START; each keyword gets an auto-reply (§3.2)."""
    sid = sim.inject_inbound(PARTICIPANT, sim.from_number, " stop ")
    inbound = client.messages(sid).fetch()
    assert (inbound.direction, inbound.status, inbound.from_) == (
        "inbound",
        "received",
        PARTICIPANT,
    )
    assert sim.is_opted_out(PARTICIPANT)
    assert refused(client, sim).code == 21610
    assert send(client, sim, to="+15550100002").status == "queued"  # other recipients unaffected
    sim.inject_inbound(PARTICIPANT, sim.from_number, "START")
    assert send(client, sim).status == "queued"
    replies = [m for m in client.messages.list(to=PARTICIPANT) if m.direction == "outbound-reply"]
    assert len(replies) == 2
    assert len(sim.sent()) == 2  # the send log holds API creates only


def test_inbound_webhook_is_signed(sim: TwilioSim, receiver: tuple[SimServer, Recorder]) -> None:
    """An inbound message POSTs the signed incoming-message webhook (TWILIO_API.md §4.6, §4.7)."""
    server, recorder = receiver
    sim.inbound_url = f"{server.base_url}/sms"
    sim.inject_inbound(PARTICIPANT, sim.from_number, "Hello")
    assert wait_until(lambda: len(recorder.requests) == 1, timeout=5)
    request = recorder.requests[0]
    params = {key: values[0] for key, values in request.form().items()}
    assert (params["Body"], params["From"], params["SmsStatus"]) == (
        "Hello",
        PARTICIPANT,
        "received",
    )
    validator = RequestValidator(sim.auth_token)
    assert validator.validate(sim.inbound_url, params, request.headers["X-Twilio-Signature"])


# -- the simulator's own surface -------------------------------------------------------------


def test_custom_timings_and_message_view(clock: SimClock) -> None:
    """Lifecycle offsets are configurable; sim.message() reads the status as of the clock."""
    with pytest.raises(ValueError, match="timings"):
        TwilioSim(clock=clock, timings=(2.0, 1.0, 3.0))
    with TwilioSim(clock=clock, timings=(10.0, 20.0, 60.0)) as sim:
        client = make_client(sim.base_url, sim.account_sid, sim.auth_token)
        sid = send(client, sim).sid
        clock.advance(59)
        assert sim.message(sid)["status"] == "sent"
        clock.advance(1)
        assert sim.message(sid)["status"] == "delivered"
        with pytest.raises(KeyError):
            sim.message("SM" + "0" * 32)
