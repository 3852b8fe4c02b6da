"""The one error the REDCap simulator raises internally: an API answer other than 200."""

from __future__ import annotations


class ApiError(Exception):
    """REDCap refuses the request with ``status`` and ``message`` (rendered per returnFormat)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
