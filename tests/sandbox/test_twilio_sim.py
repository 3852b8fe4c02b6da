"""The Twilio simulator, driven through the real twilio SDK as production drives it.

Each test that pins a Twilio behaviour cites the section of /work/shared/TWILIO_API.md it follows.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from sandbox.clock import SimClock
from sandbox.faults import Fault
from sandbox.httpserver import Request, Response, SimServer, wait_until
from sandbox.twilio.client import make_client
from sandbox.twilio.numbers import OUTCOMES
from sandbox.twilio.server import TwilioSim

START = datetime(2026, 3, 2, 10, 0, 0, tzinfo=UTC)
PARTICIPANT = "+15550100001"
RFC2822 = re.compile(r"^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000$")
MESSAGE_KEYS = {
    "account_sid", "api_version", "body", "date_created", "date_sent", "date_updated",
    "direction", "error_code", "error_message", "from", "messaging_service_sid", "num_media",
    "num_segments", "price", "price_unit", "sid", "status", "subresource_uris", "to", "uri",
}  # fmt: skip
PAGE_KEYS = {
    "end", "first_page_uri", "messages", "next_page_uri", "page", "page_size",
    "previous_page_uri", "start", "uri",
}  # fmt: skip


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


# -- create, fetch, JSON shape ---------------------------------------------------------------


def test_create_returns_201_with_documented_json(sim: TwilioSim) -> None:
    """Create answers 201 with exactly the §1.4 fields and types (TWILIO_API.md §1.4)."""
    response = raw(sim, "POST", data={"To": PARTICIPANT, "From": sim.from_number, "Body": "hi"})
    assert response.status_code == 201
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == MESSAGE_KEYS
    assert re.fullmatch(r"SM[0-9a-f]{32}", body["sid"])
    assert body["status"] == "queued"
    assert body["direction"] == "outbound-api"
    assert (body["num_segments"], body["num_media"]) == ("1", "0")
    assert (body["error_code"], body["price"], body["date_sent"]) == (None, None, None)
    assert RFC2822.match(body["date_created"])
    assert body["date_created"] == "Mon, 02 Mar 2026 10:00:00 +0000"
    assert body["uri"] == f"/2010-04-01/Accounts/{sim.account_sid}/Messages/{body['sid']}.json"
    assert body["subresource_uris"]["media"].endswith(f"/Messages/{body['sid']}/Media.json")


def test_sdk_create_and_fetch_round_trip(client: Client, sim: TwilioSim) -> None:
    """The SDK parses create and fetch answers into typed fields (TWILIO_API.md §4.2)."""
    created = send(client, sim, body="Hello")
    fetched = client.messages(created.sid).fetch()
    assert fetched.sid == created.sid
    assert (fetched.to, fetched.from_, fetched.body) == (PARTICIPANT, sim.from_number, "Hello")
    assert fetched.date_created == START
    assert sim.sent()[0]["sid"] == created.sid
    assert sim.sent(to="+15550100002") == []


def test_fetch_unknown_sid_is_404_20404(client: Client) -> None:
    """An unknown message is 404 with code 20404 (TWILIO_API.md §1.6)."""
    with pytest.raises(TwilioRestException) as caught:
        client.messages("SM" + "0" * 32).fetch()
    assert (caught.value.status, caught.value.code) == (404, 20404)
    assert caught.value.msg.startswith("Unable to fetch record: The requested resource")


def test_wrong_credentials_get_401_20003_legacy_body(sim: TwilioSim) -> None:
    """Bad Basic credentials get 401/20003 in the legacy shape, never type+title (§1.6, §8.3)."""
    client = make_client(sim.base_url, sim.account_sid, "0" * 32, timeout=5)
    with pytest.raises(TwilioRestException) as caught:
        client.messages.create(to=PARTICIPANT, from_=sim.from_number, body="x")
    assert (caught.value.status, caught.value.code) == (401, 20003)
    body = raw(sim, "GET", auth=None).json()
    assert set(body) == {"code", "detail", "message", "more_info", "status"}
    assert body["more_info"] == "https://www.twilio.com/docs/errors/20003"
    assert sim.sent() == []


def test_unknown_path_is_404_20404(sim: TwilioSim) -> None:
    """Routes other than Messages answer 404 with code 20404 (TWILIO_API.md §8.2)."""
    url = f"{sim.base_url}/2010-04-01/Accounts/{sim.account_sid}/Calls.json"
    response = requests.get(url, auth=(sim.account_sid, sim.auth_token), timeout=5)
    assert response.status_code == 404
    assert response.json()["code"] == 20404


# -- validation and magic numbers ------------------------------------------------------------


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"Body": "x"}, 21604),
        ({"To": PARTICIPANT}, 21603),
        ({"To": PARTICIPANT, "From": "+15550009999"}, 21602),
        ({"To": PARTICIPANT, "From": "+15550009999", "Body": ""}, 21602),
    ],
)
def test_missing_parameters_in_documented_order(
    sim: TwilioSim, form: dict[str, str], code: int
) -> None:
    """To (21604), then From (21603), then Body (21602) are checked first (TWILIO_API.md §8.4)."""
    response = raw(sim, "POST", data=form)
    assert response.status_code == 400
    assert response.json()["code"] == code


@pytest.mark.parametrize(
    ("to", "code"),
    [
        ("+15005550001", 21211),
        ("+15005550002", 21612),
        ("+15005550003", 21408),
        ("+15005550004", 21610),
        ("+15005550009", 21614),
    ],
)
def test_magic_to_numbers_are_refused(client: Client, sim: TwilioSim, to: str, code: int) -> None:
    """Twilio's magic To numbers fail the create with their codes (TWILIO_API.md §2.3)."""
    error = refused(client, sim, to=to)
    assert (error.status, error.code) == (400, code)
    assert sim.sent() == []


