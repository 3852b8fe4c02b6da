"""Graph mail: what ``sendMail`` accepts, the mailbox log, and Sent Items as Graph lists them.

sendMail (learn.microsoft.com/graph/api/user-sendmail) takes ``{"message": {...},
"saveToSentItems": bool}`` and answers 202 with no body and no id. ``saveToSentItems`` defaults to
true (Graph's docs; their own example sends the string ``"false"``, accepted here too). Custom
``internetMessageHeaders`` must be named ``x-...`` (message resource docs); they travel with the
mail but the copy saved in Sent Items has none (Microsoft's Graph team: "internet headers just do
not exist on the copy in Sent Items", microsoft-graph-docs#2716), so they never come back here.
What does come back is a ``singleValueExtendedProperties`` entry set on the message: the way the
Graph team gives to find a sent mail again (microsoft-graph-docs#3766), with
``$filter=singleValueExtendedProperties/Any(ep: ep/id eq '<id>' and ep/value eq '<value>')``
(singlevaluelegacyextendedproperty-get: the name in the id is case-sensitive, the value is not),
which needs ``Mail.Read``: ``Mail.ReadBasic`` excludes extended properties (permissions
reference), and this simulator answers such a filter without ``Mail.Read`` with 403. ``$filter``
also understands ``sentDateTime ge|gt <ISO 8601>``. ``$select=body`` gives the text (or HTML) as
sent, again only to ``Mail.Read``.

A fault switch: :attr:`Mailboxes.sent_items_lag` seconds pass before a sent mail's copy shows in
Sent Items, as Exchange saves it late under load (the mail itself went at once).
"""

from __future__ import annotations

import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from sandbox.clock import SimClock
from sandbox.microsoft.errors import GraphApiError

ADDRESS = re.compile(r"^[^@\s\"<>,;]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
FILTER = re.compile(r"^\s*sentDateTime\s+(ge|gt)\s+(\S+)\s*$", re.IGNORECASE)
PROPERTY_FILTER = re.compile(
    r"^\s*singleValueExtendedProperties/any\((\w+):\s*\1/id eq '((?:[^']|'')*)' and "
    r"\1/value eq '((?:[^']|'')*)'\)\s*$",
    re.IGNORECASE,
)
PROPERTY_ID = re.compile(
    r"^(String|Integer|Boolean|SystemTime|Binary|Double|Long|Short) "
    r"(\{[0-9A-Fa-f-]{36}\} (Name \S.*|Id 0x[0-9A-Fa-f]{1,4})|0x[0-9A-Fa-f]{1,4})$"
)
CONTENT_TYPES = {"text": "text", "html": "html"}
PAGE_MAX = 1000
PAGE_DEFAULT = 10
DEFAULT_FIELDS = ("id", "subject", "sentDateTime", "toRecipients", "from", "internetMessageId")


@dataclass(frozen=True)
class SentMail:
    """One mail sendMail accepted. ``to`` and ``content`` are PHI in real life: tests only."""

    id: str
    sender: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    bcc: tuple[str, ...]
    subject: str
    content_type: str
    content: str
    headers: dict[str, str]
    saved: bool
    sent_at: datetime
    internet_message_id: str
    properties: dict[str, str] = field(default_factory=dict)  # singleValueExtendedProperties


@dataclass
class Mailboxes:
    """The tenant's mailboxes (sender addresses) and every mail they accepted, oldest first."""

    clock: SimClock
    addresses: dict[str, str] = field(default_factory=dict)  # lower-case address -> user id
    sent_items_lag: float = 0.0  # seconds before a sent mail's copy shows in Sent Items
    _log: list[SentMail] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, address: str) -> str:
        user_id = str(uuid.uuid4())
        self.addresses[address.lower()] = user_id
        return user_id

    def resolve(self, user: str) -> str:
        """The mailbox address for a user id or UPN; 404 ErrorInvalidUser if none."""
        key = user.lower()
        if key in self.addresses:
            return key
        for address, user_id in self.addresses.items():
            if user_id == key:
                return address
        raise GraphApiError(404, "ErrorInvalidUser", f"The requested user '{user}' is invalid.")

    def user(self, user: str) -> dict[str, object]:
        """``GET /users/{id}``; 404 Request_ResourceNotFound as the directory answers."""
        key = user.lower()
        for address, user_id in self.addresses.items():
            if key in (address, user_id):
                return {
                    "id": user_id,
                    "displayName": address.split("@")[0],
                    "mail": address,
                    "userPrincipalName": address,
                }
        raise GraphApiError(
            404,
            "Request_ResourceNotFound",
            f"Resource '{user}' does not exist or one of its queried reference-property objects "
            "are not present.",
        )

    def send(self, user: str, payload: Any) -> SentMail:
        """Check a sendMail body and log the mail (raises GraphApiError 400/404)."""
        sender = self.resolve(user)
        mail = _parse(sender, payload, self.clock.now())
        with self._lock:
            self._log.append(mail)
        return mail

    def log(self) -> list[SentMail]:
        with self._lock:
            return list(self._log)

    def list_sent(
        self,
        user: str,
        query: dict[str, list[str]],
        self_url: str,
        *,
        full_read: bool = True,
    ) -> dict[str, object]:
        """One page of Sent Items, newest first, shaped by ``$filter``/``$select``/``$top``.
        ``full_read``: the token has Mail.Read (extended properties may be filtered on)."""
        sender = self.resolve(user)
        raw_filter = _one(query, "$filter")
        wanted = _property_filter(raw_filter)
        if wanted is not None and not full_read:
            raise GraphApiError(
                403, "ErrorAccessDenied", "Access is denied. Check credentials and try again."
            )
        since, strict = _parse_filter(raw_filter) if wanted is None else (None, False)
        fields = _parse_select(_one(query, "$select"))
        top = _int(query, "$top", PAGE_DEFAULT, 1, PAGE_MAX)
        skip = _int(query, "$skip", 0, 0, 10**9)
        saved_by = self.clock.now() - timedelta(seconds=self.sent_items_lag)
        mails = [
            m
            for m in reversed(self.log())
            if m.sender == sender
            and m.saved
            and m.sent_at <= saved_by
            and (since is None or (m.sent_at > since if strict else m.sent_at >= since))
            and (wanted is None or _has_property(m, *wanted))
        ]
        page = mails[skip : skip + top]
        body: dict[str, object] = {
            "@odata.context": f"https://graph.microsoft.com/v1.0/$metadata#users('{user}')"
            "/mailFolders('sentitems')/messages",
            "value": [_message_json(m, fields, full_read) for m in page],
        }
        if skip + top < len(mails):
            rest = {k: v[0] for k, v in query.items() if k != "$skip" and v}
            rest["$skip"] = str(skip + top)
            body["@odata.nextLink"] = f"{self_url}?{urlencode(rest)}"
        return body


