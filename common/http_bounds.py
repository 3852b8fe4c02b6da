"""Every answer we read, bounded in wall-clock time and in size, whatever the server does.

``requests`` timeouts are per socket read: a server sending a byte a second never times out, and
nothing limits how much it sends. :class:`BoundedAdapter` is a ``requests`` transport adapter
(mount it on a session) whose connections read through a reader that, before every ``recv``,
shrinks the socket timeout to what is left of the answer's deadline and counts the bytes. Past
the deadline it raises ``TimeoutError`` and past the cap an ``OSError``: urllib3 and requests
turn them into the ``requests`` exceptions every SDK already raises for a server that stopped
answering (``ReadTimeout``, ``ConnectionError``), so PyCap, the twilio SDK and msal need no
change and our adapters translate them once, as they do a timeout: a transient error, or an
unknown outcome for a create that may have been applied.

The deadline runs from the moment the request was sent to the last byte of the answer, headers
included, and starts again for each attempt of urllib3's own retries. Connection reuse is
untouched: the pool and its keep-alive connections are urllib3's; only the reading differs.
"""

from __future__ import annotations

import contextvars
import http.client
import io
import socket
import time
from dataclasses import dataclass
from typing import Any

from requests import PreparedRequest, Response
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.poolmanager import PoolManager

# A healthy answer's first byte comes within one HTTP_TIMEOUT_SECONDS (the per-read timeout said
# so already) and the rest streams at link speed in far less than another: two timeouts for the
# whole answer leave a slow but working server room and end a trickling one. One REDCap call
# (4 attempts of connect <= min(T, 10 s) + 2 T, plus ~15 s of back-off) then stays inside one
# systemd WatchdogSec = max(60, 3 x (4 T + 15)) for every T the settings allow (1-600 s).
DEADLINE_TIMEOUTS = 2.0
# What a modest 32 Mbit/s link carries in the deadline: an answer larger than that could not
# have arrived in time anyway, so the cap only ends it sooner and before it fills memory. Our
# largest answers (an export of a few fields, a survey's participant list) are a few MB.
LINK_BYTES_PER_SECOND = 4 * 1024 * 1024


@dataclass(frozen=True)
class AnswerBounds:
    """How long an answer may take and how large it may be."""

    seconds: float
    max_bytes: int

    @classmethod
    def for_timeout(cls, timeout: float) -> AnswerBounds:
        """The bounds for ``HTTP_TIMEOUT_SECONDS`` = ``timeout`` (see the constants' comments)."""
        seconds = DEADLINE_TIMEOUTS * timeout
        return cls(seconds, int(seconds * LINK_BYTES_PER_SECOND))


class AnswerTooLarge(OSError):
    """The answer passed :attr:`AnswerBounds.max_bytes`; read as a dropped connection."""


# The bounds of the request being sent in this thread: set by BoundedAdapter.send, read when
# the connection starts reading the answer (the pool's classes are shared, the bounds are not).
_BOUNDS: contextvars.ContextVar[AnswerBounds | None] = contextvars.ContextVar(
    "answer_bounds", default=None
)


class _BoundedReader(io.RawIOBase):
    """The socket as http.client reads it, with the deadline and the cap applied to each recv."""

    def __init__(self, sock: socket.socket, bounds: AnswerBounds) -> None:
        super().__init__()
        self._sock = sock
        self._deadline = time.monotonic() + bounds.seconds
        self._left = bounds.max_bytes
        self._per_read = sock.gettimeout()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the answer did not arrive within its deadline")
        self._sock.settimeout(
            remaining if self._per_read is None else min(remaining, self._per_read)
        )
        count = self._sock.recv_into(buffer)
        self._left -= count
        if self._left < 0:
            raise AnswerTooLarge("the answer is larger than the size cap")
        return count


class _BoundedResponse(http.client.HTTPResponse):
    def __init__(self, sock: socket.socket, *args: Any, **kwargs: Any) -> None:
        super().__init__(sock, *args, **kwargs)
        bounds = _BOUNDS.get()
        if bounds is not None:
            self.fp.close()  # the plain file over the socket (the socket itself stays open)
            self.fp = io.BufferedReader(_BoundedReader(sock, bounds))


class _Connection(HTTPConnection):
    response_class = _BoundedResponse


class _TLSConnection(HTTPSConnection):
    response_class = _BoundedResponse


class _Pool(HTTPConnectionPool):
    ConnectionCls = _Connection


class _TLSPool(HTTPSConnectionPool):
    ConnectionCls = _TLSConnection


_POOLS = {"http": _Pool, "https": _TLSPool}


class BoundedAdapter(HTTPAdapter):
    """An ``HTTPAdapter`` (``max_retries`` and pooling as usual) whose every answer is read
    within ``bounds``."""

    def __init__(self, bounds: AnswerBounds, **kwargs: Any) -> None:
        self.bounds = bounds
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> PoolManager:
        manager: PoolManager = super().proxy_manager_for(proxy, **kwargs)
        manager.pool_classes_by_scheme = _POOLS
        return manager

    def send(self, request: PreparedRequest, *args: Any, **kwargs: Any) -> Response:
        token = _BOUNDS.set(self.bounds)
        try:
            return super().send(request, *args, **kwargs)
        finally:
            _BOUNDS.reset(token)


def mount_bounded(session: Any, bounds: AnswerBounds, **kwargs: Any) -> BoundedAdapter:
    """Mount one :class:`BoundedAdapter` for http and https on ``session``; returns it."""
    adapter = BoundedAdapter(bounds, **kwargs)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return adapter
