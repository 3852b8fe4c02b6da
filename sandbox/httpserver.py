"""A small threaded HTTP server on 127.0.0.1 that both simulators build on.

A simulator supplies an :class:`App`: ``describe(request)`` names the request for statistics and
fault matching (e.g. ``{"content": "record", "action": "import"}``), and ``handle(request)``
answers it. This module does the rest: binding, threads, request/byte counting, fault
injection, and a clean, bounded stop.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol
from urllib.parse import parse_qs, urlsplit

from sandbox.faults import Fault, FaultPlan

HTML = "text/html; charset=utf-8"
# What a proxy or a web application firewall in front of a service answers in its place.
PROXY_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>Access denied</title></head>"
    "<body><h1>Access denied</h1><p>The request was blocked by the gateway.</p></body></html>\n"
)


@dataclass
class Request:
    """What a simulator needs to know about one HTTP request."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Mapping[str, str]
    body: bytes
    client_ip: str

    def form(self) -> dict[str, list[str]]:
        """The urlencoded body, keys in order, blank values kept."""
        ctype = self.headers.get("Content-Type", "")
        if self.body and "multipart/form-data" in ctype:
            return _parse_multipart(self.body, ctype)
        return parse_qs(self.body.decode("utf-8"), keep_blank_values=True)


@dataclass
class Response:
    status: int
    body: bytes | str = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)

    def payload(self) -> bytes:
        return self.body.encode("utf-8") if isinstance(self.body, str) else self.body


class App(Protocol):
    def describe(self, request: Request) -> dict[str, str]: ...

    def handle(self, request: Request) -> Response: ...


@dataclass
class Stats:
    """Requests and bytes per request kind (the ``describe`` values joined by '/')."""

    requests: Counter[str] = field(default_factory=Counter)
    bytes_in: Counter[str] = field(default_factory=Counter)
    bytes_out: Counter[str] = field(default_factory=Counter)

    def total_requests(self) -> int:
        return sum(self.requests.values())


class _Server(ThreadingHTTPServer):
    """A client that went away mid-request (a service killed with -9, a timeout) is what the
    simulators are for, not an error worth a traceback on stderr."""

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class SimServer:
    """Runs an :class:`App` on 127.0.0.1 in a background thread."""

    def __init__(
        self,
        app: App,
        port: int = 0,
        host: str = "127.0.0.1",
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.app = app
        # What the Date header of every answer says: the simulated service's own clock (real
        # services stamp their answers with theirs), or real time.
        self.clock = clock
        self.faults = FaultPlan()
        self.stats = Stats()
        self._stats_lock = threading.Lock()
        self._httpd = _Server((host, port), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> SimServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; release every hanging request; bounded."""
        self.faults.released.set()
        if self._thread is not None:  # shutdown() waits for a serve loop: only if one runs
            self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset_stats(self) -> None:
        with self._stats_lock:
            self.stats = Stats()

    def _count(self, key: str, size_in: int, size_out: int) -> None:
        with self._stats_lock:
            self.stats.requests[key] += 1
            self.stats.bytes_in[key] += size_in
            self.stats.bytes_out[key] += size_out

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        split = urlsplit(handler.path)
        request = Request(
            method=handler.command,
            path=split.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers={k: v for k, v in handler.headers.items()},
            body=body,
            client_ip=handler.client_address[0],
        )
        attrs = self.app.describe(request)
        key = "/".join(v for v in attrs.values() if v) or request.path
        fault = self.faults.take(attrs)
        response: Response | None = None
        if fault is not None:
            if fault.kind in ("status", "html") and fault.after_apply:
                self.app.handle(request)
            if fault.kind == "status":
                ctype = fault.content_type or "text/plain; charset=utf-8"
                response = Response(fault.status, fault.body or "Injected fault", ctype)
            elif fault.kind == "html":
                response = Response(fault.status, fault.body or PROXY_PAGE, HTML)
            elif fault.kind == "latency":
                self.faults.wait(fault.seconds)
            elif fault.kind == "reset":
                self._count(key, len(body), 0)
                handler.close_connection = True
                return
            elif fault.kind == "hang":
                if fault.after_apply:
                    self.app.handle(request)
                self._count(key, len(body), 0)
                self.faults.wait(fault.seconds)
                handler.close_connection = True
                return
        if response is None:
            response = self.app.handle(request)
        payload = response.payload()
        self._count(key, len(body), len(payload))
        handler.send_response(response.status)
        handler.send_header("Content-Type", response.content_type)
        handler.send_header("Content-Length", str(len(payload)))
        for name, value in response.headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        if handler.command == "HEAD":
            return
        if fault is not None and fault.kind == "trickle":
            self._trickle(handler, payload, fault)
        elif fault is not None and fault.kind == "truncate":
            handler.wfile.write(
                payload[: max(0, min(len(payload) // 2, len(payload) - fault.chunk))]
            )
            handler.wfile.flush()
            handler.close_connection = True
        else:
            handler.wfile.write(payload)

    def _trickle(self, handler: BaseHTTPRequestHandler, payload: bytes, fault: Fault) -> None:
        """Send ``payload`` a few bytes at a time, pausing between writes; bounded by the body's
        length, the server's stop, and the client hanging up."""
        step = max(1, fault.chunk)
        for start in range(0, len(payload), step):
            if self.faults.released.is_set():
                break
            try:
                handler.wfile.write(payload[start : start + step])
                handler.wfile.flush()
            except OSError:  # the client gave up on us: what the fault is for
                break
            self.faults.wait(fault.seconds)
        handler.close_connection = True

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: with Nagle on, the body waits for the
            # client's delayed ACK of the headers, about 40 ms on every request.
            disable_nagle_algorithm = True

            def _any(self) -> None:
                server._serve(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _any

            def date_time_string(self, timestamp: float | None = None) -> str:
                if server.clock is None:
                    return super().date_time_string(timestamp)
                return formatdate(server.clock().timestamp(), usegmt=True)

            def log_message(self, format: str, *args: object) -> None:
                # Request lines can carry phone numbers in query strings: never log them.
                return

        return Handler


def wait_until(predicate: object, timeout: float = 5.0, interval: float = 0.02) -> bool:
    """Poll ``predicate()`` until true or ``timeout`` seconds pass; for tests and the demo."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return True
        time.sleep(interval)
    return False


def _parse_multipart(body: bytes, content_type: str) -> dict[str, list[str]]:
    """Form fields of a multipart/form-data body (file parts kept as text)."""
    from email.parser import BytesParser
    from email.policy import HTTP

    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    fields: dict[str, list[str]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        raw = part.get_payload(decode=True)
        text = raw.decode("utf-8") if isinstance(raw, bytes) else ""
        fields.setdefault(name, []).append(text)
    return fields
