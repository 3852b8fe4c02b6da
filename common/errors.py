"""Every error redcap-relay raises on purpose, and what the services do with each.

::

    RelayError                      base; its message is one line meant for a person
    ├── ConfigError                 bad setting or argument: exit 2, no traceback
    ├── ProjectCheckError           token's project != REDCAP_PROJECT_ID, fields missing: exit 3
    ├── TransientError              try again next cycle; the record stays where it is
    │   ├── RedcapUnavailable       REDCap unreachable / 5xx after retries, or a timeout
    │   ├── TwilioUnavailable       Twilio 429 or unreachable: the message was not created
    │   │   └── TwilioOutcomeUnknown  timeout / 5xx / reset: it may exist; reconcile, never resend
    │   └── GraphUnavailable        Graph 429/503 or unreachable: the mail was not sent
    │       └── GraphOutcomeUnknown   sendMail timeout / 5xx / reset: it may have gone; never resend
    ├── RedcapBanned                REDCap answered 429: this IP is banned; stop, exit 4
    ├── RedcapRejected              REDCap refused a request (bad field, bad value, ...)
    └── PermanentError              record-level: written on that record, never retried
        ├── InvalidPhone            no usable phone number
        ├── SurveyLinkError         REDCap gave no usable survey link for the record
        ├── TwilioRejected          Twilio refused the message (21211, 21610, ...)
        └── GraphRejected           Graph refused the mail (ErrorInvalidRecipients, ...)

Adapters (``common/redcap_client.py``, ``common/twilio_client.py``, ``common/graph_client.py``)
translate PyCap, requests, twilio and msal exceptions into these once, at the boundary; services
never see third-party exceptions.
"""

from __future__ import annotations


class RelayError(Exception):
    """Base class; ``str(e)`` is a single line a coordinator can act on."""


class ConfigError(RelayError):
    """A setting or argument is wrong. The message names it and says how to fix it."""


class ProjectCheckError(RelayError):
    """The REDCap project is not the configured one, or lacks what the pipeline needs."""


class TransientError(RelayError):
    """A service is temporarily unreachable; the cycle ends and the next one retries.

    ``retry_after`` is the server's ``Retry-After`` in seconds when it gave one: the wait before
    the next try is at least that long (:mod:`common.backoff`).
    """

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RedcapUnavailable(TransientError):
    """REDCap could not be reached (connection error, timeout, 5xx) after bounded retries."""


class TwilioUnavailable(TransientError):
    """Twilio could not take the request (429, 5xx, timeout, connection error)."""


class TwilioOutcomeUnknown(TwilioUnavailable):
    """A create was sent but no answer came back: the message may exist. Reconcile, never resend."""


class GraphUnavailable(TransientError):
    """Microsoft Graph or the identity platform could not take the request (429, 503, timeout,
    connection error) within the bounded retries: nothing was sent."""


class GraphOutcomeUnknown(GraphUnavailable):
    """A sendMail left but no clear answer came back (timeout, 5xx, reset): the mail may have
    gone. Look for it in Sent Items or ask a person; never resend blindly."""


class RedcapBanned(RelayError):
    """REDCap answered 429: the server banned this IP. Retrying makes it worse; stop."""


class RedcapRejected(RelayError):
    """REDCap refused a request. ``record_errors`` maps record id -> REDCap's messages."""

    def __init__(self, message: str, record_errors: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.record_errors = record_errors or {}


class PermanentError(RelayError):
    """A problem with one participant's data or message: recorded on the record, not retried.

    ``code`` goes to ``pipeline_error_code`` and ``str(e)`` to ``pipeline_error_message``; neither
    may contain the phone number, the survey link or the message body.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class InvalidPhone(PermanentError):
    """None of the configured phone fields holds a number we can text."""


class InvalidEmail(PermanentError):
    """None of the configured e-mail fields holds an address we can write to."""


class SurveyLinkError(PermanentError):
    """REDCap returned an error or a non-URL instead of the participant's survey link."""


class TwilioRejected(PermanentError):
    """Twilio refused the message permanently (its error code in ``code``)."""


class GraphRejected(PermanentError):
    """Graph refused the mail permanently (its error code, e.g. ErrorInvalidRecipients, in
    ``code``); the message names no address."""
