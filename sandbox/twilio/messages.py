"""The simulator's message store: create, fetch, update, delete, inbound, opt-outs.

Everything here is thread-safe and reads time only from the :class:`SimClock`. Status changes are
applied lazily (:meth:`MessageStore.tick`) whenever anyone looks, and each applied change is
reported to ``on_transition`` (the status-callback sender) in order.
"""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

from sandbox.clock import SimClock
from sandbox.twilio.errors import TwilioApiError, bad_request
from sandbox.twilio.lifecycle import FINAL_STATUSES, Timings, check_timings, plan
from sandbox.twilio.message import Message, message_uri
from sandbox.twilio.numbers import AUTO_REPLIES, keyword_kind, outcome_for
from sandbox.twilio.segments import count_segments
from sandbox.twilio.validation import check_create, first

Transition = Callable[[Message], None]
MAX_MEDIA = 10  # media items in one MMS
ONE_WAY_SENDER = re.compile(r"[A-Za-z]")  # an alphanumeric sender ID cannot be answered


def new_sid(prefix: str) -> str:
    """``prefix`` + 32 lowercase hex digits, the shape of every Twilio SID."""
    return prefix + secrets.token_hex(16)


class MessageStore:
    """All messages of one account, with their lifecycles and the opt-out set."""

    def __init__(
        self,
        *,
        account_sid: str,
        clock: SimClock,
        from_number: str,
        messaging_service_sid: str,
        timings: Timings,
        on_transition: Transition | None = None,
        owned_numbers: tuple[str, ...] = (),
    ) -> None:
        self.account_sid = account_sid
        self.clock = clock
        self.from_number = from_number
        self.messaging_service_sid = messaging_service_sid
        self.timings = check_timings(timings)
        self.owned_numbers = frozenset({from_number, *owned_numbers})
        self._on_transition = on_transition
        self._lock = threading.RLock()
        self._messages: dict[str, Message] = {}
        self._seq = 0
        self._opted_out: set[tuple[str, str]] = set()  # (recipient, our number)

    def now(self) -> datetime:
        """Simulated time in UTC."""
        return self.clock.now().astimezone(UTC)

    # -- lifecycle -------------------------------------------------------------------------

    def tick(self) -> None:
        """Apply every status change that is due by the clock now."""
        now = self.now()
        with self._lock:
            for message in self._messages.values():
                for step in message.due(now):
                    at = message.created + timedelta(seconds=step.after)
                    message.status = step.status
                    message.updated = at
                    if step.error_code is not None:
                        message.error_code = step.error_code
                    if step.status in ("queued", "sending") and not message.from_shown:
                        # A Messaging Service has now picked the sender.
                        message.from_shown = True
                        message.num_segments = count_segments(message.body)
                    if step.status == "sent":
                        message.sent = at
                        message.bill()
                    if self._on_transition is not None:
                        self._on_transition(message)

    # -- API operations --------------------------------------------------------------------

    def create(self, form: Mapping[str, list[str]]) -> Message:
        """Validate and store a new outbound message; raises :class:`TwilioApiError`."""
        self.tick()
        with self._lock:
            request = check_create(
                form,
                owned_numbers=self.owned_numbers,
                service_sid=self.messaging_service_sid,
                service_sender=self.from_number,
                opted_out=self.is_opted_out,
            )
            via_service = bool(request.messaging_service_sid) and not first(form, "From")
            status, steps = plan(
                outcome_for(request.to), self.timings, request.validity_period, via_service
            )
            message = self._add(
                prefix="MM" if request.media_urls else "SM",
                direction="outbound-api",
                to=request.to,
                sender=request.sender,
                body=request.body,
                num_media=len(request.media_urls),
                status=status,
            )
            message.steps = steps
            message.messaging_service_sid = request.messaging_service_sid
            message.status_callback = request.status_callback
            if via_service:
                # Until a sender is chosen: no From and zero segments (TWILIO_API.md §1.4).
                message.from_shown = False
                message.num_segments = 0
            return message

    def get(self, sid: str) -> Message:
        """The message with ``sid`` as of now; 404/20404 if unknown or deleted."""
        self.tick()
        with self._lock:
            message = self._messages.get(sid)
            if message is None or message.deleted:
                path = message_uri(self.account_sid, sid)
                raise TwilioApiError(404, 20404, f"The requested resource {path} was not found")
            return message

    def update(self, sid: str, form: Mapping[str, list[str]]) -> Message:
        """Redact the body (``Body=""``) or cancel (``Status=canceled``, scheduled only)."""
        with self._lock:
            message = self.get(sid)
            status = first(form, "Status")
            body = first(form, "Body")
            if status is not None:
                if status != "canceled" or message.status != "scheduled":
                    raise bad_request(30409, "This message cannot be canceled")
                message.status, message.steps = "canceled", []
            if body is not None:
                if body != "":
                    raise bad_request(20001, "Body can only be updated to '' to redact it.")
                message.body = ""
            message.updated = self.now()
            return message

    def delete(self, sid: str) -> None:
        """Remove a message from the API; refused (20009) before it reaches a final status."""
        with self._lock:
            message = self.get(sid)
            if message.status not in FINAL_STATUSES and not (
                message.status == "sent" and not message.steps
            ):
                raise bad_request(20009, "Cannot delete this resource before it is complete")
            message.deleted = True

    def order_key(self, sid: str) -> tuple[datetime, int] | None:
        """Where ``sid`` sorts in lists (deleted messages too), for page tokens; None if unknown."""
        with self._lock:
            message = self._messages.get(sid)
            return None if message is None else (message.created, message.seq)

    def visible(self) -> list[Message]:
        """Messages the API can see, newest first."""
        self.tick()
        with self._lock:
            live = [m for m in self._messages.values() if not m.deleted]
        return sorted(live, key=lambda m: (m.created, m.seq), reverse=True)

    def outbound_log(self) -> list[Message]:
        """Every message created through the API (deleted ones too), oldest first."""
        self.tick()
        with self._lock:
            made = [m for m in self._messages.values() if m.direction == "outbound-api"]
        return sorted(made, key=lambda m: m.seq)

    # -- inbound and opt-out ---------------------------------------------------------------

    def receive(
        self, from_: str, to: str, body: str, media: int = 0
    ) -> tuple[Message, Message | None]:
        """Store an inbound message; STOP/START/HELP also change the opt-out set and reply.

        ``from_`` is taken as the carrier delivers it: E.164, a short code (``72345``) or an
        alphanumeric sender ID (``MyBank``); the last is one-way, so it gets no keyword reply.
        ``media`` > 0 makes it an MMS (an ``MM`` SID and ``num_media``); its body may be empty.
        """
        if media < 0 or media > MAX_MEDIA:
            raise ValueError(f"media must be 0-{MAX_MEDIA} (Twilio delivers at most 10 per MMS)")
        self.tick()
        with self._lock:
            message = self._add(
                prefix="MM" if media else "SM",
                direction="inbound",
                to=to,
                sender=from_,
                body=body,
                num_media=media,
                status="received",
            )
            # Received is final, and date_sent is the moment Twilio received it.
            message.sent = message.created
            message.bill()
            kind = keyword_kind(body)
            if kind == "opt-out":
                self._opted_out.add((from_, to))
            elif kind == "opt-in":
                self._opted_out.discard((from_, to))
            reply = None
            if kind is not None and not ONE_WAY_SENDER.search(from_):
                reply = self._add(
                    prefix="SM",
                    direction="outbound-reply",
                    to=from_,
                    sender=to,
                    body=AUTO_REPLIES[kind],
                    num_media=0,
                    status="queued",
                )
                reply.steps = plan(outcome_for(from_), self.timings, 36000, False)[1]
            return message, reply

    def is_opted_out(self, recipient: str, sender: str) -> bool:
        """True when ``recipient`` texted an opt-out keyword to ``sender`` (and not START since)."""
        with self._lock:
            return (recipient, sender) in self._opted_out

    def _add(
        self,
        *,
        prefix: str,
        direction: str,
        to: str,
        sender: str,
        body: str,
        num_media: int,
        status: str,
    ) -> Message:
        self._seq += 1
        message = Message(
            sid=new_sid(prefix),
            seq=self._seq,
            direction=direction,
            to=to,
            sender=sender,
            body=body,
            num_media=num_media,
            created=self.now(),
            status=status,
            num_segments=count_segments(body),
        )
        self._messages[message.sid] = message
        return message
