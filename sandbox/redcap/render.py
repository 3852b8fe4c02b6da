"""How REDCap (PHP) writes its answers: JSON, CSV, XML bodies, content types and error shapes.

REDCap builds its bodies with PHP's ``json_encode`` and ``fputcsv`` and by string concatenation
for XML (REDCAP_API.md §1.4, §1.5, §2.2). The helpers here reproduce those byte for byte, so that
clients parse the simulator's answers exactly as they would parse a real server's.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence

from sandbox.httpserver import Response

Scalar = str | int
Row = Mapping[str, Scalar]

XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8" ?>'
# The Content-Type PHP sends when a script just ``print``s (surveyLink, the 429 ban page).
PHP_DEFAULT_TYPE = "text/html; charset=UTF-8"
_CONTENT_TYPES = {"json": "application/json", "csv": "text/csv", "xml": "text/xml"}
# fputcsv encloses a field holding any of these (besides the delimiter).
_CSV_SPECIALS = ('"', "\n", "\r", "\t", " ")
# arrayToCsv prefixes these with a tab against CSV injection.
_CSV_INJECTION = ("=", "-", "+", "@")


def content_type(fmt: str) -> str:
    """``RestUtility::sendResponse``'s Content-Type for a format (§1.4)."""
    return f"{_CONTENT_TYPES.get(fmt, '')}; charset=utf-8"


def php_json(value: object) -> str:
    """PHP ``json_encode``: compact, non-ASCII as ``\\uXXXX``, and ``/`` escaped as ``\\/``."""
    # A "/" can only occur inside JSON strings, so replacing it in the text is safe.
    return json.dumps(value, ensure_ascii=True, separators=(",", ":")).replace("/", "\\/")


def csv_line(values: Iterable[object], delimiter: str = ",") -> str:
    """One PHP ``fputcsv`` line (enclosure ``"``, no escape character, ``\\n`` ending)."""
    cells: list[str] = []
    for value in values:
        text = str(value)
        if delimiter in text or any(special in text for special in _CSV_SPECIALS):
            text = '"' + text.replace('"', '""') + '"'
        cells.append(text)
    return delimiter.join(cells) + "\n"


def csv_table(header: Sequence[str], rows: Iterable[Row], delimiter: str = ",") -> str:
    """A header line and one line per row, each row read in the header's column order."""
    lines = [csv_line(header, delimiter)]
    lines.extend(csv_line((row.get(col, "") for col in header), delimiter) for row in rows)
    return "".join(lines)


def trimmed_csv(header: Sequence[str], rows: Sequence[Row], *, sanitize: bool = False) -> str:
    """CSV with the surrounding whitespace trimmed, as ``arrayToCsv`` and friends return it."""
    if sanitize:
        rows = [{key: _defuse(value) for key, value in row.items()} for row in rows]
    return csv_table(header, rows).strip()


def _defuse(value: Scalar) -> Scalar:
    if isinstance(value, str) and value.startswith(_CSV_INJECTION):
        return "\t" + value
    return value


def cdata(value: object) -> str:
    """A value as REDCap wraps it in XML: CDATA when non-blank, nothing when blank."""
    text = str(value)
    if text == "":
        return ""
    # CDATA cannot hold "]]>", so REDCap splits it across two sections.
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def xml_item(row: Row, tag: str = "item") -> str:
    """``<item><name><![CDATA[value]]></name>...</item>`` without a line break."""
    inner = "".join(f"<{key}>{cdata(value)}</{key}>" for key, value in row.items())
    return f"<{tag}>{inner}</{tag}>"


def xml_items(root: str, rows: Iterable[Row], *, tag: str = "item", tail: str = "\n") -> str:
    """The usual REDCap list document: declaration, ``<root>``, one item per line."""
    body = "".join(xml_item(row, tag) + "\n" for row in rows)
    return f"{XML_DECLARATION}\n<{root}>\n{body}</{root}>{tail}"


def by_format(
    fmt: str,
    json_body: Callable[[], str],
    csv_body: Callable[[], str],
    xml_body: Callable[[], str],
) -> Response:
    """Answer in ``fmt``; ``odm`` gets the empty body PHP falls through to."""
    makers = {"json": json_body, "csv": csv_body, "xml": xml_body}
    maker = makers.get(fmt)
    return ok(maker() if maker else "", fmt)


def ok(body: str, fmt: str) -> Response:
    """A 200 answer with ``sendResponse``'s Content-Type for ``fmt``."""
    return Response(200, body, content_type(fmt))


def error_body(message: str, return_format: str) -> str:
    """``sendResponse``'s error body for ``returnFormat`` (REDCAP_API.md §1.4)."""
    if return_format == "json":
        return php_json({"error": message})
    if return_format == "csv":
        return f"ERROR: {message}"
    # REDCap does not escape the message inside the XML; neither do we.
    return f"{XML_DECLARATION}<hash><error>{message}</error></hash>"


def error(status: int, message: str, return_format: str) -> Response:
    """An error answer shaped by ``returnFormat``, with the matching Content-Type."""
    return Response(status, error_body(message, return_format), content_type(return_format))