@pytest.mark.parametrize(
    ("from_", "code"),
    [
        ("+15005550001", 21212),
        ("+15005550007", 21606),
        ("+15005550008", 21611),
        ("+15557770000", 21606),
    ],
)
def test_magic_and_unowned_from_numbers_are_refused(client: Client, from_: str, code: int) -> None:
    """Magic From numbers and numbers the account does not own are refused (§2.3)."""
    with pytest.raises(TwilioRestException) as caught:
        client.messages.create(to=PARTICIPANT, from_=from_, body="x")
    assert (caught.value.status, caught.value.code) == (400, code)


def test_magic_from_that_passes(client: Client) -> None:
    """From +15005550006 is accepted like an owned number (TWILIO_API.md §2.3)."""
    message = client.messages.create(to=PARTICIPANT, from_="+15005550006", body="x")
    assert message.status == "queued"


@pytest.mark.parametrize("to", ["5550100001", "+1 555 010 0001", "+0123456789", "+1555"])
def test_non_e164_to_is_21211(client: Client, sim: TwilioSim, to: str) -> None:
    """A To that is not E.164 is refused with 21211 (TWILIO_API.md §8.4)."""
    error = refused(client, sim, to=to)
    assert error.code == 21211
    assert "Unable to create record" in error.msg


def test_body_limit_is_1600_characters(client: Client, sim: TwilioSim) -> None:
    """Bodies over 1,600 characters get 21617; 1,600 is accepted (TWILIO_API.md §3.3)."""
    assert refused(client, sim, body="a" * 1601).code == 21617
    assert send(client, sim, body="a" * 1600).num_segments == "11"


@pytest.mark.parametrize(
    ("body", "segments"),
    [
        ("a" * 160, "1"),
        ("a" * 161, "2"),
        ("a" * 306, "2"),
        ("a" * 307, "3"),
        ("€" * 80, "1"),  # extension characters take two septets
        ("€" * 81, "2"),
        ("a" * 152 + "€" + "a" * 152, "3"),  # 306 septets, but an escape pair is never split
        ("ł" * 70, "1"),  # outside GSM-7: UCS-2
        ("ł" * 71, "2"),
        ("ł" * 134, "2"),
        ("ł" * 135, "3"),
        ("👍" * 35, "1"),  # surrogate pairs: two UTF-16 units each
        ("👍" * 36, "2"),
        ("ł" * 66 + "👍" + "ł" * 66, "3"),  # 134 units, but a surrogate pair is never split
    ],
)
def test_num_segments_follow_gsm7_and_ucs2_rules(
    client: Client, sim: TwilioSim, body: str, segments: str
) -> None:
    """num_segments is a string computed by GSM-7 / UCS-2 rules (TWILIO_API.md §3.3)."""
    assert send(client, sim, body=body).num_segments == segments


