"""The Microsoft Graph mail adapter: msal's client-credentials flow, sendMail, Sent Items, and
our exceptions.

msal's ``ConfidentialClientApplication`` gets the token (a client secret or a certificate; never
an interactive login) and keeps it in its in-memory cache until it expires, so one adapter per
process asks the identity platform about once an hour. msal refuses http authorities
(msal requires https): when ``GRAPH_AUTHORITY_URL`` / ``GRAPH_API_BASE_URL`` are not https (the
sandbox), requests keep Microsoft's URLs and :class:`GraphSession` rewrites their hosts, so msal's
real code path runs. The same session, with a timeout on every request, carries the Graph calls.

sendMail answers 202 with no id: our id travels in an ``x-`` internet message header. A 429 was
not applied and is retried after ``Retry-After`` (bounded in attempts and in time); a timeout,
reset or 5xx after the request left is :class:`GraphOutcomeUnknown` and is never resent here.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import msal
import requests
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from common.errors import (
    ConfigError,
    GraphOutcomeUnknown,
    GraphUnavailable,
)
from common.graph_transport import (
    GraphSession,
    NotMicrosoft,
    graph_error,
    never_connected,
    public_base,
    retry_after,
    token_error,
)

if TYPE_CHECKING:
    from common.settings import Settings

DEFAULT_AUTHORITY_URL = "https://login.microsoftonline.com"
DEFAULT_API_BASE_URL = "https://graph.microsoft.com"
SCOPES = ["https://graph.microsoft.com/.default"]
MESSAGE_ID_HEADER = "x-redcap-relay-id"
# A named MAPI property in our own namespace (a GUID made for redcap-relay): unlike internet
# headers it is kept on the copy in Sent Items, where Graph can filter on it.
MESSAGE_ID_PROPERTY = "String {6b0c2f5e-9d7a-4c1e-8f3b-2a4d5e6f7a81} Name RedcapRelayId"


@dataclass(frozen=True)
class CertificateCredential:
    """A certificate registered on the app: its private key (PEM text) and SHA-1 thumbprint."""

    private_key_pem: str
    thumbprint: str


@dataclass(frozen=True)
class SentMailInfo:
    """A mail found in Sent Items. ``subject`` and ``to`` are PHI: compare, never log."""

    id: str
    subject: str
    sent_at: datetime | None
    to: tuple[str, ...]


@dataclass(frozen=True)
class GraphCheck:
    """What ``check()`` could establish: the token always; the mailbox when permitted."""

    mailbox_verified: bool
    detail: str


class GraphMailer:
    """Send mail as one mailbox, find it again in Sent Items, and check the setup."""

    def __init__(
        self,
        tenant_id: str,
        client_id: str,
        *,
        sender: str,
        client_secret: str = "",
        certificate: CertificateCredential | None = None,
        authority_url: str = DEFAULT_AUTHORITY_URL,
        api_base_url: str = DEFAULT_API_BASE_URL,
        save_to_sent_items: bool = True,
        can_read_sent: bool = False,
        timeout: float = 30.0,
        max_attempts: int = 3,
        max_wait_seconds: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        http_cache: dict[Any, Any] | None = None,
    ) -> None:
        if bool(client_secret) == (certificate is not None):
            raise ConfigError(
                "set either GRAPH_CLIENT_SECRET or GRAPH_CERT_PATH + GRAPH_CERT_THUMBPRINT"
            )
        self._tenant = tenant_id
        self._client_id = client_id
        self._credential: str | dict[str, str] = (
            client_secret
            if certificate is None
            else {"private_key": certificate.private_key_pem, "thumbprint": certificate.thumbprint}
        )
        self._sender = sender
        authority, login_rewrite = public_base(authority_url, DEFAULT_AUTHORITY_URL)
        self._api, api_rewrite = public_base(api_base_url, DEFAULT_API_BASE_URL)
        self._authority = f"{authority}/{tenant_id}"
        self._session = GraphSession(timeout, {**login_rewrite, **api_rewrite})
        self._save = save_to_sent_items
        self._can_read_sent = can_read_sent
        self._max_attempts = max(1, max_attempts)
        self._max_wait = max_wait_seconds
        self._sleep = sleep
        self._http_cache = http_cache
        self._msal: Any = None

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> GraphMailer:
        """The adapter for ``settings``; ConfigError first if e-mail is not fully configured or
        the key file cannot be read. ``kwargs`` go to the constructor (``http_cache``, ...)."""
        settings.require_graph()
        certificate = None
        if settings.graph_cert_path:
            try:
                pem = settings.graph_cert_path.read_text()
            except (OSError, UnicodeDecodeError):
                raise ConfigError(
                    f"GRAPH_CERT_PATH={settings.graph_cert_path}: cannot read the private key "
                    "file; give the path of the PEM private key, readable by this user"
                ) from None
            check_private_key(pem)
            certificate = CertificateCredential(pem, settings.graph_cert_thumbprint)
        return cls(
            settings.graph_tenant_id,
            settings.graph_client_id,
            sender=settings.graph_sender,
            client_secret=settings.graph_client_secret,
            certificate=certificate,
            authority_url=settings.graph_authority_url,
            api_base_url=settings.graph_api_base_url,
            can_read_sent=settings.graph_can_read_sent,
            timeout=settings.http_timeout_seconds,
            **kwargs,
        )

    # -- public ----------------------------------------------------------------------------

    def send(
        self,
        to: str | Sequence[str],
        subject: str,
        text: str,
        html: str | None = None,
        *,
        message_id: str,
    ) -> None:
        """Send one mail to ``to`` (an address, or several) carrying ``message_id`` in the
        ``x-redcap-relay-id`` header and in an extended property (what ``find_sent`` finds).

        Graph's JSON message has one body: the HTML one when ``html`` is given, else ``text``.
        Raises GraphRejected, GraphUnavailable (nothing sent), GraphOutcomeUnknown (it may have
        gone: reconcile, never resend) or ConfigError.
        """
        body = (
            {"contentType": "HTML", "content": html}
            if html
            else {
                "contentType": "Text",
                "content": text,
            }
        )
        payload = {
            "message": {
                "subject": subject,
                "body": body,
                "toRecipients": [
                    {"emailAddress": {"address": address}}
                    for address in ([to] if isinstance(to, str) else to)
                ],
                "internetMessageHeaders": [{"name": MESSAGE_ID_HEADER, "value": message_id}],
                "singleValueExtendedProperties": [{"id": MESSAGE_ID_PROPERTY, "value": message_id}],
            },
            "saveToSentItems": self._save,
        }
        self._call("POST", f"{self._user_url()}/sendMail", json=payload, sending=True)

    def find_sent(self, message_id: str, since: datetime) -> SentMailInfo | None:
        """The mail ``send`` gave ``message_id``, from Sent Items, if it was sent at or after
        ``since`` (aware); ``None`` if there is none. One request, whatever the folder holds.

        Needs GRAPH_CAN_READ_SENT=1: saveToSentItems on, and the application permission Mail.Read
        on the sender's mailbox (extended properties are not in Mail.ReadBasic). The copy in Sent
        Items has no internet headers (Microsoft's Graph team), so the lookup is a filter on our
        extended property, as Microsoft recommends for finding a sent mail again.
        """
        if not self._can_read_sent:
            raise ConfigError(
                "GRAPH_CAN_READ_SENT is 0: Sent Items cannot be searched; set it to 1 once the app "
                "has Mail.Read on the sender's mailbox"
            )
        value = message_id.replace("'", "''")
        params = {
            "$filter": f"singleValueExtendedProperties/Any(ep: ep/id eq '{MESSAGE_ID_PROPERTY}' "
            f"and ep/value eq '{value}')",
            "$select": "id,subject,sentDateTime,toRecipients",
            "$top": "5",
        }
        url = f"{self._user_url()}/mailFolders/sentitems/messages"
        response = self._call("GET", url, params=params)
        try:
            found = [_sent_info(item) for item in response.json()["value"]]
        except (ValueError, KeyError, TypeError, AttributeError):
            raise GraphUnavailable(
                "Graph's answer to a Sent Items search could not be read"
            ) from None
        found = [m for m in found if m.sent_at is None or m.sent_at >= since]
        return min(found, key=lambda m: m.sent_at or since) if found else None

    def check(self) -> GraphCheck:
        """Acquire a token (ConfigError for bad credentials) and check the sender's mailbox
        exists, as far as the app's permissions allow."""
        self._token()
        user = self._call("GET", self._user_url(), params={"$select": "id,mail"}, accept=(403,))
        if user.status_code == 200:
            return GraphCheck(True, "token acquired; the sender's mailbox exists")
        if self._can_read_sent:
            self._call(
                "GET", f"{self._user_url()}/mailFolders/sentitems/messages", params={"$top": "1"}
            )
            return GraphCheck(True, "token acquired; the sender's Sent Items can be read")
        return GraphCheck(
            False,
            "token acquired; the app may not read the directory (no User.Read.All), so the "
            "mailbox is checked by the first send (ErrorInvalidUser names a wrong GRAPH_SENDER)",
        )

    def close(self) -> None:
        self._session.close()

    # -- internals -------------------------------------------------------------------------

    def _user_url(self) -> str:
        return f"{self._api}/v1.0/users/{quote(self._sender, safe='@')}"

    def _application(self) -> Any:
        if self._msal is None:
            try:
                self._msal = msal.ConfidentialClientApplication(
                    self._client_id,
                    client_credential=self._credential,
                    authority=self._authority,
                    http_client=self._session,
                    http_cache=self._http_cache,
                )
            except requests.RequestException:
                raise GraphUnavailable(
                    "the Microsoft identity platform could not be reached or answered with a web "
                    "page (GRAPH_AUTHORITY_URL)"
                ) from None
            except json.JSONDecodeError:
                raise GraphUnavailable(
                    "the Microsoft identity platform's configuration answer was not JSON"
                ) from None
            except ValueError:
                raise ConfigError(
                    "Microsoft did not accept GRAPH_TENANT_ID as a tenant (or GRAPH_AUTHORITY_URL "
                    "is wrong); use the Directory (tenant) ID from the app registration"
                ) from None
        return self._msal

    def _token(self) -> str:
        app = self._application()
        try:
            result = app.acquire_token_for_client(scopes=SCOPES)
        except NotMicrosoft as exc:
            raise GraphUnavailable(
                f"the token endpoint answered {exc} with a web page, not Microsoft's (a proxy or "
                "firewall in between)"
            ) from None
        except requests.RequestException:
            raise GraphUnavailable(
                "the Microsoft identity platform could not be reached or was too slow"
            ) from None
        except ValueError:  # the key was checked at startup: the answer could not be read
            raise GraphUnavailable(
                "the Microsoft identity platform's answer was not JSON"
            ) from None
        if "access_token" in result:
            return str(result["access_token"])
        raise token_error(result)

    def _call(
        self,
        method: str,
        url: str,
        *,
        json: object = None,
        params: Mapping[str, str] | None = None,
        sending: bool = False,
        accept: tuple[int, ...] = (),
    ) -> requests.Response:
        deadline = time.monotonic() + self._max_wait
        attempt, renewed = 0, False
        while True:
            attempt += 1
            headers = {
                "Authorization": f"Bearer {self._token()}",
                "client-request-id": str(uuid.uuid4()),
            }
            try:
                response: requests.Response = self._session.request(
                    method, url, json=json, params=params, headers=headers
                )
            except NotMicrosoft as exc:
                page = f"Graph's address answered {exc} with a web page (a proxy or firewall)"
                if sending:
                    raise GraphOutcomeUnknown(f"{page}; the mail may have gone") from None
                raise GraphUnavailable(page) from None
            except requests.RequestException as exc:
                if sending and not never_connected(exc):
                    raise GraphOutcomeUnknown(
                        "no answer from Graph to a sendMail (timeout, dropped connection, or too "
                        "slow); the mail may have gone"
                    ) from None
                raise GraphUnavailable(
                    "Microsoft Graph could not be reached or was too slow"
                ) from None
            status = response.status_code
            if status < 400 or status in accept:
                return response
            if status == 401 and not renewed:
                renewed = True  # a revoked or early-expired token: a new one, once
                self._application().remove_tokens_for_client()
                continue
            asked = retry_after(response)
            retryable = status == 429 or (not sending and status in (503, 504))
            if retryable and attempt < self._max_attempts:
                wait = asked if asked is not None else float(2 ** (attempt - 1))
                if time.monotonic() + wait <= deadline:
                    self._sleep(wait)
                    continue
            raise graph_error(response, sending, asked)


def check_private_key(pem: str) -> None:
    """ConfigError unless ``pem`` holds an unencrypted PEM private key: checked once at startup,
    so nothing the token endpoint answers later can be mistaken for a bad key."""
    try:
        load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ConfigError(
            "GRAPH_CERT_PATH does not hold a usable PEM private key (unencrypted, BEGIN PRIVATE "
            "KEY or BEGIN RSA PRIVATE KEY) for GRAPH_CERT_THUMBPRINT"
        ) from None


def _sent_info(item: Mapping[str, Any]) -> SentMailInfo:
    raw = str(item.get("sentDateTime") or "")
    try:
        sent_at = datetime.fromisoformat(raw.replace("Z", "+00:00")) if raw else None
    except ValueError:
        sent_at = None
    to = tuple(
        str(r.get("emailAddress", {}).get("address", "")) for r in item.get("toRecipients") or []
    )
    return SentMailInfo(str(item.get("id", "")), str(item.get("subject") or ""), sent_at, to)
