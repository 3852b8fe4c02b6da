"""Listing messages in the Twilio simulator, and the faults it can inject.

The list page envelope, SDK paging and PA/PB page tokens, the To/From/DateSent filters and the
PageSize limit; then rate limits, 5xx answers, hangs, resets and latency, and the per-operation
request stats the fault matcher uses. Driven through the real twilio SDK as production drives it
(plus raw HTTP where the exact bytes matter); each test that pins a Twilio behaviour cites the
section of the team's Twilio notes (TWILIO_API.md) it follows.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from typing import Any

import pytest
import requests
from twilio.base.exceptions import TwilioException
from twilio.rest import Client

from sandbox.clock import SimClock
from sandbox.faults import Fault
from sandbox.twilio.client import make_client
from sandbox.twilio.server import TwilioSim
from tests.sandbox.twilio.helpers import (
    PARTICIPANT,
    raw,
    refused,
    send,
)

PAGE_KEYS = {
    "end", "first_page_uri", "messages", "next_page_uri", "page", "page_size",
    "previous_page_uri", "start", "uri",
}  # fmt: skip


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
