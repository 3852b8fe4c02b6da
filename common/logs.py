"""Logging: configured once in ``main``, to stderr, as text or JSON lines.

Records are logged as ``record=17 registered -> sending to=+1******0100``: phones masked with
:func:`common.contacts.mask_phone`, never a token, a message body or a survey link.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from common.contacts import mask_email, mask_phone


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="seconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure(level: str = "INFO", fmt: str = "text") -> None:
    """Send our logs to stderr (journald picks them up under systemd)."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The twilio SDK logs every request (URL with the number) at INFO; PyCap's requests/urllib3
    # would log connection details: keep third parties to warnings.
    for noisy in ("twilio", "twilio.http_client", "urllib3", "requests"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # msal logs a token answer that is not JSON whole, with a traceback (logger.exception): the
    # Graph adapter says it in one line instead.
    logging.getLogger("msal").setLevel(logging.CRITICAL)


def mask_contact(to: str) -> str:
    """A phone number or an e-mail address, masked for a log line."""
    return mask_email(to) if "@" in to else mask_phone(to)


def transition(
    log: logging.Logger,
    record_id: str,
    old: str,
    new: str,
    to: str = "",
    reason: str = "",
    rule: str = "",
) -> None:
    """The one line logged per record state change (of one rule's status, if ``rule``)."""
    where = f"record={record_id} rule={rule}" if rule else f"record={record_id}"
    parts = [f"{where} {old or 'blank'} -> {new}"]
    if to:
        parts.append(f"to={mask_contact(to)}")
    if reason:
        parts.append(f"reason={reason}")
    log.info(" ".join(parts))
