"""The format layer around record export, import, delete and reports (REDCAP_API.md §2, §4, §5).

:mod:`sandbox.redcap.records` and :mod:`sandbox.redcap.importer` work on rows; this module turns
the POST parameters into their arguments (array forms, ``dateRangeBegin``/``End`` parsing) and
their results into REDCap's bodies: flat JSON/CSV/XML rows, and the import answers of the §4.2
table (count, ids or nothing, per ``returnFormat``).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Sequence
from datetime import datetime

from sandbox.httpserver import Response
from sandbox.redcap import render
from sandbox.redcap.errors import ApiError
from sandbox.redcap.importer import import_rows
from sandbox.redcap.model import Project, Report
from sandbox.redcap.params import ApiCall
from sandbox.redcap.records import ExportRequest, export_rows

Rows = list[dict[str, str | int]]
# With only dateRangeEnd, REDCap starts the range here (API/record/export.php).
RANGE_START = datetime(2004, 8, 1)
_CSV_DELIMITERS = {",": ",", "tab": "\t", "TAB": "\t", ";": ";", "|": "|", "^": "^"}
_PSEUDO_LABELS = {
    "redcap_event_name": "Event Name",
    "redcap_repeat_instrument": "Repeat Instrument",
    "redcap_repeat_instance": "Repeat Instance",
    "redcap_data_access_group": "Data Access Group",
    "redcap_survey_identifier": "Survey Identifier",
}
_TAG = re.compile(r"<[^>]*>")
_INDEX = re.compile(r"^(0|-?[1-9]\d*)$")


def _not_served(what: str) -> ApiError:
    return ApiError(501, f"The REDCap simulator does not serve {what}.")


# -- export -----------------------------------------------------------------------------------
def export_records(call: ApiCall) -> Response:
    """Flat record export (§2): parameters in, rows out in ``format``."""
    if call.text("type").lower() == "eav":
        raise _not_served("type=eav record exports")
    if call.format == "odm":
        raise _not_served("format=odm record exports")
    project = call.project
    begin, end = date_range(call)
    request = ExportRequest(
        records=[name.replace("'", "").strip() for name in call.array("records")],
        fields=_names(call, "fields"),
        forms=_names(call, "forms", known=[form.name for form in project.forms]),
        events=_names(call, "events", known=[event.unique_name for event in project.events]),
        raw_or_label="label" if call.text("rawOrLabel") == "label" else "raw",
        filter_logic=call.text("filterLogic"),
        date_begin=begin,
        date_end=end,
        export_blank_for_gray=call.flag("exportBlankForGrayFormStatus"),
        export_checkbox_label=call.flag("exportCheckboxLabel"),
    )
    return render_rows(call, export_rows(project, request, call.now))


def _names(call: ApiCall, name: str, known: Sequence[str] | None = None) -> list[str]:
    """An array of names as REDCap reads it.

    Array syntax is passed on untouched (the exporter validates it). A comma-separated string
    is split and trimmed; REDCap never validates forms or events given that way, so unknown
    ones simply drop out.
    """
    if call.is_list(name):
        return call.array(name)
    parts = [part.strip() for part in call.array(name)]
    if known is None:
        return parts
    return [part for part in parts if part in known]


def date_range(call: ApiCall) -> tuple[datetime | None, datetime | None]:
    """``dateRangeBegin``/``dateRangeEnd`` as inclusive server-local bounds (§2.1).

    REDCap compares log times at whole seconds, so the end bound covers its whole second.
    A value REDCap cannot read counts as absent: the range then runs from 2004-08-01, or to now.
    """
    begin_text, end_text = call.text("dateRangeBegin"), call.text("dateRangeEnd")
    if begin_text == "" and end_text == "":
        return None, None
    begin = parse_range_bound(begin_text, end=False) if begin_text else None
    end = parse_range_bound(end_text, end=True) if end_text else None
    begin = begin or RANGE_START
    end = end or call.now.replace(microsecond=0)
    return begin, end.replace(microsecond=999999)


def parse_range_bound(text: str, *, end: bool) -> datetime | None:
    """REDCap's ``reformatDate``: ``Y-M-D`` or ``Y/M/D``, then optional ``H:M[:S]``."""
    nodes = re.split(r"[\sT]+", text)
    clock = ["23", "59", "59"] if end else ["0", "0", "0"]
    if len(nodes) == 2:
        times = re.split(r"[:.]", nodes[1])
        if len(times) == 3:
            clock = times
        elif len(times) == 2:
            clock = [*times, "0"]
    if not re.match(r"^\d+[-/]\d+[-/]\d+$", nodes[0]):
        return None
    year, month, day = re.split(r"[-/]", nodes[0])
    try:
        hour, minute, second = (int(part) for part in clock)
        return datetime(int(year), int(month), int(day), hour, minute, second)
    except ValueError:
        return None


