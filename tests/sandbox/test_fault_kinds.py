"""The simulators' bad-answer faults (``html``, ``trickle``, ``truncate``, ``status`` after
applying), on the shared server, read with plain http.client as any client would."""

from __future__ import annotations

import http.client
import time
from collections.abc import Iterator

import pytest

from sandbox.faults import Fault
from sandbox.httpserver import Request, Response, SimServer

BODY = b'{"ok": true, "padding": "' + b"x" * 40 + b'"}'


class Counting:
    """An app that answers BODY as JSON and counts what it applied."""

    def __init__(self) -> None:
        self.applied = 0

    def describe(self, request: Request) -> dict[str, str]:
        return {"op": request.path.strip("/")}

    def handle(self, request: Request) -> Response:
        self.applied += 1
        return Response(200, BODY, "application/json")


@pytest.fixture
def served() -> Iterator[tuple[SimServer, Counting]]:
    app = Counting()
    with SimServer(app) as server:
        yield server, app


def get(server: SimServer, path: str = "/op") -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    connection.request("GET", path)
    return connection.getresponse()


@pytest.mark.parametrize("status", [200, 403])
def test_html_answers_a_proxy_page_with_the_status_and_applies_nothing(
    served: tuple[SimServer, Counting], status: int
) -> None:
    """``html``: the status asked for, an HTML document as text/html, the request not applied."""
    server, app = served
    server.faults.add(Fault(kind="html", status=status, match={"op": "op"}))
    answer = get(server)
    assert answer.status == status
    assert answer.getheader("Content-Type", "").startswith("text/html")
    assert answer.read().lstrip().lower().startswith(b"<!doctype html")
    assert app.applied == 0
    assert get(server).read() == BODY  # one use, then served as usual


def test_html_and_status_after_apply_apply_the_request_and_replace_only_the_answer(
    served: tuple[SimServer, Counting],
) -> None:
    """``after_apply``: the write lands, the client reads the fault's answer instead."""
    server, app = served
    server.faults.add(Fault(kind="html", status=200, after_apply=True))
    server.faults.add(Fault(kind="status", status=201, body="{}", after_apply=True))
    assert get(server).read().startswith(b"<!DOCTYPE html")
    second = get(server)
    assert (second.status, second.read()) == (201, b"{}")
    assert app.applied == 2


def test_trickle_sends_the_whole_answer_a_few_bytes_at_a_time(
    served: tuple[SimServer, Counting],
) -> None:
    """``trickle``: the real answer, complete, in ``chunk``-byte writes ``seconds`` apart."""
    server, app = served
    server.faults.add(Fault(kind="trickle", chunk=16, seconds=0.02))
    assert get(server).read() == BODY
    assert app.applied == 1


def test_truncate_announces_the_whole_body_sends_half_and_closes(
    served: tuple[SimServer, Counting],
) -> None:
    """``truncate``: Content-Length of the whole answer, part of it sent, then the close."""
    server, app = served
    server.faults.add(Fault(kind="truncate"))
    answer = get(server)
    assert answer.getheader("Content-Length") == str(len(BODY))
    with pytest.raises(http.client.IncompleteRead) as cut:
        answer.read()
    assert 0 < len(cut.value.partial) < len(BODY)
    assert app.applied == 1


def test_a_trickle_ends_when_the_server_stops(served: tuple[SimServer, Counting]) -> None:
    """Stopping the server cuts a slow trickle short: every test's stop stays bounded."""
    server, _ = served
    server.faults.add(Fault(kind="trickle", chunk=1, seconds=30))
    answer = get(server)
    started = time.monotonic()
    server.stop()
    answer.read(1)
    assert time.monotonic() - started < 10