def _bad(code: str, message: str) -> GraphApiError:
    return GraphApiError(400, code, message)


def _addresses(message: dict[str, Any], key: str) -> tuple[str, ...]:
    recipients = message.get(key, [])
    if not isinstance(recipients, list):
        raise _bad("RequestBodyRead", f"Cannot convert the literal to '{key}' collection.")
    found = []
    for recipient in recipients:
        address = (recipient or {}).get("emailAddress", {}).get("address", "")
        if not isinstance(address, str) or not ADDRESS.match(address):
            raise _bad(
                "ErrorInvalidRecipients",
                "At least one recipient isn't valid., A message can't be sent because it contains"
                " a recipient that isn't resolved. All recipients must be resolved before a "
                "message can be submitted.",
            )
        found.append(address)
    return tuple(found)


def _parse(sender: str, payload: Any, now: datetime) -> SentMail:
    if not isinstance(payload, dict) or not isinstance(payload.get("message"), dict):
        raise _bad("ErrorInvalidRequest", "The 'message' parameter is required.")
    message = payload["message"]
    save = payload.get("saveToSentItems", True)
    if isinstance(save, str) and save.lower() in ("true", "false"):
        save = save.lower() == "true"
    if not isinstance(save, bool):
        raise _bad(
            "RequestBodyRead", "Cannot convert the literal to the expected type 'Edm.Boolean'."
        )
    body = message.get("body") or {}
    content_type = CONTENT_TYPES.get(str(body.get("contentType", "text")).lower())
    if content_type is None or not isinstance(body.get("content", ""), str):
        raise _bad("RequestBodyRead", "Requested value for 'contentType' was not found.")
    to = _addresses(message, "toRecipients")
    cc = _addresses(message, "ccRecipients")
    bcc = _addresses(message, "bccRecipients")
    if not (to or cc or bcc):
        raise _bad(
            "ErrorInvalidRecipients",
            "At least one recipient isn't valid., A message can't be sent because it contains no "
            "recipients.",
        )
    headers: dict[str, str] = {}
    for header in message.get("internetMessageHeaders") or []:
        name = str((header or {}).get("name", ""))
        if not name.lower().startswith("x-"):
            raise _bad(
                "InvalidInternetMessageHeader",
                f"The internet message header name '{name}' should start with 'x-' or 'X-'.",
            )
        headers[name] = str(header.get("value", ""))
    mail_id = "AAMkAD" + uuid.uuid4().hex
    properties: dict[str, str] = {}
    for prop in message.get("singleValueExtendedProperties") or []:
        prop_id = str((prop or {}).get("id", ""))
        if not PROPERTY_ID.match(prop_id):
            raise _bad(
                "ErrorInvalidProperty", f"The extended property id '{prop_id}' is not valid."
            )
        properties[prop_id] = str(prop.get("value", ""))
    return SentMail(
        id=mail_id,
        sender=sender,
        to=to,
        cc=cc,
        bcc=bcc,
        subject=str(message.get("subject") or ""),
        content_type=content_type,
        content=str(body.get("content", "")),
        headers=headers,
        saved=save,
        sent_at=now,
        internet_message_id=f"<{uuid.uuid4().hex}@sandbox.outlook.com>",
        properties=properties,
    )