def render_rows(call: ApiCall, rows: Rows) -> Response:
    """Flat rows as REDCap writes them: JSON array, fputcsv CSV, or ``<records>`` XML."""
    if call.format == "json":
        return render.ok(render.php_json(rows), "json")
    if call.format == "csv":
        delimiter = _CSV_DELIMITERS.get(call.text("csvDelimiter"), ",")
        if not rows:
            # REDCap writes an empty header line when nothing matched (PyCap guards for it).
            return render.ok("\n", "csv")
        header = list(rows[0])
        shown = header_labels(call.project, header) if _label_headers(call) else header
        body = render.csv_line(shown, delimiter) + "".join(
            render.csv_line((row.get(col, "") for col in header), delimiter) for row in rows
        )
        return render.ok(body, "csv")
    return render.ok(render.xml_items("records", rows, tail=""), "xml")


def _label_headers(call: ApiCall) -> bool:
    return call.text("rawOrLabelHeaders") == "label"


def header_labels(project: Project, columns: Sequence[str]) -> list[str]:
    """CSV headers for ``rawOrLabelHeaders=label``: field labels, tags stripped."""
    statuses = {form.complete_field for form in project.forms}
    labels: list[str] = []
    for column in columns:
        base, _, code = column.partition("___")
        item = project.field(base)
        if column in _PSEUDO_LABELS:
            labels.append(_PSEUDO_LABELS[column])
        elif column in statuses:
            labels.append("Complete?")
        elif item is None:
            labels.append(column)
        elif code:
            choice = next((label for c, label in item.choices() if c.lower() == code), "")
            choice = choice.replace("'", "").replace('"', "")
            labels.append(f"{_plain(item.field_label)} (choice={choice})")
        else:
            labels.append(_plain(item.field_label))
    return labels


def _plain(label: str) -> str:
    text = _TAG.sub("", label).replace('"', "'")
    return text.replace("\r\n", "  ").replace("\n", "  ").replace("\r", "")


# -- report -----------------------------------------------------------------------------------
def export_report(call: ApiCall) -> Response:
    """A saved report's rows: its fields and filter, exported like records (§5 ``report``)."""
    if call.format == "odm":
        raise _not_served("format=odm reports")
    report = _report(call)
    request = ExportRequest(
        fields=list(report.fields),
        filter_logic=report.filter_logic,
        raw_or_label="label" if call.text("rawOrLabel") == "label" else "raw",
        export_checkbox_label=call.flag("exportCheckboxLabel"),
    )
    return render_rows(call, export_rows(call.project, request, call.now))


def _report(call: ApiCall) -> Report:
    text = call.text("report_id")
    report = call.project.reports.get(int(text)) if _INDEX.match(text) else None
    if report is None:
        shown = (
            text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&#039;")
        )  # fmt: skip
        raise ApiError(
            403,
            f"The API request cannot complete because report_id={shown} does not belong to "
            "this project.",
        )
    return report


