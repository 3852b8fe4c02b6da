"""How the Graph adapter reaches Microsoft and reads its answers: the session (a timeout on
every request; for the sandbox, Microsoft's hosts rewritten to the simulator's URLs, since msal
refuses http authorities) and the translation of identity-platform and Graph errors into ours,
once (common/errors.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from urllib3.exceptions import MaxRetryError, NewConnectionError

from common.errors import ConfigError, GraphOutcomeUnknown, GraphRejected, GraphUnavailable
from common.http_bounds import AnswerBounds, mount_bounded

_MAILBOX_MISSING = {
    "ErrorInvalidUser",
    "ResourceNotFound",
    "Request_ResourceNotFound",
    "MailboxNotEnabledForRESTAPI",
}


class NotMicrosoft(requests.RequestException):
    """Something in front of Microsoft answered (a proxy's or firewall's page, whatever its
    status): for a sendMail, the mail may or may not have gone."""


class GraphSession(requests.Session):
    """A session with a timeout on every request and every answer bounded in time and size
    (:mod:`common.http_bounds`) that, for the sandbox, sends requests for Microsoft's hosts to
    other base URLs (``{"graph.microsoft.com": "http://127.0.0.1:PORT"}``). An answer that is not
    JSON raises :class:`NotMicrosoft`: Graph and the identity platform answer JSON (errors
    too), or nothing (sendMail's 202), so msal and the Graph calls never parse a proxy's page."""

    def __init__(self, timeout: float, rewrites: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self._timeout = timeout
        self._rewrites = {host: urlsplit(base) for host, base in (rewrites or {}).items()}
        mount_bounded(self, AnswerBounds.for_timeout(timeout))

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        text = url.decode() if isinstance(url, bytes) else url
        parts = urlsplit(text)
        target = self._rewrites.get(parts.hostname or "")
        if target is not None:
            path = target.path.rstrip("/") + parts.path
            text = urlunsplit((target.scheme, target.netloc, path, parts.query, parts.fragment))
        if kwargs.get("timeout") is None:  # msal passes none
            kwargs["timeout"] = self._timeout
        response = super().request(method, text, *args, **kwargs)
        # A 429 or 5xx says "not now" whatever its body (graph_error reads its status); any
        # other answer that is not JSON (a 200 or a 403 page) is not Microsoft's.
        status = response.status_code
        body = response.content.lstrip()
        if body and not body.startswith((b"{", b"[")) and status != 429 and status < 500:
            raise NotMicrosoft(f"HTTP {status}", response=response)
        return response


def public_base(configured: str, default: str) -> tuple[str, dict[str, str]]:
    """The https base requests name, and the rewrite sending it to ``configured`` if needed."""
    configured = configured.rstrip("/")
    if configured.startswith("https://"):
        return configured, {}
    host = urlsplit(default).hostname or ""
    return default, {host: configured}


def token_error(result: Mapping[str, Any]) -> Exception:
    error = str(result.get("error", ""))
    codes = result.get("error_codes") or [0]
    code = f"AADSTS{codes[0]}"
    if error == "invalid_client":
        if 7000215 in codes:
            return ConfigError(
                f"Microsoft refused GRAPH_CLIENT_SECRET ({code} invalid_client); create a new "
                "client secret in the app registration and copy its Value, not its Secret ID"
            )
        return ConfigError(
            f"Microsoft refused the app's credential ({code} invalid_client); check "
            "GRAPH_CLIENT_SECRET, or that GRAPH_CERT_THUMBPRINT names the certificate uploaded to "
            "the app registration and GRAPH_CERT_PATH holds its private key"
        )
    if error in ("unauthorized_client", "invalid_tenant", "invalid_request", "invalid_scope"):
        return ConfigError(
            f"Microsoft refused the token request ({code} {error}); check GRAPH_TENANT_ID and "
            "GRAPH_CLIENT_ID (the app registration's Directory and Application IDs)"
        )
    return GraphUnavailable(f"the Microsoft identity platform gave no token ({code} {error})")


def graph_error(response: requests.Response, sending: bool, retry_after: float | None) -> Exception:
    status = response.status_code
    try:
        code = str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        code = f"HTTP {status}"
    if status == 401:
        return ConfigError(
            f"Graph refused the access token ({code}); check the app registration's "
            "application permissions and admin consent"
        )
    if status == 403:
        need = "Mail.Send" if sending else "Mail.Read (or User.Read.All for admin check)"
        return ConfigError(
            f"Graph denied access to GRAPH_SENDER's mailbox ({code}); grant the application "
            f"permission {need} with admin consent and let the access policy include the mailbox"
        )
    if status == 404 and code in _MAILBOX_MISSING:
        return ConfigError(
            f"GRAPH_SENDER is not a mailbox in tenant GRAPH_TENANT_ID ({code}); set it to the "
            "address of the mailbox the study sends from"
        )
    if status == 429:
        return GraphUnavailable(f"Graph is throttling ({code}); nothing was sent", retry_after)
    if status >= 500:
        if sending:
            return GraphOutcomeUnknown(
                f"Graph answered HTTP {status} ({code}) to a sendMail; the mail may have gone",
                retry_after,
            )
        return GraphUnavailable(f"Graph answered HTTP {status} ({code})", retry_after)
    if sending:
        if code == "ErrorInvalidRecipients":
            return GraphRejected(code, "Graph refused the mail: the recipient address is not valid")
        return GraphRejected(code, f"Graph refused the mail ({code})")
    return GraphUnavailable(f"Graph refused a read ({status} {code})")


def retry_after(response: requests.Response) -> float | None:
    raw = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(raw)) if raw else None
    except ValueError:
        return None  # an HTTP date: Graph sends seconds; fall back to our own backoff


def never_connected(exc: requests.RequestException) -> bool:
    """True when the request cannot have reached Graph (refused / connect timeout)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = exc.args[0] if exc.args else None
    return isinstance(reason, MaxRetryError) and isinstance(reason.reason, NewConnectionError)