def test_validity_period_out_of_range(client: Client, sim: TwilioSim) -> None:
    """ValidityPeriod outside 1-36000 is refused with 90007 (TWILIO_API.md §3.1)."""
    assert refused(client, sim, validity_period=36001).code == 90007
    assert refused(client, sim, validity_period=0).code == 90007


def test_invalid_status_callback_is_21609(client: Client, sim: TwilioSim) -> None:
    """A StatusCallback that is not an http(s) URL is refused with 21609 (TWILIO_API.md §1.3)."""
    assert refused(client, sim, status_callback="ftp://example.org/cb").code == 21609


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


# -- list, filters, paging -------------------------------------------------------------------


def test_list_envelope_and_sdk_paging(client: Client, sim: TwilioSim, clock: SimClock) -> None:
    """The page envelope has exactly the meta keys and relative URIs; SDK pages follow (§1.5)."""
    sids = []
    for n in range(5):
        sids.append(send(client, sim, body=f"n{n}").sid)
        clock.advance(1)
    page = raw(sim, "GET", params={"To": PARTICIPANT, "PageSize": 2}).json()
    assert set(page) == PAGE_KEYS
    assert [m["sid"] for m in page["messages"]] == [sids[4], sids[3]]
    assert (page["page"], page["page_size"], page["start"], page["end"]) == (0, 2, 0, 1)
    prefix = f"/2010-04-01/Accounts/{sim.account_sid}/Messages.json?To=%2B15550100001&PageSize=2"
    assert page["first_page_uri"] == page["uri"] == prefix + "&Page=0"
    assert page["next_page_uri"] == prefix + f"&Page=1&PageToken=PA{sids[3]}"
    assert page["previous_page_uri"] is None
    sim.server.reset_stats()
    listed = client.messages.list(to=PARTICIPANT, page_size=2)
    assert [m.sid for m in listed] == sids[::-1]
    assert sim.server.stats.requests["messages/GET/list"] == 3


def test_page_tokens_go_forward_and_back(sim: TwilioSim, clock: SimClock) -> None:
    """next/previous page URIs carry PA/PB tokens and round-trip (TWILIO_API.md §1.5)."""
    for n in range(5):
        raw(sim, "POST", data={"To": PARTICIPANT, "From": sim.from_number, "Body": f"{n}"})
        clock.advance(1)
    auth = (sim.account_sid, sim.auth_token)
    first = raw(sim, "GET", params={"PageSize": 2}).json()
    second = requests.get(sim.base_url + first["next_page_uri"], auth=auth, timeout=5).json()
    assert (second["page"], second["start"], second["end"]) == (1, 2, 3)
    back = requests.get(sim.base_url + second["previous_page_uri"], auth=auth, timeout=5).json()
    assert [m["sid"] for m in back["messages"]] == [m["sid"] for m in first["messages"]]
    bad = raw(sim, "GET", params={"PageSize": 2, "Page": 1, "PageToken": "PAnope"})
    assert (bad.status_code, bad.json()["code"]) == (400, 21481)


def test_list_filters_by_to_and_from(client: Client, sim: TwilioSim) -> None:
    """To and From filter the list exactly (TWILIO_API.md §1.5)."""
    send(client, sim, to="+15550100001")
    send(client, sim, to="+15550100002")
    assert [m.to for m in client.messages.list(to="+15550100002")] == ["+15550100002"]
    assert len(client.messages.list(from_=sim.from_number)) == 2
    assert client.messages.list(from_="+15550000000") == []


def test_list_date_sent_filters(client: Client, sim: TwilioSim, clock: SimClock) -> None:
    """DateSent / DateSent< / DateSent> take GMT days, inclusive, in both forms (§1.5)."""
    sids = []
    for _ in range(3):  # one message on each of 2, 3 and 4 March, each sent 2 s later
        sids.append(send(client, sim).sid)
        clock.advance(86400)

    def listed(**filters: Any) -> list[str]:
        return [m.sid for m in client.messages.list(**filters)][::-1]

    assert listed(date_sent=date(2026, 3, 3)) == [sids[1]]
    assert listed(date_sent_before=date(2026, 3, 3)) == sids[:2]
    assert listed(date_sent_after=datetime(2026, 3, 3, 23, 0, tzinfo=UTC)) == sids[1:]
    response = raw(sim, "GET", params={"DateSent>": "2026-03-04"})
    assert [m["sid"] for m in response.json()["messages"]] == [sids[2]]


