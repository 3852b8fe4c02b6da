"""HTTP face of the Twilio simulator: routes, Basic auth, JSON and error bodies.

Serves the Messages resource of API 2010-04-01 as the twilio SDK calls it (TWILIO_API.md §1.1, §8):
create (201), fetch, list, update (redact/cancel) and delete (204), the Messaging Service's
sender numbers of Messaging API v1 (:mod:`sandbox.twilio.services`), and Lookup v2's line types
(:mod:`sandbox.twilio.lookups`). Anything else is a 404 with
code 20404; a wrong method is a 405 with code 20004. Wrong or missing credentials get 401 with code
20003 before anything else is looked at. ``/sandbox/inbound.json`` is the simulator's own control
endpoint (:mod:`sandbox.twilio.control`), behind the same credentials.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets

from sandbox.httpserver import Request, Response
from sandbox.twilio.arrivals import ArrivalLog
from sandbox.twilio.control import CONTROL_PATH, Inject, receive_inbound
from sandbox.twilio.errors import TwilioApiError
from sandbox.twilio.listing import envelope, parse_query, select_page
from sandbox.twilio.lookups import ROUTE as LOOKUP_ROUTE
from sandbox.twilio.lookups import LineTypes
from sandbox.twilio.message import to_json
from sandbox.twilio.messages import MessageStore
from sandbox.twilio.services import ROUTE as SERVICE_ROUTE
from sandbox.twilio.services import ServiceNumber
from sandbox.twilio.services import answer as service_answer

ROUTE = re.compile(r"^/2010-04-01/Accounts/(?P<account>[^/]+)/Messages(?:/(?P<sid>[^/]+?))?\.json$")
OPS = {
    ("POST", False): "create",
    ("GET", False): "list",
    ("GET", True): "fetch",
    ("POST", True): "update",
    ("DELETE", True): "delete",
}
JSON = "application/json"


class TwilioApp:
    """The :class:`sandbox.httpserver.App` serving one account's Messages."""

    def __init__(
        self,
        store: MessageStore,
        account_sid: str,
        auth_token: str,
        inject: Inject | None = None,
        service_numbers: tuple[ServiceNumber, ...] = (),
        line_types: LineTypes | None = None,
    ) -> None:
        self.store = store
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.service_numbers = service_numbers  # the Messaging Service's sender pool
        self.line_types = line_types or LineTypes()  # what Lookup v2 answers
        self.arrivals = ArrivalLog()
        self.inject = inject  # what the control endpoint calls; None: no control endpoint

    def describe(self, request: Request) -> dict[str, str]:
        """``{"resource": "messages", "method": ..., "op": create|fetch|list|update|delete}``.

        Also notes each create's arrival: the server asks this once per request, as soon as the
        request is read and before any injected fault, so a create answered 429 still counts.
        """
        if request.path == CONTROL_PATH:
            return {"resource": "control", "method": request.method, "op": "inbound"}
        if SERVICE_ROUTE.match(request.path):
            return {"resource": "service_numbers", "method": request.method, "op": "list"}
        if LOOKUP_ROUTE.match(request.path):
            return {"resource": "lookups", "method": request.method, "op": "fetch"}
        route = ROUTE.match(request.path)
        if route is None:
            return {"resource": "other", "method": request.method, "op": ""}
        op = OPS.get((request.method, route.group("sid") is not None), "")
        if op == "create":
            self.arrivals.note()
        return {"resource": "messages", "method": request.method, "op": op}

    def handle(self, request: Request) -> Response:
        try:
            return self._handle(request)
        except TwilioApiError as error:
            return _json(error.status, error.body())

    def _handle(self, request: Request) -> Response:
        self._authenticate(request)
        if request.path == CONTROL_PATH and self.inject is not None:
            sid = receive_inbound(request, self.inject, self.store.from_number)
            return _json(201, to_json(self.store.get(sid), self.account_sid))
        if SERVICE_ROUTE.match(request.path):
            if request.method != "GET":
                raise TwilioApiError(405, 20004, "Method not allowed")
            return _json(
                200,
                service_answer(
                    request.path,
                    request.query,
                    self.service_numbers,
                    self.account_sid,
                    self.store.messaging_service_sid,
                ),
            )
        if LOOKUP_ROUTE.match(request.path):
            if request.method != "GET":
                raise TwilioApiError(405, 20004, "Method not allowed")
            return _json(200, self.line_types.answer(request.path, request.query))
        route = ROUTE.match(request.path)
        if route is None:
            raise _not_found(request.path)
        if route.group("account") != self.account_sid:
            raise _unauthenticated()
        sid = route.group("sid")
        op = OPS.get((request.method, sid is not None))
        if op is None:
            raise TwilioApiError(405, 20004, "Method not allowed")
        if op == "create":
            return _json(201, to_json(self.store.create(request.form()), self.account_sid))
        if op == "list":
            return _json(200, self._list(request))
        assert sid is not None  # every other op has a SID in its route
        if op == "fetch":
            return _json(200, to_json(self.store.get(sid), self.account_sid))
        if op == "update":
            return _json(200, to_json(self.store.update(sid, request.form()), self.account_sid))
        self.store.delete(sid)
        return Response(204, b"", content_type=JSON, headers=_request_id())

    def _list(self, request: Request) -> dict[str, object]:
        query = parse_query(request.query)
        rows, has_next = select_page(query, self.store.visible(), self.store.order_key)
        records = [to_json(message, self.account_sid) for message in rows]
        return envelope(query, request.path, rows, records, has_next)

    def _authenticate(self, request: Request) -> None:
        header = request.headers.get("Authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            raise _unauthenticated()
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise _unauthenticated() from None
        user_ok = secrets.compare_digest(user.encode(), self.account_sid.encode())
        password_ok = secrets.compare_digest(password.encode(), self.auth_token.encode())
        if not (user_ok and password_ok):
            raise _unauthenticated()


def _json(status: int, payload: dict[str, object]) -> Response:
    headers = _request_id()
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
    return Response(status, json.dumps(payload), content_type=JSON, headers=headers)


def _request_id() -> dict[str, str]:
    return {"Twilio-Request-Id": "RQ" + secrets.token_hex(16)}


def _unauthenticated() -> TwilioApiError:
    return TwilioApiError(
        401, 20003, "Authenticate", detail="Your AccountSid or AuthToken was incorrect."
    )


def _not_found(path: str) -> TwilioApiError:
    return TwilioApiError(404, 20404, f"The requested resource {path} was not found")
