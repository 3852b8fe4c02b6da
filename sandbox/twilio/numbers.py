"""Phone-number rules of the Twilio simulator: magic numbers, outcomes, opt-out keywords.

Synchronous outcomes (the create is refused, nothing is stored) use Twilio's own test-credential
magic numbers (TWILIO_API.md §2.3), so a test reads the same against the simulator and against
Twilio with test credentials:

=================  =========================================================
``From`` value      result of the create
=================  =========================================================
``+15005550006``    passes (like any number the account owns)
``+15005550001``    400, 21212 invalid ``From``
``+15005550007``    400, 21606 not owned / not SMS-capable
``+15005550008``    400, 21611 sender queue full
any other number    400, 21606, unless the account owns it (the simulator's ``from_number``)
=================  =========================================================

=================  =========================================================
``To`` value        result of the create
=================  =========================================================
``+15005550001``    400, 21211 invalid ``To``
``+15005550002``    400, 21612 cannot route from this ``From``
``+15005550003``    400, 21408 no geo permission for the region
``+15005550004``    400, 21610 recipient unsubscribed (STOP)
``+15005550009``    400, 21614 not a mobile number
=================  =========================================================

Later outcomes are ours (Twilio has no magic numbers for delivery results): ``+1500555`` followed by
``3`` and the last three digits of the 30xxx error code the message ends with. The message is
created normally (201, ``queued``) and then moves through simulated time:

=================  =========================================================
``To`` value        lifecycle after the create
=================  =========================================================
``+15005553000``    sending -> sent, then nothing: no delivery receipt ever comes
``+15005553001``    failed, 30001 queue overflow (never leaves Twilio, no ``date_sent``)
``+15005553003``    sending -> sent -> undelivered, 30003 unreachable handset
``+15005553004``    sending -> sent -> undelivered, 30004 message blocked
``+15005553005``    sending -> sent -> undelivered, 30005 unknown handset
``+15005553006``    sending -> sent -> undelivered, 30006 landline / unreachable carrier
``+15005553007``    sending -> sent -> undelivered, 30007 carrier filtering
``+15005553008``    sending -> sent -> undelivered, 30008 unknown error
``+15005553034``    sending -> sent -> undelivered, 30034 unregistered A2P 10DLC number
``+15005553036``    stays queued (backlog) until its ValidityPeriod ends: failed, 30036
any other number    sending -> sent -> delivered
=================  =========================================================
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Syntax only: the simulator must accept the fictional +1555... numbers tests and the demo use.
E164 = re.compile(r"^\+[1-9][0-9]{7,14}$")

MAGIC_FROM_OK = "+15005550006"

# From value -> (code, message template); {number} is the From value.
MAGIC_FROM_ERRORS: dict[str, tuple[int, str]] = {
    "+15005550001": (
        21212,
        "The 'From' number {number} is not a valid phone number, shortcode, "
        "or alphanumeric sender ID.",
    ),
    "+15005550007": (
        21606,
        "The 'From' phone number provided ({number}) is not a valid message-capable "
        "Twilio phone number for this destination.",
    ),
    "+15005550008": (
        21611,
        "This 'From' number has exceeded the maximum number of queued messages.",
    ),
}

# To value -> (code, message template); {number} is the To value, {sender} the From value.
MAGIC_TO_ERRORS: dict[str, tuple[int, str]] = {
    "+15005550001": (21211, "The 'To' number {number} is not a valid phone number."),
    "+15005550002": (
        21612,
        "The 'To' phone number: {number}, is not currently reachable using the 'From' "
        "phone number: {sender} via SMS.",
    ),
    "+15005550003": (
        21408,
        "Permission to send an SMS has not been enabled for the region indicated by "
        "the 'To' number: {number}.",
    ),
    "+15005550004": (21610, "Attempt to send to unsubscribed recipient"),
    "+15005550009": (21614, "'To' number {number} is not a valid mobile number"),
}


@dataclass(frozen=True)
class Outcome:
    """How a created message ends: its final status and 30xxx code (None when delivered)."""

    status: str
    error_code: int | None = None


DELIVERED = Outcome("delivered")
SENT_FOREVER = Outcome("sent")
VALIDITY_EXPIRED = Outcome("failed", 30036)

OUTCOMES: dict[str, Outcome] = {
    "+15005553000": SENT_FOREVER,
    "+15005553001": Outcome("failed", 30001),
    "+15005553003": Outcome("undelivered", 30003),
    "+15005553004": Outcome("undelivered", 30004),
    "+15005553005": Outcome("undelivered", 30005),
    "+15005553006": Outcome("undelivered", 30006),
    "+15005553007": Outcome("undelivered", 30007),
    "+15005553008": Outcome("undelivered", 30008),
    "+15005553034": Outcome("undelivered", 30034),
    "+15005553036": VALIDITY_EXPIRED,
}

# Titles from Twilio's error dictionary, shown as a message's ``error_message``.
ERROR_TITLES: dict[int, str] = {
    30001: "Queue overflow",
    30003: "Unreachable destination handset",
    30004: "Message blocked",
    30005: "Unknown destination handset",
    30006: "Landline or unreachable carrier",
    30007: "Carrier violation",
    30008: "Unknown error",
    30034: "US A2P 10DLC - Message from an Unregistered Number",
    30036: "Validity Period Expired",
}

OUTCOME_NUMBERS: dict[str, str] = {
    **{to: f"create refused: 400, {code}" for to, (code, _) in MAGIC_TO_ERRORS.items()},
    "+15005553000": "queued -> sending -> sent, then no receipt: stays sent forever",
    "+15005553001": "queued -> failed, 30001 queue overflow",
    **{
        to: f"queued -> sending -> sent -> undelivered, {outcome.error_code} "
        f"{ERROR_TITLES[outcome.error_code or 0].lower()}"
        for to, outcome in OUTCOMES.items()
        if outcome.status == "undelivered"
    },
    "+15005553036": "stays queued until ValidityPeriod (default 36000 s) ends: failed, 30036",
}
"""Documented magic ``To`` numbers -> what happens to a message sent to them."""

# Keywords Twilio handles itself on long codes (TWILIO_API.md §3.2); matched on the whole body.
OPT_OUT_KEYWORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
)
OPT_IN_KEYWORDS = frozenset({"START", "YES", "UNSTOP"})
HELP_KEYWORDS = frozenset({"HELP", "INFO"})

# Default auto-replies; the wording is ours, the behaviour (a reply to each keyword) is Twilio's.
AUTO_REPLIES = {
    "opt-out": "You have been unsubscribed and will get no more messages from this number. "
    "Reply START to subscribe again.",
    "opt-in": "You have been subscribed again. Reply HELP for help or STOP to unsubscribe.",
    "help": "Reply STOP to unsubscribe. Msg&Data rates may apply.",
}


def keyword_kind(body: str) -> str | None:
    """``opt-out``, ``opt-in`` or ``help`` when the whole body is such a keyword, else None."""
    word = body.strip().upper()
    if word in OPT_OUT_KEYWORDS:
        return "opt-out"
    if word in OPT_IN_KEYWORDS:
        return "opt-in"
    if word in HELP_KEYWORDS:
        return "help"
    return None


def outcome_for(to: str) -> Outcome:
    """The final outcome planned for a message to ``to``."""
    return OUTCOMES.get(to, DELIVERED)
