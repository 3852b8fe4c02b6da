"""The Twilio adapter: the twilio SDK with a timeout, one base-URL setting, and our exceptions.

The SDK sets no timeout and raises raw ``requests`` exceptions on network trouble
(TWILIO_API.md §4.3-4.4). We never retry a create: when its outcome is unknown the sender
reconciles by listing messages instead (§2.2 "Retry guidance").
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from urllib3.exceptions import MaxRetryError, NewConnectionError

from common.errors import (
    ConfigError,
    TwilioOutcomeUnknown,
    TwilioRejected,
    TwilioUnavailable,
)
from common.http_bounds import AnswerBounds, mount_bounded
from common.settings import Settings

DEFAULT_BASE_URL = "https://api.twilio.com"
LINE_TYPE_PACKAGE = "line_type_intelligence"  # Lookup v2's Fields value
SERVICE_PAGE_SIZE = 1000  # the most Messaging v1 gives in a page: one request for any service
MAX_TIMEOUT = 15.0  # seconds: Twilio answers in well under a second; a longer wait is an outage
INBOUND_PAGE_SIZE = 50
# A message's SID as Twilio makes them (SM for SMS, MM for MMS; 32 hex digits).
_MESSAGE_SID = re.compile(r"(SM|MM)[0-9a-f]{32}")
# 20 pages of 50: the 1,000 newest messages of the lookback window's GMT days. Past that the
# oldest are not read (a warning says so); a study with more replies than that needs a shorter
# lookback or a larger bound.
INBOUND_MAX_PAGES = 20
log = logging.getLogger(__name__)
# Twilio's error codes as a coordinator reads them (twilio.com/docs/api/errors; TWILIO_API.md §2.2).
ERROR_TEXT = {
    21211: "invalid 'To' phone number",
    21408: "texting this region is not enabled on the Twilio account (Geo Permissions)",
    21610: "the participant has unsubscribed (replied STOP); they must text START to opt back in",
    21612: "this number cannot be reached from our Twilio sender",
    21614: "not a mobile number (cannot receive SMS)",
    21617: "message body too long",
    30001: "Twilio's queue overflowed",
    30003: "handset unreachable (off or no signal)",
    30004: "message blocked by the recipient or carrier",
    30005: "unknown destination handset (the number does not exist)",
    30006: "landline or unreachable carrier",
    30007: "filtered by the carrier (spam/content rules)",
    30008: "unknown delivery error",
    30032: "toll-free sender number not verified for US/Canada texts",
    30034: "sender number not registered for US A2P 10DLC",
}


def describe_error(code: int | str | None) -> str:
    """A one-line reason for a Twilio error code; never the number or the body."""
    if code in (None, ""):
        return ""
    try:
        number = int(str(code))
    except ValueError:
        return f"error {code}"
    return ERROR_TEXT.get(number, f"Twilio error {number}")


FINAL_STATUSES = frozenset({"delivered", "undelivered", "failed", "canceled", "read"})


@dataclass(frozen=True)
class MessageInfo:
    """What we keep of a Twilio message. ``body`` (and ``from_``) are PHI: compare them, never
    log them. ``body`` is empty for an MMS that carries only media (``num_media`` > 0)."""

    sid: str
    status: str
    to: str
    body: str
    direction: str
    date_created: datetime | None
    error_code: int | None
    error_message: str
    from_: str = ""
    num_media: int = 0
    date_sent: datetime | None = None

    @classmethod
    def from_instance(cls, message: Any) -> MessageInfo:
        return cls(
            sid=str(message.sid),
            status=str(message.status or ""),
            to=str(message.to or ""),
            body=str(message.body or ""),
            direction=str(message.direction or ""),
            date_created=message.date_created,
            error_code=int(message.error_code) if message.error_code else None,
            error_message=str(message.error_message or ""),
            from_=str(message.from_ or ""),
            num_media=_count(message.num_media),
            date_sent=message.date_sent,
        )


class _HttpClient(TwilioHttpClient):  # type: ignore[misc]
    """The SDK's HTTP client with a timeout, that notes the ``Date`` of Twilio's last answer
    (Twilio's clock) and, with TWILIO_API_BASE_URL set, sends every ``*.twilio.com`` request
    there instead (the sandbox)."""

    def __init__(self, base_url: str, timeout: float) -> None:
        super().__init__(timeout=timeout)
        # The SDK's own session, keep-alive and all, with every answer bounded in time and size.
        mount_bounded(self.session, AnswerBounds.for_timeout(timeout))
        self._base = urlsplit(base_url) if base_url.rstrip("/") != DEFAULT_BASE_URL else None
        self.last_date: datetime | None = None
        self.last_retry_after: float | None = None

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        parts = urlsplit(url)
        if self._base is not None and parts.hostname and parts.hostname.endswith("twilio.com"):
            url = urlunsplit(
                (self._base.scheme, self._base.netloc, parts.path, parts.query, parts.fragment)
            )
        response = super().request(method, url, *args, **kwargs)
        headers = response.headers or {}
        self.last_date = _http_date(headers.get("Date"))
        self.last_retry_after = _seconds(headers.get("Retry-After"))
        # Twilio answers every .json request with JSON (errors too) or, for a delete, nothing.
        # A 429 or 5xx says "not now" whatever its body; any other answer that is not JSON (a
        # 200 or a 403 page) came from something in front of Twilio, not from Twilio.
        status = int(response.status_code)
        text = (response.text or "").lstrip()
        if text and not text.startswith(("{", "[")) and status != 429 and status < 500:
            raise NotTwilio(f"HTTP {status}")
        return response


class NotTwilio(requests.RequestException):
    """Something in front of Twilio answered (a proxy's or firewall's page, whatever its status):
    to a create, the message may or may not exist."""


class SmsGateway:
    """Create, fetch and find messages; every failure becomes one of our errors."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        from_number: str = "",
        messaging_service_sid: str = "",
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 15.0,
    ) -> None:
        self._http = _HttpClient(base_url, timeout)
        # Credentials are passed explicitly; with a base URL the client above also catches the
        # regional hosts (api.<region>.twilio.com) that TWILIO_REGION/TWILIO_EDGE would produce.
        self._client = Client(account_sid, auth_token, http_client=self._http)
        self._from = from_number
        self._service = messaging_service_sid

    @classmethod
    def from_settings(cls, settings: Settings) -> SmsGateway:
        """The adapter for ``settings``; ConfigError first if Twilio is not fully configured."""
        settings.require_twilio()
        return cls(
            settings.twilio_account_sid,
            settings.twilio_auth_token,
            from_number=settings.twilio_from_number,
            messaging_service_sid=settings.twilio_messaging_service_sid,
            base_url=settings.twilio_api_base_url,
            timeout=min(settings.http_timeout_seconds, MAX_TIMEOUT),
        )

    def _rest_error(self, exc: TwilioRestException, creating: bool) -> Exception:
        return _translate_rest(exc, creating, self._http.last_retry_after)

    def send(self, to: str, body: str) -> MessageInfo:
        """Create one message. Raises TwilioRejected, TwilioUnavailable or TwilioOutcomeUnknown."""
        kwargs: dict[str, Any] = {"to": to, "body": body}
        if self._service:
            kwargs["messaging_service_sid"] = self._service
        else:
            kwargs["from_"] = self._from
        try:
            created = MessageInfo.from_instance(self._client.messages.create(**kwargs))
        except TwilioRestException as exc:
            raise self._rest_error(exc, creating=True) from None
        except NotTwilio as exc:
            raise TwilioOutcomeUnknown(
                f"a send was answered {exc} by something that is not Twilio (a proxy's page)"
            ) from None
        except requests.RequestException as exc:
            if _never_connected(exc):
                raise TwilioUnavailable("Twilio could not be reached; nothing was sent") from None
            raise TwilioOutcomeUnknown(
                "no answer from Twilio to a send (timeout, dropped connection, or too slow)"
            ) from None
        except (ValueError, AttributeError):  # a 201 whose body is not a message's JSON
            raise TwilioOutcomeUnknown("Twilio's answer to a send could not be read") from None
        if not _MESSAGE_SID.fullmatch(created.sid):
            # Accepted, but which message? Only reconciliation can tell; never post it again.
            raise TwilioOutcomeUnknown("Twilio's answer to a send carried no message SID")
        return created

    def fetch(self, sid: str) -> MessageInfo:
        try:
            return MessageInfo.from_instance(self._client.messages(sid).fetch())
        except TwilioRestException as exc:
            raise self._rest_error(exc, creating=False) from None
        except (ValueError, AttributeError, requests.RequestException):
            raise TwilioUnavailable("Twilio could not be reached or answered unreadably") from None

    def messages_to(self, to: str, since: datetime) -> list[MessageInfo]:
        """Outbound messages to ``to`` created at or after ``since`` (newest first)."""
        try:
            # No DateSent filter: a message still queued has no date_sent yet and would be
            # missed. Newest come first; a participant's number has few messages.
            found = self._client.messages.list(to=to, page_size=50, limit=200)
        except TwilioRestException as exc:
            raise self._rest_error(exc, creating=False) from None
        except (TwilioException, ValueError, AttributeError, requests.RequestException):
            raise TwilioUnavailable("Twilio could not be asked which messages exist") from None
        messages = [MessageInfo.from_instance(m) for m in found]
        return [
            m
            for m in messages
            if m.direction.startswith("outbound")
            and (m.date_created is None or m.date_created >= since)
        ]

    def inbound_since(
        self, since: datetime, *, max_pages: int = INBOUND_MAX_PAGES
    ) -> list[MessageInfo]:
        """Inbound messages to our number (any number of the account with a Messaging Service)
        whose ``date_sent`` is at or after ``since`` (aware), oldest first.

        Twilio filters ``DateSent>`` by GMT day only (TWILIO_API.md §1.5), so the request asks
        for ``since``'s whole day and the exact time is checked here. Pages of
        INBOUND_PAGE_SIZE, at most ``max_pages`` requests (one when the result fits a page).
        Raises ConfigError (credentials) or TwilioUnavailable.
        """
        if since.tzinfo is None:
            raise ValueError("since must be timezone-aware")
        day = since.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        filters: dict[str, Any] = {"date_sent_after": day, "page_size": INBOUND_PAGE_SIZE}
        if not self._service:
            filters["to"] = self._from
        newest_first: list[MessageInfo] = []
        try:
            page = self._client.messages.page(**filters)
            pages = 1
            while True:
                newest_first.extend(MessageInfo.from_instance(m) for m in page)
                if not page.next_page_url:
                    break
                if pages >= max_pages:
                    log.warning(
                        "inbound list stopped after %d pages (%d messages): older replies of "
                        "the lookback window were not read",
                        pages,
                        len(newest_first),
                    )
                    break
                page = page.next_page()
                pages += 1
        except TwilioRestException as exc:
            raise self._rest_error(exc, creating=False) from None
        except TwilioException as exc:
            raise _translate_page(exc) from None
        except NotTwilio as exc:  # a proxy's page
            raise TwilioUnavailable(f"Twilio's answer to a list was not JSON ({exc})") from None
        except (ValueError, AttributeError):
            raise TwilioUnavailable("Twilio's answer to a list was not JSON") from None
        except requests.RequestException:
            raise TwilioUnavailable("Twilio could not be asked for inbound messages") from None
        found = [
            m
            for m in reversed(newest_first)
            if m.direction == "inbound" and (m.date_sent or m.date_created or day) >= since
        ]
        # Stable: messages of the same second keep Twilio's order (reversed newest-first).
        return sorted(found, key=lambda m: m.date_sent or m.date_created or day)

    def check_credentials(self) -> datetime | None:
        """One cheap authenticated call; Twilio's clock at its answer (its ``Date`` header), if
        it said. Raises ConfigError (credentials refused: 401/20003 names TWILIO_ACCOUNT_SID and
        TWILIO_AUTH_TOKEN) or TwilioUnavailable."""
        try:
            self._client.messages.list(limit=1, page_size=1)
        except TwilioRestException as exc:
            raise self._rest_error(exc, creating=False) from None
        except TwilioException as exc:  # a list page answered non-200 (a 401 among them)
            raise _translate_page(exc) from None
        except (ValueError, AttributeError, requests.RequestException):
            raise TwilioUnavailable("Twilio could not be reached or answered unreadably") from None
        return self._http.last_date

    def line_type(self, e164: str) -> str:
        """The line type Twilio Lookup v2 gives ``e164`` (Line Type Intelligence, charged per
        request): ``mobile``, ``landline``, ``fixedVoip``, ``nonFixedVoip``, ``tollFree``...;
        ``invalid`` when Lookup finds the number not valid, ``unknown`` when it cannot tell (an
        ``error_code`` such as 60601, Canada without approval). Raises ConfigError (credentials),
        TwilioRejected (any other refusal) or TwilioUnavailable."""
        try:
            found = self._client.lookups.v2.phone_numbers(e164).fetch(fields=LINE_TYPE_PACKAGE)
        except TwilioRestException as exc:
            raise self._rest_error(exc, creating=False) from None
        except (ValueError, AttributeError, requests.RequestException):
            raise TwilioUnavailable(
                "Twilio Lookup could not be reached or answered unreadably"
            ) from None
        if found.valid is False:
            return "invalid"
        package = found.line_type_intelligence
        kind = package.get("type") if isinstance(package, dict) else None
        return str(kind) if kind else "unknown"

    def sender_numbers(self) -> frozenset[str]:
        """The numbers we send from, so the only ones our participants' replies can go to:
        TWILIO_FROM_NUMBER, or every phone number of the Messaging Service (Messaging API v1
        ``/Services/{sid}/PhoneNumbers``, up to 1,000 a page). Raises ConfigError (credentials,
        or no such service) or TwilioUnavailable."""
        if not self._service:
            return frozenset({self._from})
        try:
            service = self._client.messaging.v1.services(self._service)
            found = service.phone_numbers.list(page_size=SERVICE_PAGE_SIZE)
        except TwilioRestException as exc:
            if int(exc.status or 0) == 404:
                raise _no_service() from None
            raise self._rest_error(exc, creating=False) from None
        except TwilioException as exc:  # a list page answered non-200
            response = exc.args[1] if len(exc.args) > 1 else None
            if int(getattr(response, "status_code", 0) or 0) == 404:
                raise _no_service() from None
            raise _translate_page(exc) from None
        except (ValueError, AttributeError, requests.RequestException):
            raise TwilioUnavailable("Twilio could not be asked for the service's numbers") from None
        return frozenset(str(n.phone_number) for n in found if n.phone_number)


