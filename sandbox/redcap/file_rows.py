"""Read the files a study team downloads from REDCap, with one error shape for all of them.

:func:`read_csv_rows` gives each CSV row as a :class:`Row` that knows where it is, so a loader
can say where a problem is; :func:`file_error` is the ``ValueError`` every loader raises for a
bad file (:mod:`dictionary`, :mod:`record_files`, :mod:`odm`).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Row:
    """One row of a file: where it is (``line 4``, ``item 2``) and its values by column."""

    where: str
    values: dict[str, str]


def file_error(path: Path, where: str, problem: str) -> ValueError:
    """The one error a bad file raises: ``<file>: <where>: <problem>``."""
    return ValueError(f"{path}: {where}: {problem}" if where else f"{path}: {problem}")


def read_csv_rows(path: Path) -> tuple[list[str], list[Row]]:
    """The header and the non-empty rows of a UTF-8 CSV file (a BOM is allowed)."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            header = [column.strip() for column in next(reader, [])]
            rows: list[Row] = []
            start = reader.line_num + 1
            for cells in reader:
                where, start = f"line {start}", reader.line_num + 1
                if not any(cell.strip() for cell in cells):
                    continue  # spreadsheet programs leave blank lines at the end
                if len(cells) != len(header):
                    problem = f"{len(cells)} values, but the header has {len(header)} columns"
                    raise file_error(path, where, problem)
                rows.append(Row(where, dict(zip(header, cells, strict=True))))
    except UnicodeDecodeError as error:
        raise file_error(path, "", f"not UTF-8 text (byte {error.start})") from None
    except csv.Error as error:
        raise file_error(path, "", f"not valid CSV ({error})") from None
    except OSError as error:
        raise file_error(path, "", f"cannot be read ({error.strerror})") from None
    if not header or not any(header):
        raise file_error(path, "", "the file is empty")
    twice = [column for column in dict.fromkeys(header) if header.count(column) > 1]
    if twice:
        raise file_error(path, f'header, column "{twice[0]}"', "this column appears twice")
    return header, rows
