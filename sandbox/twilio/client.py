"""The twilio SDK client pointed at a simulator, built the way production builds it.

``Client(sid, token, http_client=TwilioHttpClient(timeout=...))`` with ``client.api.base_url``
replaced (TWILIO_API.md §4.5 method A): list paging follows the same base URL. Region and edge must
be unset (arguments and ``TWILIO_REGION``/``TWILIO_EDGE``), or the SDK rewrites the host.
"""

from __future__ import annotations

from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client


def make_client(base_url: str, sid: str, token: str, timeout: float = 5.0) -> Client:
    """A twilio ``Client`` whose ``api`` domain is ``base_url``, with a request timeout."""
    client = Client(sid, token, http_client=TwilioHttpClient(timeout=timeout))
    client.api.base_url = base_url.rstrip("/")
    return client
