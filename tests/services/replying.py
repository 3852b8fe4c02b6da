"""What the reply tests share: a visit reminder that takes replies, a rule that takes none, and
a participant who registers, is texted and texts back, through the real services."""

from __future__ import annotations

from services import registration_detector, reply_poller
from services.sms_sender import Sender
from tests.services.conftest import Rig

VISIT = """
[[rule]]
name = "visit"
when = "[registration_complete] = '2'"
delay_minutes = 0
template = "Your visit is tomorrow. Reply YES to confirm or NO to cancel."
replies.confirmed = ["yes", "y", "si", "sí"]
replies.cancelled = ["no", "n"]
answer_confirmed = "Thank you, your visit is confirmed."
answer_cancelled = "Thank you. We will call you to find another time."
answer_unclear = "Sorry, please reply YES or NO."
"""
NEWS = """
[[rule]]
name = "news"
when = "[registration_complete] = '2'"
delay_minutes = 0
template = "Study news: thank you for taking part."
"""
PHONE = "+16175550100"
CONFIRMED = "Thank you, your visit is confirmed."
CANCELLED = "Thank you. We will call you to find another time."
UNCLEAR = "Sorry, please reply YES or NO."


def join(rig: Rig, record_id: str, phone: str = "(617) 555-0100") -> None:
    """A participant registers and the detector sees it."""
    rig.register(record_id, phone)
    registration_detector.run_once(rig.ctx(needs_twilio=False))


def send(rig: Rig, **overrides: str) -> dict[str, int]:
    return dict(Sender(dry_run=False).run_once(rig.ctx(**overrides)).counts)


def poll(rig: Rig, **overrides: str) -> dict[str, int]:
    return dict(reply_poller.run_once(rig.ctx(**overrides)).counts)


def text_back(rig: Rig, body: str, phone: str = PHONE, media: int = 0, to: str = "") -> str:
    """Half a minute later, the participant texts ``body`` (to our number, or ``to``)."""
    rig.advance(30)
    return rig.twilio.inject_inbound(phone, to or rig.twilio.from_number, body, media=media)


def bodies(rig: Rig, phone: str = PHONE) -> list[str]:
    """Every text to that number, oldest first (Twilio's own keyword answers too)."""
    return [str(m["body"]) for m in rig.sent_to(phone)]


def ours(rig: Rig, phone: str = PHONE) -> list[str]:
    """What we sent that number (not Twilio's own keyword answers), oldest first."""
    return [str(m["body"]) for m in rig.sent_to(phone) if m["direction"] == "outbound-api"]
