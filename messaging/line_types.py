"""Twilio Lookup's line types (TWILIO_LOOKUP=1): a number is looked up before its first text.

phonenumbers tells a landline from a mobile only where the numbering plan does (the UK, France...);
in the US and Canada both are "fixed line or mobile" and pass (:mod:`common.contacts`). With
TWILIO_LOOKUP=1 the sender asks Twilio Lookup v2's Line Type Intelligence, which asks the carrier,
for each number it is about to text for the first time, and keeps the answer on the record in
``relay_line_types`` (form relay, REDCAP_EVENT; one ``+E164 type`` line per number, newest first):
a landline, toll-free, premium-rate, shared-cost, UAN, voicemail-only or pager number is then
passed over like the ones phonenumbers knows (the next phone field, the e-mail on a ``sms,email``
rule, else ``skipped`` with ``not_textable``). Mobiles, VoIP and personal numbers, and any number
Lookup cannot type, are texted.

Twilio charges each lookup, so it is asked once per number on a record: a number already in the
record's field is never asked again, one asked for another record of the same chunk is not asked
again, and a changed number is asked anew. A lookup that cannot be made (an outage, a 429, a page
that is not Twilio's) texts the number as if TWILIO_LOOKUP were 0 and asks again next time: a line
type is a refinement, never a reason to hold a participant's message. The answers are written
before the chunk is claimed, so a kill -9 between the lookup and its write costs one more lookup,
nothing else (tests/services/test_line_types.py). Dry runs use only what the records hold.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence, Set

from common.errors import TwilioRejected, TwilioUnavailable
from common.field_types import Kind
from common.project import Layout
from common.redcap_client import RedcapClient, chunked

LINE_TYPES = "relay_line_types"
KINDS = {LINE_TYPES: Kind.TEXT}
KEEP = 8  # numbers remembered per record (a record with more phones asks again for the oldest)
CHUNK = 50  # records per import of what was learnt
# Lookup v2's types that never take an SMS (and "invalid": Lookup finds the number not valid),
# as a coordinator reads them. twilio.com/docs/lookup/v2-api/line-type-intelligence
NO_SMS = {
    "landline": "a landline",
    "tollFree": "a toll-free number",
    "premium": "a premium-rate number",
    "sharedCost": "a shared-cost number",
    "uan": "a universal access number",
    "voicemail": "a voicemail-only number",
    "pager": "a pager",
    "invalid": "not a valid number",
}
log = logging.getLogger(__name__)


def parse(text: str) -> dict[str, str]:
    """``relay_line_types`` as {E.164: line type}, newest first; lines that do not read are
    dropped (staff may have typed in it)."""
    known: dict[str, str] = {}
    for line in text.splitlines():
        number, _, kind = line.strip().partition(" ")
        if number.startswith("+") and kind.strip():
            known.setdefault(number, kind.strip())
    return known


def render(known: Mapping[str, str]) -> str:
    """What ``relay_line_types`` stores: at most KEEP numbers, newest first."""
    return "\n".join(f"{number} {kind}" for number, kind in list(known.items())[:KEEP])


class LineTypes:
    """One prepared chunk's line types: what its records hold, and what ``lookup`` (Twilio
    Lookup, :meth:`common.twilio_client.SmsGateway.line_type`; None: ask nothing) says of the
    numbers they lack (only those in ``allowed``, SMS_ALLOWED_NUMBERS, when it is set), written
    back by :meth:`save`."""

    def __init__(
        self, lookup: Callable[[str], str] | None, allowed: Set[str] | None = None
    ) -> None:
        self._ask = lookup
        self._allowed = allowed  # SMS_ALLOWED_NUMBERS: a number it leaves out is never asked
        self._asked: dict[str, str] = {}  # this chunk's answers, by number
        self._learnt: dict[str, dict[str, str]] = {}  # record id -> its field's new content
        self._down = False  # Lookup could not be asked this chunk: text as without it

    def refusal(self, record_id: str, values: Mapping[str, str]) -> Callable[[str], str | None]:
        """For one record: why a number (E.164) cannot take an SMS, or None."""
        known = parse(values.get(LINE_TYPES, ""))

        def refuse(e164: str) -> str | None:
            kind = known.get(e164) or self._lookup(record_id, e164, known)
            why = NO_SMS.get(kind or "")
            return f"Twilio Lookup says it is {why}" if why else None

        return refuse

    def _lookup(self, record_id: str, e164: str, known: dict[str, str]) -> str | None:
        if self._ask is None or self._down:
            return None
        if self._allowed is not None and e164 not in self._allowed:
            return None  # it will be skipped as not_allowed: no lookup to pay for
        kind = self._asked.get(e164)
        if kind is None:
            try:
                kind = self._ask(e164)
            except TwilioRejected as exc:
                kind = "unknown"  # Lookup will not type it (e.g. 60601): text it, ask no more
                log.warning("Twilio Lookup refused a number (error %s); it is texted", exc.code)
            except TwilioUnavailable as exc:
                self._down = True
                log.warning("Twilio Lookup unavailable (%s); numbers texted unchecked", exc)
                return None
            self._asked[e164] = kind
        updated = {e164: kind, **known}
        known.clear()
        known.update(updated)
        self._learnt[record_id] = dict(known)
        return kind

    def save(self, redcap: RedcapClient, layout: Layout) -> None:
        """One import per CHUNK records of what Lookup said (REDCAP_EVENT, where it lives)."""
        rows: Sequence[dict[str, str]] = [
            layout.row(record_id, {LINE_TYPES: render(known)})
            for record_id, known in self._learnt.items()
        ]
        for part in chunked(rows, CHUNK):
            redcap.import_rows(part)
        self._learnt.clear()
