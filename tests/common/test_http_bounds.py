"""The bounded transport: a whole answer within its deadline and its size cap, whatever the
server does, with keep-alive connections still reused. Real HTTP to the shared sim server."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests

from common.http_bounds import AnswerBounds, mount_bounded
from sandbox.faults import Fault
from sandbox.httpserver import Request, Response, SimServer

BODY = b'{"value": "' + b"x" * 2000 + b'"}'


class Answers:
    def describe(self, request: Request) -> dict[str, str]:
        return {"op": request.path.strip("/")}

    def handle(self, request: Request) -> Response:
        return Response(200, BODY, "application/json")


@pytest.fixture
def server() -> Iterator[SimServer]:
    with SimServer(Answers()) as running:
        yield running


def session(bounds: AnswerBounds) -> tuple[requests.Session, requests.adapters.HTTPAdapter]:
    plain = requests.Session()
    return plain, mount_bounded(plain, bounds)


def test_answers_within_bounds_are_read_whole_on_one_kept_alive_connection(
    server: SimServer,
) -> None:
    """Ten answers within the bounds arrive intact, all over one connection."""
    client, adapter = session(AnswerBounds(5.0, 1_000_000))
    for _ in range(10):
        assert client.get(f"{server.base_url}/a", timeout=5).content == BODY
    pools = adapter.poolmanager.pools
    keys = pools.keys()  # urllib3 refuses iteration over its pool container itself
    assert [pools[key].num_connections for key in keys] == [1]


def test_a_trickling_answer_ends_at_the_deadline_not_at_the_last_byte(server: SimServer) -> None:
    """A byte every 0.2 s (each read well within the timeout, the whole would take minutes)
    ends as a requests error once the deadline passes; the next request is served."""
    server.faults.add(Fault(kind="trickle", chunk=1, seconds=0.2))
    client, _ = session(AnswerBounds(0.5, 1_000_000))
    started = time.monotonic()
    with pytest.raises(requests.RequestException):
        client.get(f"{server.base_url}/a", timeout=5)
    assert time.monotonic() - started < 20  # a safety guard: unbounded, this takes 400 s
    assert client.get(f"{server.base_url}/a", timeout=5).content == BODY


def test_an_answer_past_the_size_cap_is_dropped(server: SimServer) -> None:
    """An answer larger than the cap is a requests error, not a body held in memory."""
    client, _ = session(AnswerBounds(5.0, 500))
    with pytest.raises(requests.RequestException):
        client.get(f"{server.base_url}/a", timeout=5)


def test_a_truncated_answer_is_a_requests_error(server: SimServer) -> None:
    """Content-Length promised more than came before the close: an error, never a short body."""
    server.faults.add(Fault(kind="truncate"))
    client, _ = session(AnswerBounds(5.0, 1_000_000))
    with pytest.raises(requests.RequestException):
        client.get(f"{server.base_url}/a", timeout=5)


def test_bounds_follow_the_timeout_setting() -> None:
    """Two timeouts for the whole answer; the cap is what 4 MiB/s carries in that time."""
    bounds = AnswerBounds.for_timeout(30)
    assert bounds.seconds == 60 and bounds.max_bytes == 60 * 4 * 1024 * 1024
