"""The Messages list: filters, newest-first paging and the page envelope (TWILIO_API.md §1.5).

Filters: ``To``, ``From`` (exact), ``DateSent`` / ``DateSent<`` / ``DateSent>`` (GMT days,
inclusive; a message not sent yet has no ``date_sent`` and matches no date filter). Dates come as
``YYYY-MM-DD`` or as the SDK sends them, ``YYYY-MM-DDTHH:MM:SSZ``; only the day counts.

Paging: ``PageSize`` (default 50, at most 1000, else 400/20007), ``Page``, and ``PageToken``:
``PA<sid>`` continues after that message and ``PB<sid>`` goes back before it, as in Twilio's own
next/previous page URIs, so a page stays stable while new messages arrive.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlencode

from sandbox.twilio.errors import bad_request
from sandbox.twilio.message import Message

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
FILTER_KEYS = ("To", "From", "DateSent", "DateSent<", "DateSent>")
TOKEN = re.compile(r"^P([AB])((?:SM|MM)[0-9a-f]{32})$")

OrderKey = tuple[datetime, int]


@dataclass(frozen=True)
class ListQuery:
    """A parsed list request."""

    filters: tuple[tuple[str, str], ...]  # as given, in FILTER_KEYS order, for the page URIs
    to: str | None
    from_: str | None
    on: date | None
    on_or_before: date | None
    on_or_after: date | None
    page_size: int
    page: int
    token: str | None

    def matches(self, message: Message) -> bool:
        """True when ``message`` passes every filter."""
        shown_from = message.sender if message.from_shown else None
        if self.to is not None and message.to != self.to:
            return False
        if self.from_ is not None and shown_from != self.from_:
            return False
        if self.on is None and self.on_or_before is None and self.on_or_after is None:
            return True
        if message.sent is None:
            return False
        day = message.sent.astimezone(UTC).date()
        return (
            (self.on is None or day == self.on)
            and (self.on_or_before is None or day <= self.on_or_before)
            and (self.on_or_after is None or day >= self.on_or_after)
        )


def parse_query(query: Mapping[str, list[str]]) -> ListQuery:
    """The list request in ``query``, or a 400 :class:`TwilioApiError`."""
    raw = {key: values[0] for key, values in query.items() if values}
    filters = tuple((key, raw[key]) for key in FILTER_KEYS if key in raw)
    return ListQuery(
        filters=filters,
        to=raw.get("To"),
        from_=raw.get("From"),
        on=_day(raw, "DateSent"),
        on_or_before=_day(raw, "DateSent<"),
        on_or_after=_day(raw, "DateSent>"),
        page_size=_page_size(raw.get("PageSize")),
        page=_page(raw.get("Page")),
        token=raw.get("PageToken"),
    )


def select_page(
    query: ListQuery, newest_first: list[Message], order_key: Callable[[str], OrderKey | None]
) -> tuple[list[Message], bool]:
    """The records of the requested page and whether a next page exists."""
    rows = [m for m in newest_first if query.matches(m)]
    size = query.page_size
    if query.token is None:
        start = query.page * size
        return rows[start : start + size], len(rows) > start + size
    found = TOKEN.match(query.token)
    anchor = order_key(found.group(2)) if found else None
    if found is None or anchor is None:
        raise bad_request(21481, "The PageToken in the requested URL was not valid.")
    if found.group(1) == "A":
        after = [m for m in rows if (m.created, m.seq) < anchor]
        return after[:size], len(after) > size
    before = [m for m in rows if (m.created, m.seq) > anchor]
    return before[-size:], True


def envelope(
    query: ListQuery,
    path: str,
    page_rows: list[Message],
    records: list[dict[str, object]],
    has_next: bool,
) -> dict[str, object]:
    """The page JSON: exactly Twilio's meta keys plus ``messages`` (the SDK needs no others)."""
    start = query.page * query.page_size

    def uri(page: int, token: str | None) -> str:
        params = [*query.filters, ("PageSize", str(query.page_size)), ("Page", str(page))]
        if token is not None:
            params.append(("PageToken", token))
        return f"{path}?{urlencode(params)}"

    next_uri = uri(query.page + 1, "PA" + page_rows[-1].sid) if has_next and page_rows else None
    previous_uri = None
    if query.page > 0:
        previous_uri = uri(query.page - 1, "PB" + page_rows[0].sid if page_rows else None)
    return {
        "end": start + max(len(records) - 1, 0),
        "first_page_uri": uri(0, None),
        "messages": records,
        "next_page_uri": next_uri,
        "page": query.page,
        "page_size": query.page_size,
        "previous_page_uri": previous_uri,
        "start": start,
        "uri": uri(query.page, query.token),
    }


def _day(raw: Mapping[str, str], key: str) -> date | None:
    value = raw.get(key)
    if value is None or value == "":
        return None
    text = value.strip()
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            raise bad_request(20001, f"Invalid {key}: {value}") from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC)
    return parsed.date()


def _page_size(value: str | None) -> int:
    if value is None or value == "":
        return DEFAULT_PAGE_SIZE
    try:
        size = int(value)
    except ValueError:
        raise bad_request(20001, f"Invalid PageSize: {value}") from None
    if size > MAX_PAGE_SIZE:
        raise bad_request(20007, "Page size too large: the maximum page size is 1000.")
    if size < 1:
        raise bad_request(20001, f"Invalid PageSize: {value}")
    return size


def _page(value: str | None) -> int:
    if value is None or value == "":
        return 0
    try:
        page = int(value)
    except ValueError:
        page = -1
    if page < 0:
        raise bad_request(20001, f"Invalid Page: {value}")
    return page