def _one(query: dict[str, list[str]], key: str) -> str:
    values = query.get(key) or [""]
    return values[0]


def _int(query: dict[str, list[str]], key: str, default: int, low: int, high: int) -> int:
    raw = _one(query, key)
    if not raw:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise _bad("ErrorInvalidUrlQuery", f"The value of '{key}' is not valid.")
    return int(raw)


def _parse_filter(raw: str) -> tuple[datetime | None, bool]:
    if not raw:
        return None, False
    match = FILTER.match(raw)
    if match is None:
        raise _bad(
            "ErrorInvalidUrlQueryFilter",
            "The query filter contains one or more invalid nodes (the simulator understands "
            "sentDateTime ge|gt <ISO 8601>).",
        )
    try:
        since = datetime.fromisoformat(match.group(2).replace("Z", "+00:00"))
    except ValueError:
        raise _bad(
            "ErrorInvalidUrlQueryFilter", "The DateTimeOffset literal is not valid."
        ) from None
    if since.tzinfo is None:
        raise _bad("ErrorInvalidUrlQueryFilter", "The DateTimeOffset literal needs a zone.")
    return since, match.group(1).lower() == "gt"


def _property_filter(raw: str) -> tuple[str, str] | None:
    """(property id, value) of an extended-property filter; None for another filter."""
    match = PROPERTY_FILTER.match(raw)
    if match is None:
        return None
    return match.group(2).replace("''", "'"), match.group(3).replace("''", "'")


def _has_property(mail: SentMail, prop_id: str, value: str) -> bool:
    # The namespace GUID and type compare as GUIDs and names do in MAPI; the string name is
    # case-sensitive and the value is not (singlevaluelegacyextendedproperty-get).
    for stored, stored_value in mail.properties.items():
        if (
            _property_key(stored) == _property_key(prop_id)
            and stored_value.lower() == value.lower()
        ):
            return True
    return False


def _property_key(prop_id: str) -> tuple[str, str]:
    kind_and_guid, _, name = prop_id.partition(" Name ")
    return kind_and_guid.lower(), name


def _parse_select(raw: str) -> tuple[str, ...]:
    if not raw:
        return DEFAULT_FIELDS
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _message_json(mail: SentMail, fields: tuple[str, ...], full_read: bool) -> dict[str, object]:
    def people(addresses: tuple[str, ...]) -> list[dict[str, object]]:
        return [{"emailAddress": {"name": a, "address": a}} for a in addresses]

    full: dict[str, object] = {
        "id": mail.id,
        "subject": mail.subject,
        "sentDateTime": _utc(mail.sent_at),
        "createdDateTime": _utc(mail.sent_at),
        "toRecipients": people(mail.to),
        "ccRecipients": people(mail.cc),
        "bccRecipients": people(mail.bcc),
        "from": {"emailAddress": {"name": mail.sender, "address": mail.sender}},
        "internetMessageId": mail.internet_message_id,
        # Mail.ReadBasic reads no body (permissions reference); Mail.Read does, when selected.
        **(
            {"body": {"contentType": mail.content_type, "content": mail.content}}
            if full_read
            else {}
        ),
        # No internetMessageHeaders: the Sent Items copy has none (module docstring).
    }
    out: dict[str, object] = {"@odata.etag": f'W/"{mail.id[-12:]}"', "id": mail.id}
    for name in fields:
        if name in full:
            out[name] = full[name]
    return out


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
