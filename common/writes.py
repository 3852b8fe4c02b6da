"""Batched REDCap writes that never let one bad record stop the others.

A REDCap import is all-or-nothing (REDCAP_API.md §4.3): one rejected row fails the batch. When a
batch is rejected we write its rows one by one; a row REDCap still refuses is marked
``needs_review`` with REDCap's reason (field and message, never the value), and the rest go on.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Protocol

from common.errors import RedcapRejected
from common.pipeline import Status
from common.project import Layout
from common.redcap_client import RedcapClient, chunked

BATCH = 50
MESSAGE_LIMIT = 1000  # characters of a reason we store: enough to act on, short in a report
log = logging.getLogger(__name__)


class StatusFields(Protocol):
    """Where a refused row is flagged: a rule's status and error fields."""

    @property
    def status(self) -> str: ...

    @property
    def error_code(self) -> str: ...

    @property
    def error_message(self) -> str: ...


def reason_values(flag: StatusFields, status: str, code: str, message: str) -> dict[str, str]:
    """A status (any kind of rule's code) with its reason, in ``flag``'s fields: the code and
    the message, cut short."""
    return {flag.status: status, flag.error_code: code, flag.error_message: message[:MESSAGE_LIMIT]}


def write_rows(
    client: RedcapClient,
    layout: Layout,
    rows: Sequence[Mapping[str, str]],
    flag: StatusFields,
    *,
    overwrite: bool = False,
) -> set[str]:
    """Import ``rows`` in batches; return the record ids that REDCap refused (each flagged
    ``needs_review`` in ``flag``'s fields)."""
    refused: set[str] = set()
    for batch in chunked(list(rows), BATCH):
        try:
            client.import_rows(batch, overwrite=overwrite)
        except RedcapRejected as exc:
            if len(batch) == 1:
                refused.add(_flag(client, layout, batch[0], flag, exc))
            else:
                for row in batch:
                    refused |= write_rows(client, layout, [row], flag, overwrite=overwrite)
    return refused


def _flag(
    client: RedcapClient,
    layout: Layout,
    row: Mapping[str, str],
    flag: StatusFields,
    exc: RedcapRejected,
) -> str:
    record_id = row[layout.record_id_field]
    reasons = exc.record_errors.get(record_id) or [str(exc)]
    reason = "REDCap refused the update: " + "; ".join(reasons)
    log.error("record=%s refused by REDCap: %s", record_id, "; ".join(reasons))
    try:
        client.import_rows(
            [
                layout.row(
                    record_id,
                    reason_values(flag, Status.NEEDS_REVIEW, "redcap_rejected", reason),
                    row.get("redcap_event_name", ""),
                )
            ]
        )
    except RedcapRejected:
        log.error("record=%s could not even be marked needs_review", record_id)
    return record_id