def _translate_rest(
    exc: TwilioRestException, creating: bool, retry_after: float | None = None
) -> Exception:
    status = int(exc.status or 0)
    code = int(exc.code) if exc.code else status
    if status in (401, 403) or code in (20003, 20008):
        return ConfigError(
            f"Twilio refused the credentials (error {code}); check TWILIO_ACCOUNT_SID and "
            "TWILIO_AUTH_TOKEN"
        )
    if status == 429 or code == 20429:
        # "never processed and always safe to retry" (Twilio's error 20429)
        return TwilioUnavailable(
            "Twilio is rate limiting (429); the message was not created", retry_after
        )
    if status >= 500:
        if creating:
            return TwilioOutcomeUnknown(f"Twilio answered HTTP {status} to a send")
        return TwilioUnavailable(f"Twilio answered HTTP {status}")
    # 4xx: Twilio's own message may quote the number: keep only the code and a generic text.
    return TwilioRejected(str(code), f"Twilio refused the message: {describe_error(code)}")


def _translate_page(exc: TwilioException) -> Exception:
    """A list page answered non-200: the SDK raises a bare TwilioException with the response."""
    response = exc.args[1] if len(exc.args) > 1 else None
    status = int(getattr(response, "status_code", 0) or 0)
    if status in (401, 403):
        code = _error_code(getattr(response, "text", ""))
        return ConfigError(
            f"Twilio refused the credentials (HTTP {status}{f', error {code}' if code else ''}); "
            "check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN"
        )
    if status == 429:
        headers = getattr(response, "headers", None) or {}
        asked = _seconds(headers.get("Retry-After"))
        return TwilioUnavailable("Twilio is rate limiting (429)", asked)
    if status:
        return TwilioUnavailable(f"Twilio answered HTTP {status} to a list")
    return TwilioUnavailable("Twilio's answer to a list could not be read")


