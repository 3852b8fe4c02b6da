"""Signed webhooks from the simulator: status callbacks and inbound-message requests.

Twilio POSTs form parameters and signs them in ``X-Twilio-Signature`` with the account's Auth
Token (TWILIO_API.md §2.1, §4.7). Here a background thread does the POSTs, best effort, with a
bounded timeout, so a slow or absent receiver never holds up the simulated API. Every attempt is
kept in :attr:`WebhookSender.deliveries` for tests to inspect.
"""

from __future__ import annotations

import queue
import threading
import uuid
from dataclasses import dataclass

import requests
from twilio.request_validator import RequestValidator


@dataclass(frozen=True)
class Delivery:
    """One webhook attempt: where, what, and the receiver's HTTP status (or the error)."""

    url: str
    params: dict[str, str]
    signature: str
    status: int | None
    error: str | None = None


class WebhookSender:
    """Posts signed webhooks from a queue, in order, on one background thread."""

    def __init__(self, auth_token: str, timeout: float = 5.0) -> None:
        self._validator = RequestValidator(auth_token)
        self._timeout = timeout
        self._queue: queue.Queue[tuple[str, dict[str, str]] | None] = queue.Queue()
        self._lock = threading.Lock()
        self._deliveries: list[Delivery] = []
        self._thread: threading.Thread | None = None
        self._session = requests.Session()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="twilio-sim-webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the POST in progress (bounded by its timeout); drop the rest."""
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout=self._timeout + 1)
        self._session.close()

    def send(self, url: str, params: dict[str, str]) -> None:
        """Queue a signed POST of ``params`` to ``url``; never blocks."""
        self._queue.put((url, dict(params)))

    def deliveries(self) -> list[Delivery]:
        """Every attempt so far, oldest first."""
        with self._lock:
            return list(self._deliveries)

    def idle(self) -> bool:
        """True when nothing is waiting to be posted."""
        return self._queue.unfinished_tasks == 0

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                self._post(*item)
            finally:
                self._queue.task_done()

    def _post(self, url: str, params: dict[str, str]) -> None:
        signature = self._validator.compute_signature(url, params)
        headers = {
            "X-Twilio-Signature": signature,
            "User-Agent": "TwilioProxy/1.1",
            "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
        }
        try:
            response = self._session.post(
                url, data=params, headers=headers, timeout=self._timeout, allow_redirects=False
            )
            delivery = Delivery(url, params, signature, response.status_code)
        except requests.RequestException as exc:
            delivery = Delivery(url, params, signature, None, error=type(exc).__name__)
        with self._lock:
            self._deliveries.append(delivery)
