"""Twilio API errors in the legacy 2010-04-01 shape (TWILIO_API.md §1.6).

The body is ``{"code", "message", "more_info", "status"}`` (plus ``detail`` where Twilio sends
one). It never carries ``type`` + ``title``: with those the SDK would raise
``TwilioServiceException`` instead of ``TwilioRestException``.
"""

from __future__ import annotations

from dataclasses import dataclass

MORE_INFO = "https://www.twilio.com/docs/errors/{code}"


@dataclass(eq=False)
class TwilioApiError(Exception):
    """A request the simulator refuses, as Twilio would: HTTP status + Twilio error code."""

    status: int
    code: int
    message: str
    detail: str | None = None

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"

    def body(self) -> dict[str, object]:
        """The JSON error body Twilio sends."""
        payload: dict[str, object] = {
            "code": self.code,
            "message": self.message,
            "more_info": MORE_INFO.format(code=self.code),
            "status": self.status,
        }
        if self.detail is not None:
            payload["detail"] = self.detail
        return payload


def bad_request(code: int, message: str) -> TwilioApiError:
    """A 400 with a Twilio code: validation and business-rule refusals."""
    return TwilioApiError(400, code, message)


def rate_limited_body() -> dict[str, object]:
    """The 429 body Twilio sends when too many requests are in flight (error 20429)."""
    return TwilioApiError(429, 20429, "Too Many Requests").body()
