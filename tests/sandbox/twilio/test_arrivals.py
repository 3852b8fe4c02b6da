"""The Twilio simulator's arrival log: the real time each Messages create reached it, whatever
its answer, plus the window and rate arithmetic that tests and bench/send_rate.py read it with."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from twilio.rest import Client

from sandbox.twilio.arrivals import achieved_rate, busiest_window
from sandbox.twilio.server import TwilioSim
from tests.sandbox.twilio.helpers import raw, refused, send


def test_each_create_is_logged_with_its_real_arrival_time(client: Client, sim: TwilioSim) -> None:
    """Creates are logged oldest first, each between its request's start and its answer, on the
    real clocks (the simulator's own clock is frozen here)."""
    spans = []
    for _ in range(3):
        before = time.monotonic(), datetime.now(UTC)
        send(client, sim)
        spans.append((before, (time.monotonic(), datetime.now(UTC))))
    arrivals = sim.arrivals()
    assert len(arrivals) == 3
    for arrival, (before, after) in zip(arrivals, spans, strict=True):
        assert before[0] <= arrival.monotonic <= after[0]
        assert before[1] <= arrival.wall <= after[1]


def test_refused_and_faulted_creates_count_other_requests_do_not(
    client: Client, sim: TwilioSim
) -> None:
    """A create answered 400, one answered with an injected 429 and one with bad credentials all
    reached Twilio's door; fetch, list and update are not creates."""
    created = send(client, sim)
    refused(client, sim, to="+15005550001")  # 21211 invalid To
    sim.rate_limit_next(1, op="create")
    refused(client, sim)
    raw(sim, "POST", data={"To": "+15550100001", "Body": "hi"}, auth=("AC" + "0" * 32, "wrong"))
    client.messages(created.sid).fetch()
    client.messages.list(limit=5)
    client.messages(created.sid).update(body="")
    assert len(sim.arrivals()) == 4
    assert sim.sent() and len(sim.sent()) == 1  # the documented send log is unchanged


def test_busiest_window_is_half_open() -> None:
    """Creates exactly one window apart fall in different windows; closer ones share one."""
    assert busiest_window([]) == 0
    assert busiest_window([0.0, 1.0, 2.0, 3.0]) == 1
    assert busiest_window([0.0, 0.5, 0.999, 1.0]) == 3
    assert busiest_window([3.0, 0.0, 2.5, 0.2], seconds=3.0) == 3


def test_achieved_rate_counts_gaps_between_first_and_last() -> None:
    """Eleven creates spread over 2 s are 5 a second; fewer than two have no rate."""
    assert achieved_rate([n * 0.2 for n in range(11)]) == 5.0
    assert achieved_rate([1.0]) == 0.0
