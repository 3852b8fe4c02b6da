"""The Twilio simulator as tests and ``make demo`` use it: :class:`TwilioSim`.

Start it, point the real SDK at ``sim.base_url`` (``client.api.base_url``, TWILIO_API.md §4.5 A;
production reads it from ``TWILIO_API_BASE_URL``), and look at what was sent with
:meth:`TwilioSim.sent` (and when each create arrived, in real time, with
:meth:`TwilioSim.arrivals`). Time is the :class:`SimClock`'s: ``sim.clock.advance(5)`` moves every
message along its lifecycle, and a background ticker notices the changes and fires the signed
status callbacks within a fraction of a real second. Another process makes a participant reply
through ``POST /sandbox/inbound.json`` (:mod:`sandbox.twilio.control`, used by
``python -m sandbox reply``). Faults go through ``sim.server.faults``
(``describe()`` gives ``{"resource": "messages", "method": ..., "op": ...}``).

Magic numbers and outcomes: see :mod:`sandbox.twilio.numbers` (``TwilioSim.OUTCOME_NUMBERS``).
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Mapping

from sandbox.clock import SimClock
from sandbox.faults import Fault
from sandbox.httpserver import SimServer
from sandbox.twilio.app import TwilioApp
from sandbox.twilio.arrivals import Arrival
from sandbox.twilio.callbacks import Delivery, WebhookSender
from sandbox.twilio.errors import TwilioApiError, rate_limited_body
from sandbox.twilio.lifecycle import Timings
from sandbox.twilio.lookups import LineTypes
from sandbox.twilio.message import Message, inbound_params, status_callback_params, to_json
from sandbox.twilio.messages import MessageStore, new_sid
from sandbox.twilio.numbers import MAGIC_FROM_OK, OUTCOME_NUMBERS
from sandbox.twilio.services import ServiceNumber

TICK_SECONDS = 0.05  # real seconds between looks at the clock for due status changes


class TwilioSim:
    """A local, stateful fake of Twilio's Messages API on 127.0.0.1."""

    OUTCOME_NUMBERS: dict[str, str] = OUTCOME_NUMBERS

    def __init__(
        self,
        *,
        account_sid: str | None = None,
        auth_token: str | None = None,
        from_number: str = MAGIC_FROM_OK,
        clock: SimClock | None = None,
        port: int = 0,
        timings: Timings = (1.0, 2.0, 4.0),
        webhook_timeout: float = 5.0,
        service_numbers: tuple[str, ...] = (),
        line_types: Mapping[str, str] | None = None,
    ) -> None:
        self.account_sid = account_sid or new_sid("AC")
        self.auth_token = auth_token or secrets.token_hex(16)
        self.from_number = from_number
        self.clock = clock or SimClock()
        self.messaging_service_sid = new_sid("MG")
        self.inbound_url: str | None = None  # the number's "a message comes in" webhook
        self.webhooks = WebhookSender(self.auth_token, timeout=webhook_timeout)
        # The Messaging Service's sender pool: the simulator's number (the one it sends from),
        # then any others the account put in the service.
        pool = tuple(dict.fromkeys((from_number, *service_numbers)))
        self.store = MessageStore(
            account_sid=self.account_sid,
            clock=self.clock,
            from_number=from_number,
            messaging_service_sid=self.messaging_service_sid,
            timings=timings,
            on_transition=self._transition,
            owned_numbers=pool,
        )
        added = self.clock.now()
        # Lookup v2: the line types given here (E.164 -> landline, mobile...), else its defaults.
        self.line_types = LineTypes(line_types)
        self.app = TwilioApp(
            self.store,
            self.account_sid,
            self.auth_token,
            inject=self.inject_inbound,
            service_numbers=tuple(ServiceNumber(new_sid("PN"), n, added) for n in pool),
            line_types=self.line_types,
        )
        self.server = SimServer(self.app, port, clock=self.clock.now)
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``: what clients use instead of https://api.twilio.com."""
        return self.server.base_url

    def start(self) -> TwilioSim:
        self.webhooks.start()
        self.server.start()
        self._stop.clear()
        self._ticker = threading.Thread(target=self._tick_loop, name="twilio-sim-tick", daemon=True)
        self._ticker.start()
        return self

    def stop(self) -> None:
        """Stop serving, ticking and posting webhooks; bounded."""
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=5)
        self.server.stop()
        self.webhooks.stop()

    def __enter__(self) -> TwilioSim:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- inspection ------------------------------------------------------------------------

    def sent(self, to: str | None = None) -> list[dict[str, object]]:
        """The send log: messages created through the API (to ``to``), oldest first, as JSON."""
        return [
            to_json(message, self.account_sid)
            for message in self.store.outbound_log()
            if to is None or message.to == to
        ]

    def arrivals(self) -> list[Arrival]:
        """When each Messages create reached the simulator (real time, whatever its answer,
        injected faults included), oldest first; see :mod:`sandbox.twilio.arrivals`."""
        return self.app.arrivals.snapshot()

    def message(self, sid: str) -> dict[str, object]:
        """The current JSON of message ``sid`` (status as of the clock now); KeyError if none."""
        try:
            return to_json(self.store.get(sid), self.account_sid)
        except TwilioApiError:
            raise KeyError(sid) from None

    def callbacks(self) -> list[Delivery]:
        """Every webhook POST attempted so far (status callbacks and inbound), oldest first."""
        return self.webhooks.deliveries()

    def is_opted_out(self, recipient: str, sender: str | None = None) -> bool:
        """True when ``recipient`` has texted STOP (and not START) to ``sender``."""
        return self.store.is_opted_out(recipient, sender or self.from_number)

    # -- driving ---------------------------------------------------------------------------

    def inject_inbound(self, from_: str, to: str, body: str, media: int = 0) -> str:
        """A participant texts ``body`` to our number ``to``; returns the inbound message SID.

        STOP-type keywords block the pair (later sends get 21610), START-type ones lift the block,
        and each keyword gets Twilio's automatic reply (direction ``outbound-reply``). ``media``
        > 0 makes it an MMS with that many attachments (``body`` may then be empty); ``from_``
        may be E.164, a short code or an alphanumeric sender ID.
        """
        message, _reply = self.store.receive(from_, to, body, media)
        if self.inbound_url:
            self.webhooks.send(self.inbound_url, inbound_params(message, self.account_sid))
        return message.sid

    def rate_limit_next(self, n: int = 1, op: str | None = None) -> Fault:
        """Answer the next ``n`` Messages requests (of ``op`` if given) with 429 / 20429."""
        match = {"resource": "messages"} if op is None else {"resource": "messages", "op": op}
        fault = Fault(
            kind="status", status=429, body=json.dumps(rate_limited_body()), times=n, match=match
        )
        return self.server.faults.add(fault)

    def tick(self) -> None:
        """Apply due status changes now (the background ticker does this on its own)."""
        self.store.tick()

    def _transition(self, message: Message) -> None:
        if message.status_callback:
            params = status_callback_params(message, self.account_sid)
            self.webhooks.send(message.status_callback, params)

    def _tick_loop(self) -> None:
        while not self._stop.wait(TICK_SECONDS):
            self.store.tick()
