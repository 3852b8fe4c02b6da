"""Error bodies as Microsoft sends them.

The identity platform (Entra ID) answers OAuth errors as ``{"error", "error_description",
"error_codes", "timestamp", "trace_id", "correlation_id", "error_uri"}``, the description starting
with the AADSTS code (TWILIO_API.md §6.4). Graph answers ``{"error": {"code", "message",
"innerError": {"date", "request-id", "client-request-id"}}}`` (learn.microsoft.com/graph/errors).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")


class IdentityError(Exception):
    """A token request refused: OAuth ``error`` plus an AADSTS number."""

    def __init__(self, status: int, error: str, code: int, description: str) -> None:
        super().__init__(f"{status} {error} AADSTS{code}")
        self.status = status
        self.error = error
        self.code = code
        self.description = description

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


class GraphApiError(Exception):
    """A Graph request refused: HTTP status and Graph's string ``code``."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

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
