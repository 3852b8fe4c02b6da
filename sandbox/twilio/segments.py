"""SMS segment counting, so ``num_segments`` reads like Twilio's (TWILIO_API.md §3.3).

GSM-7 bodies fit 160 septets in one segment and 153 per segment once split (extension-table
characters take two septets and are never split across segments). Anything outside GSM-7 is sent
as UCS-2: 70 UTF-16 code units in one segment, 67 per segment once split, and a surrogate pair
(most emoji) is never split either.
"""

from __future__ import annotations

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM7_SINGLE, GSM7_MULTI = 160, 153
UCS2_SINGLE, UCS2_MULTI = 70, 67


def is_gsm7(body: str) -> bool:
    """True when every character of ``body`` has a GSM-7 encoding."""
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in body)


def count_segments(body: str) -> int:
    """How many SMS segments ``body`` takes (1 for an empty body, as for a media-only message)."""
    if is_gsm7(body):
        units = [2 if ch in GSM7_EXTENSION else 1 for ch in body]
        single, multi = GSM7_SINGLE, GSM7_MULTI
    else:
        units = [2 if ord(ch) > 0xFFFF else 1 for ch in body]
        single, multi = UCS2_SINGLE, UCS2_MULTI
    if sum(units) <= single:
        return 1
    segments, used = 1, 0
    for width in units:
        # A two-unit character (escape pair, surrogate pair) moves whole to the next segment.
        if used + width > multi:
            segments += 1
            used = 0
        used += width
    return segments
