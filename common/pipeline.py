"""The state model of every rule: the status codes of ``R_status`` (``pipeline_status`` for the
built-in rule), which is the queue. Transitions (README "How it works" draws them)::

    (blank) --detector--> registered --sender claims--> sending --Twilio accepted--> sms_sent
    (blank) --admin baseline--> baseline          (never messaged)
    sending --reconcile: message found--> sms_sent
    sending --reconcile: none found, Twilio's answer was lost--> registered   (an attempt used;
                                                      failed after SMS_MAX_ATTEMPTS)
    sending --reconcile: none found, our sender stopped--> registered   (attempt given back;
                                                      failed after SMS_MAX_INTERRUPTED)
    sending --unresolved past SMS_REVIEW_AFTER_HOURS--> needs_review
    registered --no usable phone / not allowed--> skipped
    registered/sending --Twilio permanent rejection--> failed
    sms_sent --checker--> delivered | undelivered | failed | unconfirmed
    sending --Graph accepted the mail (or Sent Items holds it)--> sent_email    (final)
    sending --mail's fate unknown, Sent Items not readable--> needs_review
    registered --stop_when holds when due--> cancelled      (file rules)
    registered --the anchor passed first--> expired           (file rules)
    delivered/unconfirmed --next of a series due (repeat)--> sending
    failed/undelivered/skipped/needs_review/unconfirmed/cancelled/expired --admin requeue-->
        registered

Each rule's field names are the engine's (``messaging.rules.RuleFields``); this layer only
knows the codes.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    BASELINE = "baseline"
    REGISTERED = "registered"
    SENDING = "sending"
    SMS_SENT = "sms_sent"
    SENT_EMAIL = "sent_email"  # Graph accepted the mail; there is no delivery receipt to wait for
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    SKIPPED = "skipped"
    UNCONFIRMED = "unconfirmed"
    NEEDS_REVIEW = "needs_review"
    CANCELLED = "cancelled"  # a rule's stop_when held when its message would have gone out
    EXPIRED = "expired"  # a date-anchored message whose anchor time passed before it could go


REQUEUEABLE = frozenset(
    {
        Status.FAILED,
        Status.UNDELIVERED,
        Status.SKIPPED,
        Status.NEEDS_REVIEW,
        Status.UNCONFIRMED,
        Status.CANCELLED,
        Status.EXPIRED,
    }
)
# A message accepted and settled: the next message of a series may follow it.
SETTLED = frozenset({Status.DELIVERED, Status.UNCONFIRMED, Status.SENT_EMAIL})