def test_unsent_messages_match_no_date_filter(client: Client, sim: TwilioSim) -> None:
    """A queued message has date_sent null, so DateSent filters skip it (§1.4, §8.6)."""
    send(client, sim)
    assert client.messages.list(date_sent_after=date(2026, 3, 1)) == []
    assert len(client.messages.list()) == 1


def test_page_size_over_1000_is_refused(client: Client, sim: TwilioSim) -> None:
    """PageSize is at most 1000: 400/20007; the SDK raises TwilioException (§1.5)."""
    response = raw(sim, "GET", params={"PageSize": 1001})
    assert (response.status_code, response.json()["code"]) == (400, 20007)
    with pytest.raises(TwilioException):
        client.messages.list(limit=5000)


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


# -- faults ----------------------------------------------------------------------------------


def test_rate_limit_is_429_20429_and_not_processed(client: Client, sim: TwilioSim) -> None:
    """A 429 (20429) request is never processed and safe to retry (TWILIO_API.md §1.6, §2.2)."""
    sim.rate_limit_next(1)
    error = refused(client, sim)
    assert (error.status, error.code) == (429, 20429)
    assert sim.sent() == []
    assert send(client, sim).status == "queued"


def test_rate_limit_can_target_one_operation(client: Client, sim: TwilioSim) -> None:
    """Faults match describe() attributes: a list-only 429 leaves creates alone."""
    sim.rate_limit_next(1, op="list")
    send(client, sim)
    with pytest.raises(TwilioException, match="Unable to fetch page"):
        client.messages.list()
    assert len(client.messages.list()) == 1


def test_server_error_maps_to_http_status(client: Client, sim: TwilioSim) -> None:
    """A 5xx without a Twilio body surfaces with code = HTTP status (TWILIO_API.md §4.3)."""
    sim.server.faults.add(Fault(kind="status", status=503, match={"op": "create"}))
    error = refused(client, sim)
    assert (error.status, error.code) == (503, 503)


def test_hang_after_apply_times_out_but_message_exists(sim: TwilioSim) -> None:
    """A create can land while the client times out, hence reconcile (TWILIO_API.md §2.2)."""
    sim.server.faults.add(Fault(kind="hang", seconds=3, after_apply=True, match={"op": "create"}))
    impatient = make_client(sim.base_url, sim.account_sid, sim.auth_token, timeout=0.3)
    with pytest.raises(requests.exceptions.ReadTimeout):
        impatient.messages.create(to=PARTICIPANT, from_=sim.from_number, body="x")
    assert len(sim.sent(to=PARTICIPANT)) == 1


def test_reset_is_a_connection_error(client: Client, sim: TwilioSim) -> None:
    """A dropped connection reaches the caller as a raw requests error (TWILIO_API.md §4.3)."""
    sim.server.faults.add(Fault(kind="reset", match={"op": "fetch"}))
    sid = send(client, sim).sid
    with pytest.raises(requests.exceptions.ConnectionError):
        client.messages(sid).fetch()


def test_describe_names_each_operation(client: Client, sim: TwilioSim) -> None:
    """Stats count requests per resource/method/op, as the fault matcher sees them."""
    sid = send(client, sim).sid
    client.messages(sid).fetch()
    client.messages.list()
    assert dict(sim.server.stats.requests) == {
        "messages/POST/create": 1,
        "messages/GET/fetch": 1,
        "messages/GET/list": 1,
    }


def test_latency_delays_but_serves(client: Client, sim: TwilioSim) -> None:
    """A latency fault slows the answer and still serves it."""
    sim.server.faults.add(Fault(kind="latency", seconds=0.2, match={"op": "create"}))
    started = time.monotonic()
    assert send(client, sim).status == "queued"
    assert time.monotonic() - started >= 0.2


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
