"""The simulator's control endpoint: make a simulated participant text the study number.

``POST /sandbox/inbound.json`` (not part of Twilio's API), form parameters ``From`` (required),
``To`` (default: the simulator's number), ``Body`` and ``NumMedia`` (default 0). Authenticated
with HTTP Basic as the Messages API is (the account SID and auth token of ``.env.sandbox``),
and only from 127.0.0.1. The message is stored exactly as :meth:`TwilioSim.inject_inbound`
stores it (keywords, automatic replies, the inbound webhook), and the answer is 201 with its
Message JSON. ``python -m sandbox reply`` is its client.
"""

from __future__ import annotations

from collections.abc import Callable

from sandbox.httpserver import Request
from sandbox.twilio.errors import TwilioApiError, bad_request
from sandbox.twilio.messages import MAX_MEDIA
from sandbox.twilio.validation import first

CONTROL_PATH = "/sandbox/inbound.json"
MAX_BODY = 1600  # what Twilio accepts in one message

Inject = Callable[[str, str, str, int], str]


def receive_inbound(request: Request, inject: Inject, our_number: str) -> str:
    """Store the inbound message that ``request`` describes; its SID, or a 4xx TwilioApiError."""
    if request.client_ip != "127.0.0.1":
        raise TwilioApiError(403, 20403, "The sandbox control endpoint answers 127.0.0.1 only")
    if request.method != "POST":
        raise TwilioApiError(405, 20004, "Method not allowed")
    form = request.form()
    sender = (first(form, "From") or "").strip()
    if not sender:
        raise bad_request(21602, "From is required: the participant's number or sender ID")
    body = first(form, "Body") or ""
    if len(body) > MAX_BODY:
        raise bad_request(21617, f"Body is longer than {MAX_BODY} characters")
    raw_media = first(form, "NumMedia") or "0"
    if not raw_media.isdigit() or int(raw_media) > MAX_MEDIA:
        raise bad_request(20001, f"NumMedia must be 0-{MAX_MEDIA}")
    to = (first(form, "To") or "").strip() or our_number
    # An empty body with no media is let through: some phones do send blank texts.
    return inject(sender, to, body, int(raw_media))
