"""The REDCap adapter: PyCap with timeouts, bounded retries, and our exceptions.

PyCap 2.7.0 sets no timeout, never looks at HTTP status codes, and keeps one module-level
``requests`` session. We pass a timeout on every call, mount a bounded urllib3 ``Retry``
(connection errors and 5xx only; never 429) on that session, and add a hook that turns any HTTP
error status into an exception, so a 429 ban or a 5xx cannot be mistaken for data
(REDCAP_API.md §6, §7.2, §7.4).
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import redcap.request
import requests
from redcap.project import Project
from redcap.request import RedcapError
from urllib3.util.retry import Retry

from common.errors import ConfigError, RedcapBanned, RedcapRejected, RedcapUnavailable
from common.http_bounds import AnswerBounds, mount_bounded

log = logging.getLogger(__name__)

_RETRY_STATUSES = (500, 502, 503, 504)


# The Date header of REDCap's last answer (REDCap's clock), noted by the session's hook. PyCap
# keeps one session per process, so one note per process; ``admin check`` reads it, and change
# probes take the window of the next probe from it (REDCap's clock, not ours).
_last_date: list[datetime] = []


class _NotRedcap(requests.RequestException):
    """The API's address answered with a web page: something in front of REDCap (a proxy, a
    firewall, a login portal), not REDCap, whatever the status said."""


def _raise_for_status(response: requests.Response, *args: object, **kwargs: object) -> None:
    date = response.headers.get("Date")
    if date:
        try:
            _last_date[:] = [parsedate_to_datetime(date).astimezone(UTC)]
        except (TypeError, ValueError):
            _last_date.clear()
    # REDCap answers JSON, CSV, XML or a bare value, never an HTML document (its survey links
    # come as text/html, so the body is what tells). A 404 page stays a wrong REDCAP_API_URL;
    # a 429 stays the ban it is.
    if response.status_code not in (404, 429) and is_html(response.content):
        raise _NotRedcap(response=response)
    response.raise_for_status()


def is_html(body: bytes) -> bool:
    """True when ``body`` is an HTML document (a page meant for a browser)."""
    head = body[:256].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<head", b"<body"))


_raise_for_status.redcap_relay = True  # type: ignore[attr-defined]


def configure_session(retries: int, bounds: AnswerBounds, backoff: float = 0.5) -> None:
    """Set PyCap's shared session up once per process: status hook, bounded retries, and every
    answer bounded in time and size (:mod:`common.http_bounds`)."""
    session = redcap.request._session
    hooks = session.hooks.setdefault("response", [])
    if not any(getattr(hook, "redcap_relay", False) for hook in hooks):
        hooks.append(_raise_for_status)
    retry = Retry(
        total=retries,
        connect=retries,
        read=0,  # a read timeout may mean REDCap is slow, not down: give up and try next cycle
        status=retries,
        other=0,
        backoff_factor=backoff,
        backoff_max=5.0,
        status_forcelist=_RETRY_STATUSES,
        allowed_methods=None,  # REDCap is POST-only; every call we make is idempotent
        respect_retry_after_header=False,
        raise_on_status=False,
    )
    mount_bounded(session, bounds, max_retries=retry)


class RedcapClient:
    """The REDCap calls redcap-relay makes, each translated into our errors."""

    def __init__(self, url: str, token: str, timeout: float, retries: int = 3) -> None:
        configure_session(retries, AnswerBounds.for_timeout(timeout))
        self._project = Project(url, token, timeout=(min(timeout, 10.0), timeout))

    # -- project description ----------------------------------------------------------------
    def project_info(self) -> dict[str, Any]:
        result = self._call(self._project.export_project_info)
        if not isinstance(result, dict):
            raise RedcapRejected("REDCap answered the project request with something unexpected")
        return result

    def metadata(self) -> list[dict[str, str]]:
        """The data dictionary, read once per client: PyCap caches it and needs it anyway (it
        looks up the record id field before every export)."""
        return self._rows(self._call(lambda: self._project.metadata))

    def instruments(self) -> list[dict[str, str]]:
        return self._rows(self._call(self._project.export_instruments))

    def form_event_mapping(self) -> list[dict[str, str]] | None:
        """The form-event mapping, or None on a classic project (REDCap answers with an error)."""
        try:
            return self._rows(self._call(self._project.export_instrument_event_mappings))
        except RedcapRejected as exc:
            if "classic" in str(exc).lower():
                return None
            raise

    def repeating_forms(self) -> list[dict[str, str]]:
        """The repeating instruments and events ([] when the project has none: REDCap answers
        that with an error, §5 ``repeatingFormsEvents``)."""
        try:
            return self._rows(self._call(self._project.export_repeating_instruments_events))
        except RedcapRejected as exc:
            if "does not contain any repeating" in str(exc):
                return []
            raise

    def events(self) -> list[dict[str, str]]:
        return self._rows(self._call(self._project.export_events))

    # -- records ------------------------------------------------------------------------------
    def export(
        self,
        fields: Sequence[str],
        filter_logic: str = "",
        records: Sequence[str] | None = None,
        events: Sequence[str] | None = None,
        changed_since: datetime | None = None,
        instances: bool = False,
    ) -> list[dict[str, str]]:
        """Flat raw rows with only ``fields``, filtered server-side; with ``changed_since`` (a
        naive time in REDCap's zone) only records REDCap logged a change of since then
        (``dateRangeBegin``, inclusive). The rows of repeating instruments' instances (a
        conversation log's, a study's own) only with ``instances``: every other reader wants a
        record's own rows, and the reference does not say whether REDCap sends instance rows
        for fields off their instrument."""
        rows = self._call(
            self._project.export_records,
            fields=list(fields),
            records=list(records) if records else None,
            events=list(events) if events else None,
            filter_logic=filter_logic or None,
            raw_or_label="raw",
            date_begin=changed_since,
        )
        return _own(self._rows(rows), instances)

    def report(self, report_id: str) -> list[dict[str, str]]:
        """The rows of a saved report (its columns and filter, as the team set it up), raw; a
        record's own rows, as :meth:`export` gives them.
        ConfigError when the project has no such report (REDCap answers 403 for it)."""
        try:
            rows = self._call(
                self._project.export_report, report_id=str(report_id), raw_or_label="raw"
            )
        except RedcapRejected as exc:
            if "does not belong to this project" in str(exc):
                raise ConfigError(
                    f"this project has no report {report_id}; use a Report ID that REDCap's "
                    "My Reports & Exports page shows"
                ) from None
            raise
        return _own(self._rows(rows), instances=False)

    def import_rows(self, rows: Sequence[Mapping[str, str]], overwrite: bool = False) -> int:
        """Write only the fields given; ``overwrite`` lets a blank erase a stored value.

        Never ``return_content="nothing"``: PyCap would swallow REDCap's validation errors.
        """
        if not rows:
            return 0
        result = self._call(
            self._project.import_records,
            [dict(row) for row in rows],
            overwrite="overwrite" if overwrite else "normal",
            return_content="count",
        )
        if isinstance(result, dict) and "count" in result:
            return int(result["count"])
        raise RedcapRejected("REDCap answered an import with something unexpected")

    # -- surveys ------------------------------------------------------------------------------
    def survey_link(self, record: str, instrument: str, event: str | None) -> str:
        link = self._call(
            self._project.export_survey_link, record=record, instrument=instrument, event=event
        )
        return str(link).strip()

    def server_time(self) -> datetime | None:
        """REDCap's clock (the ``Date`` header of a tiny answer: its version); None if REDCap
        sent none. Raises as every call does."""
        _last_date.clear()
        self._call(self._project.export_version)
        return _last_date[0] if _last_date else None

    @staticmethod
    def answered_at() -> datetime | None:
        """REDCap's clock (UTC) at its last answer to this process, from its ``Date`` header;
        None before any answer or when it sent none."""
        return _last_date[0] if _last_date else None

    def next_record_name(self) -> str:
        """REDCap's next record name (the highest numeric record name + 1): one tiny request."""
        return str(self._call(self._project.generate_next_record_name)).strip()

    def participant_list(self, instrument: str, event: str | None) -> list[dict[str, str]]:
        """Every record's link for one survey: as large as the project, so only for checks."""
        rows = self._call(
            self._project.export_survey_participant_list, instrument=instrument, event=event
        )
        return [{k: str(v) for k, v in row.items()} for row in self._rows(rows)]

    # -- plumbing -----------------------------------------------------------------------------
    def _call(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except requests.HTTPError as exc:
            raise _translate_http(exc) from None
        except _NotRedcap as exc:
            status = exc.response.status_code if exc.response is not None else 0
            raise RedcapUnavailable(
                f"REDCAP_API_URL answered HTTP {status} with a web page, not REDCap's API (a "
                "proxy, firewall or login page in between)"
            ) from None
        except (requests.ConnectionError, requests.Timeout):
            raise RedcapUnavailable(
                "REDCap did not answer in time (connection failed, timed out or too slow, after "
                "retries)"
            ) from None
        except requests.JSONDecodeError:
            raise RedcapUnavailable("REDCap's answer was not the JSON asked for") from None
        except RedcapError as exc:
            if type(exc) is not RedcapError:  # requests' own: a cut-off or undecodable answer
                raise RedcapUnavailable("REDCap's answer could not be read (cut off?)") from None
            # PyCap's: REDCap's error message in a 200 answer
            raise RedcapRejected(_error_text(exc.args[0] if exc.args else exc)) from None

    @staticmethod
    def _rows(result: Any) -> list[dict[str, Any]]:
        if isinstance(result, list) and all(isinstance(row, dict) for row in result):
            return result
        raise RedcapRejected("REDCap answered with something that is not a list of rows")


def _translate_http(exc: requests.HTTPError) -> Exception:
    response = exc.response
    status = response.status_code if response is not None else 0
    if status == 429:
        return RedcapBanned(
            "REDCap answered 429: the server has banned this machine's IP address for too many "
            "requests; ask your REDCap administrator to lift the ban, and raise "
            "POLL_INTERVAL_SECONDS"
        )
    if status >= 500 or status == 0:
        return RedcapUnavailable(f"REDCap answered HTTP {status} (after retries)")
    text = _error_text(response.text if response is not None else "")
    if status == 401 or (status == 403 and "permissions to use the API" in text):
        return RedcapRejected(f"REDCap refused the token ({status}): {text}")
    if status == 403:  # the token is fine; a right it lacks, or a report of another project
        return RedcapRejected(f"REDCap refused the request ({status}): {text}")
    record_errors = _record_errors(text)
    if record_errors:
        # REDCap quotes each refused value (it may be a phone number): keep field and message.
        text = "; ".join(f"record {rid}: {', '.join(msgs)}" for rid, msgs in record_errors.items())
    return RedcapRejected(text, record_errors)


def _error_text(body: object) -> str:
    """REDCap's error message from a JSON, CSV or XML error body (REDCAP_API.md §1.4)."""
    if isinstance(body, dict):
        return str(body.get("error", body))
    text = str(body).strip()
    try:
        decoded = json.loads(text)
    except ValueError:
        decoded = None
    if isinstance(decoded, dict) and "error" in decoded:
        return str(decoded["error"])
    if text.upper().startswith("ERROR:"):
        return text[6:].strip()
    if "<error>" in text:
        return text.split("<error>", 1)[1].split("</error>", 1)[0]
    return text[:500]


def _record_errors(text: str) -> dict[str, list[str]]:
    """Import errors come as CSV lines ``"record","field","value","message"`` (§4.3)."""
    errors: dict[str, list[str]] = {}
    for row in csv.reader(io.StringIO(text)):
        if len(row) == 4:
            record, field, _value, message = row
            errors.setdefault(record, []).append(f"{field}: {message}")
    return errors


def _own(rows: Sequence[Mapping[str, Any]], instances: bool) -> list[dict[str, str]]:
    """Rows as text, without repeating instruments' instances unless ``instances``."""
    return [
        {k: str(v) for k, v in row.items()}
        for row in rows
        if instances or not row.get("redcap_repeat_instrument")
    ]


def chunked(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    """Slices of at most ``size``: imports go in batches, not one request per record."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
