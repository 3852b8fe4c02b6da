"""SMS segments: how many parts Twilio bills a body as, and in which encoding.

GSM-7 when every character is in the GSM 03.38 default alphabet or its extension table (an
extension character costs 2 septets): 160 septets in one segment, 153 per part when longer.
Otherwise UCS-2: 70 UTF-16 code units in one segment, 67 per part (an emoji counts 2). A
character of 2 units is never split across two parts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# 3GPP TS 23.038 §6.2.1, the GSM 7-bit default alphabet, in code order (index = septet value).
# 0x1B is ESC, the way into the extension table, not a character of its own.
_GSM_DEFAULT_ALPHABET = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
# 3GPP TS 23.038 §6.2.1.1, the default alphabet extension table: septet value after ESC -> char.
# Each is sent as ESC + value, so it costs 2 septets.
_GSM_EXTENSION_TABLE = {
    0x0A: "\f",
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x65: "€",
}
_GSM_BASIC = frozenset(_GSM_DEFAULT_ALPHABET) - {"\x1b"}
_GSM_EXTENDED = frozenset(_GSM_EXTENSION_TABLE.values())


@dataclass(frozen=True)
class Segments:
    """What a body costs as SMS."""

    encoding: Literal["GSM-7", "UCS-2"]
    count: int  # SMS segments (0 for an empty body)
    characters: int  # septets (GSM-7) or UTF-16 code units (UCS-2): the units the limits count


def segments(body: str) -> Segments:
    """GSM-7 if every character is in the default alphabet or its extension, else UCS-2."""
    if all(ch in _GSM_BASIC or ch in _GSM_EXTENDED for ch in body):
        costs = [2 if ch in _GSM_EXTENDED else 1 for ch in body]
        return Segments("GSM-7", _count(costs, single=160, part=153), sum(costs))
    # Handsets send UCS-2 as UTF-16: a character beyond U+FFFF (most emoji) is 2 units.
    costs = [2 if ord(ch) > 0xFFFF else 1 for ch in body]
    return Segments("UCS-2", _count(costs, single=70, part=67), sum(costs))


def _count(costs: list[int], *, single: int, part: int) -> int:
    total = sum(costs)
    if total <= single:
        return 1 if total else 0
    # Concatenated parts never split an ESC pair or a surrogate pair: a 2-unit character that
    # does not fit in what is left of a part starts the next one.
    count, room = 1, part
    for cost in costs:
        if cost > room:
            count, room = count + 1, part
        room -= cost
    return count
