"""Error bodies as Microsoft sends them.

The identity platform (Entra ID) answers OAuth errors as ``{"error", "error_description",
"error_codes", "timestamp", "trace_id", "correlation_id", "error_uri"}``, the description starting
with the AADSTS code (TWILIO_API.md §6.4). Graph answers ``{"error": {"code", "message",
"innerError": {"date", "request-id", "client-request-id"}}}`` (learn.microsoft.com/graph/errors).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")


@dataclass(eq=False)
class IdentityError(Exception):
    """A token request refused: OAuth ``error`` plus an AADSTS number."""

    status: int
    error: str
    code: int
    description: str

    def __str__(self) -> str:
        return f"{self.status} {self.error} AADSTS{self.code}"

    def body(self) -> dict[str, object]:
        trace = str(uuid.uuid4())
        return {
            "error": self.error,
            "error_description": f"AADSTS{self.code}: {self.description} Trace ID: {trace}",
            "error_codes": [self.code],
            "timestamp": _now().replace("T", " ") + "Z",
            "trace_id": trace,
            "correlation_id": str(uuid.uuid4()),
            "error_uri": "https://login.microsoftonline.com/error?code=" + str(self.code),
        }


@dataclass(eq=False)
class GraphApiError(Exception):
    """A Graph request refused: HTTP status and Graph's string ``code``."""

    status: int
    code: str
    message: str
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"

    def body(self, client_request_id: str = "") -> dict[str, object]:
        request_id = str(uuid.uuid4())
        return {
            "error": {
                "code": self.code,
                "message": self.message,
                "innerError": {
                    "date": _now(),
                    "request-id": request_id,
                    "client-request-id": client_request_id or request_id,
                },
            }
        }


def invalid_token(message: str) -> GraphApiError:
    return GraphApiError(401, "InvalidAuthenticationToken", message)


def access_denied() -> GraphApiError:
    return GraphApiError(
        403, "ErrorAccessDenied", "Access is denied. Check credentials and try again."
    )