def _error_code(body: object) -> int | None:
    """Twilio's error code from an error body (``{"code": 20003, ...}``), if it has one."""
    try:
        code = json.loads(str(body or "")).get("code")
    except (ValueError, AttributeError):
        return None
    return code if isinstance(code, int) else None


def _no_service() -> ConfigError:
    return ConfigError(
        "TWILIO_MESSAGING_SERVICE_SID names no Messaging Service of this account; copy its SID "
        "(MG...) from the Twilio console"
    )


def _http_date(value: object) -> datetime | None:
    """An HTTP ``Date`` header as an aware time; None when absent or unreadable."""
    if not isinstance(value, str):
        return None
    try:
        return parsedate_to_datetime(value).astimezone(UTC)
    except (TypeError, ValueError):
        return None


def _seconds(value: object) -> float | None:
    """A ``Retry-After`` in seconds; None when absent or not a number of seconds."""
    try:
        return max(0.0, float(str(value))) if value not in (None, "") else None
    except ValueError:
        return None


def _count(value: object) -> int:
    """Twilio sends counts such as ``num_media`` as strings; anything odd counts as 0."""
    try:
        return max(int(str(value)), 0)
    except ValueError:
        return 0


def _never_connected(exc: requests.RequestException) -> bool:
    """True when the request cannot have reached Twilio (refused / connect timeout)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = exc.args[0] if exc.args else None
    return isinstance(reason, MaxRetryError) and isinstance(reason.reason, NewConnectionError)
