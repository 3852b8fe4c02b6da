"""HTTP face of the Microsoft simulator: routes, bearer tokens, permissions, injected answers.

``describe()`` gives ``{"service": "identity"|"graph"|"other", "op": ...}`` with ``op`` one of
``openid``, ``discovery``, ``token``, ``sendMail``, ``listSent``, ``getUser``; the server's request
counts are keyed ``"identity/token"``, ``"graph/sendMail"`` and so on. Answers Microsoft shapes
with headers (429 / 503 + ``Retry-After``) are injected through :attr:`MicrosoftApp.injected`, a
:class:`sandbox.faults.FaultPlan` of ``status`` faults whose ``seconds`` is the ``Retry-After``
(0: none); hangs and resets go through the server's own plan.
"""

from __future__ import annotations

import json
import re
from urllib.parse import unquote

from sandbox.faults import Fault, FaultPlan
from sandbox.httpserver import Request, Response
from sandbox.microsoft.errors import GraphApiError, IdentityError, access_denied, invalid_token
from sandbox.microsoft.identity import Directory, instance_discovery, openid_configuration
from sandbox.microsoft.mailbox import Mailboxes

JSON = "application/json; charset=utf-8"
GRAPH_HOST = "https://graph.microsoft.com"
ROUTES: tuple[tuple[str, str, re.Pattern[str], str], ...] = (
    (
        "GET",
        "identity",
        re.compile(r"^/(?P<t>[^/]+)/v2\.0/\.well-known/openid-configuration$"),
        "openid",
    ),
    ("GET", "identity", re.compile(r"^/common/discovery/instance$"), "discovery"),
    ("POST", "identity", re.compile(r"^/(?P<t>[^/]+)/oauth2/v2\.0/token$"), "token"),
    ("POST", "graph", re.compile(r"^/v1\.0/users/(?P<u>[^/]+)/sendMail$", re.I), "sendMail"),
    (
        "GET",
        "graph",
        re.compile(r"^/v1\.0/users/(?P<u>[^/]+)/mailFolders/sentitems/messages$", re.I),
        "listSent",
    ),
    ("GET", "graph", re.compile(r"^/v1\.0/users/(?P<u>[^/]+)$", re.I), "getUser"),
)
READ_ROLES = frozenset({"Mail.ReadBasic", "Mail.ReadBasic.All", "Mail.Read", "Mail.ReadWrite"})
FULL_READ_ROLES = frozenset({"Mail.Read", "Mail.ReadWrite"})  # extended properties too
USER_ROLES = frozenset({"User.Read.All", "User.ReadBasic.All", "Directory.Read.All"})


def _route(request: Request) -> tuple[str, str, dict[str, str]]:
    for method, service, pattern, op in ROUTES:
        match = pattern.match(request.path)
        if match and request.method == method:
            return service, op, {k: unquote(v) for k, v in match.groupdict().items()}
    return "other", "", {}


def _json(status: int, body: object, headers: dict[str, str] | None = None) -> Response:
    return Response(status, json.dumps(body), JSON, headers or {})


class MicrosoftApp:
    """The :class:`sandbox.httpserver.App` serving one tenant's identity endpoint and mail."""

    def __init__(self, directory: Directory, mailboxes: Mailboxes) -> None:
        self.directory = directory
        self.mailboxes = mailboxes
        self.injected = FaultPlan()

    def describe(self, request: Request) -> dict[str, str]:
        service, op, _ = _route(request)
        return {"service": service, "op": op}

    def handle(self, request: Request) -> Response:
        service, op, args = _route(request)
        fault = self.injected.take({"service": service, "op": op})
        if fault is not None:
            return _injected(service, fault)
        try:
            if service == "identity":
                return self._identity(request, op, args)
            if service == "graph":
                return self._graph(request, op, args)
            raise GraphApiError(
                400, "BadRequest", f"Resource not found for the segment '{request.path}'."
            )
        except IdentityError as error:
            return _json(error.status, error.body())
        except GraphApiError as error:
            client_id = request.headers.get("client-request-id", "")
            return _json(error.status, error.body(client_id), error.headers)

    def _identity(self, request: Request, op: str, args: dict[str, str]) -> Response:
        if op == "discovery":
            endpoint = (request.query.get("authorization_endpoint") or [""])[0]
            return _json(200, instance_discovery(endpoint))
        tenant = args["t"]
        if not self.directory.knows_tenant(tenant):
            raise IdentityError(
                400,
                "invalid_tenant",
                90002,
                f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID "
                "and are signing into the correct cloud.",
            )
        if op == "openid":
            return _json(200, openid_configuration(tenant))
        return _json(200, self.directory.issue(tenant, request.form()))

    def _graph(self, request: Request, op: str, args: dict[str, str]) -> Response:
        roles = self._authenticate(request)
        user = args["u"]
        if op == "sendMail":
            if "Mail.Send" not in roles:
                raise access_denied()
            try:
                payload = json.loads(request.body.decode("utf-8") or "null")
            except (UnicodeDecodeError, json.JSONDecodeError):
                raise GraphApiError(400, "RequestBodyRead", "Invalid JSON payload.") from None
            self.mailboxes.send(user, payload)
            return Response(202, b"", "text/plain")
        if op == "listSent":
            if not roles & READ_ROLES:
                raise access_denied()
            url = f"{GRAPH_HOST}{request.path}"
            full = bool(roles & FULL_READ_ROLES)
            return _json(200, self.mailboxes.list_sent(user, request.query, url, full_read=full))
        if not roles & USER_ROLES:
            raise GraphApiError(
                403,
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.",
            )
        return _json(200, self.mailboxes.user(user))

    def _authenticate(self, request: Request) -> frozenset[str]:
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise invalid_token("Access token is empty.")
        token = self.directory.token(value.strip())
        if token is None:
            raise invalid_token("IDX14100: JWT is not well formed, there are no dots (.).")
        if token.expires <= self.directory.clock.now():
            raise invalid_token("Lifetime validation failed, the token is expired.")
        return token.roles


def _injected(service: str, fault: Fault) -> Response:
    headers = {"Retry-After": f"{fault.seconds:g}"} if fault.seconds > 0 else {}
    if fault.body:
        return Response(fault.status, fault.body, JSON, headers)
    if service == "identity":
        error = IdentityError(
            fault.status,
            "temporarily_unavailable",
            50196 if fault.status == 429 else 90033,
            "The server is temporarily unable to handle the request.",
        )
        return _json(fault.status, error.body(), headers)
    code = "ApplicationThrottled" if fault.status == 429 else "ServiceUnavailable"
    text = (
        "Application is over its MailboxConcurrency limit."
        if fault.status == 429
        else "The service is temporarily unavailable."
    )
    return _json(fault.status, GraphApiError(fault.status, code, text).body(), headers)