# -- import -----------------------------------------------------------------------------------
def import_records(call: ApiCall) -> Response:
    """Flat record import (§4): parse ``data``, store it, answer per ``returnContent``."""
    project = call.project
    if project.in_production == 2:
        raise ApiError(
            403, "Data may not be imported because the project is in Analysis/Cleanup status."
        )
    if call.text("type").lower() == "eav":
        raise _not_served("type=eav record imports")
    if call.flag("backgroundProcess"):
        raise _not_served("backgroundProcess imports")
    force_auto = call.flag("forceAutoNumber")
    if force_auto and project.record_autonumbering:
        raise _not_served("forceAutoNumber imports")
    date_format = call.text("dateFormat")
    result = import_rows(
        project,
        _payload_rows(call),
        overwrite=call.text("overwriteBehavior").lower() == "overwrite",
        date_format=date_format if date_format in ("MDY", "DMY") else "YMD",
        now=call.now,
    )
    return import_answer(call, result.record_ids, force_auto=force_auto)


def _payload_rows(call: ApiCall) -> list[dict[str, object]]:
    data = call.text("data")
    if call.format == "json":
        try:
            decoded = json.loads(data)
        except ValueError:
            decoded = None
        if isinstance(decoded, list) and all(isinstance(row, dict) for row in decoded):
            return decoded
        raise ApiError(
            400,
            "The data being imported is not formatted correctly. PHP error from JSON decoder: "
            "No error. The JSON must be in an array, as in [{ ... }].",
        )
    if call.format == "csv":
        return csv_rows(data, _CSV_DELIMITERS.get(call.text("csvDelimiter"), ","))
    raise _not_served(f"format={call.format} record imports")


def csv_rows(text: str, delimiter: str = ",") -> list[dict[str, object]]:
    """A CSV payload as row dicts keyed by the header line; blank lines skipped."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff")), delimiter=delimiter)
    lines = [line for line in reader if any(cell.strip() for cell in line)]
    if not lines:
        return []
    header = [name.strip() for name in lines[0]]
    return [
        dict(zip(header, [*line, *[""] * (len(header) - len(line))], strict=False))
        for line in lines[1:]
    ]


def import_answer(call: ApiCall, ids: list[str], *, force_auto: bool) -> Response:
    """The §4.2 table: count, ids, auto_ids or nothing, shaped by ``returnFormat``."""
    wanted = call.text("returnContent")
    if wanted.lower() not in ("count", "ids", "auto_ids", "nothing"):
        wanted = "count"
    if wanted == "auto_ids" and not force_auto:
        wanted = "count"
    fmt = call.return_format
    if wanted == "count":
        body = _count_body(len(ids), fmt)
    elif wanted == "ids":
        body = _ids_body([(name,) for name in ids], ("id",), fmt)
    elif wanted == "auto_ids":
        # Without auto-numbering every record keeps its name: "new,original" is "name,name".
        body = _ids_body([(name, name) for name in ids], ("id", "original_id"), fmt)
    else:
        # "nothing", and REDCap's case-sensitive misses such as "IDS", answer an empty body.
        body = ""
    return render.ok(body, fmt)


def _count_body(count: int, fmt: str) -> str:
    if fmt == "json":
        return f'{{"count": {count}}}'  # built by hand in REDCap, hence the space
    if fmt == "csv":
        return str(count)
    return f"{render.XML_DECLARATION}<count>{count}</count>"


def _ids_body(entries: list[tuple[str, ...]], header: tuple[str, ...], fmt: str) -> str:
    if fmt == "json":
        return render.php_json([",".join(entry) for entry in entries])
    if fmt == "csv":
        return "".join(render.csv_line(line) for line in [header, *entries]).strip()
    ids = "".join(f"<id>{','.join(entry)}</id>" for entry in entries)
    return f"{render.XML_DECLARATION}<ids>{ids}</ids>"
