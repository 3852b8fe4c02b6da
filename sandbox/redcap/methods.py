"""The project methods: version, project info, metadata, instruments, export field names and
the next record name.

Each function takes an :class:`ApiCall` and returns REDCap 15.7.6's answer in the requested
format (REDCAP_API.md §5), with each method's own quirks: metadata JSON items separated by
``,\\n``, a hand-written instrument CSV, CDATA in XML, integer-looking project values as ints.
"""

from __future__ import annotations

import re

from sandbox.httpserver import Response
from sandbox.redcap import render
from sandbox.redcap.errors import ApiError
from sandbox.redcap.model import METADATA_KEYS, Project, checkbox_code_column, parse_choices
from sandbox.redcap.params import ApiCall

_INTEGER = re.compile(r"^-?\d+$")


# -- version, project, generateNextRecordName -----------------------------------------------
def export_version(call: ApiCall) -> Response:
    """Plain text, always as text/csv (§5 ``version``)."""
    return render.ok(call.version, "csv")


def project_info(project: Project) -> dict[str, str | int]:
    """``content=project`` values, integer-looking ones as ints (§5 ``project``)."""
    values: dict[str, str | int] = {
        "project_id": project.project_id,
        "project_title": project.title,
        "creation_time": project.creation_time,
        "production_time": project.production_time,
        "in_production": project.in_production,
        "project_language": project.project_language,
        "purpose": project.purpose,
        "purpose_other": project.purpose_other,
        "project_notes": project.project_notes,
        "custom_record_label": project.custom_record_label,
        "secondary_unique_field": project.secondary_unique_field,
        "is_longitudinal": int(project.is_longitudinal),
        "has_repeating_instruments_or_events": int(project.has_repeating),
        "surveys_enabled": int(project.surveys_enabled),
        "scheduling_enabled": 0,
        "record_autonumbering_enabled": int(project.record_autonumbering),
        "randomization_enabled": 0,
        "ddp_enabled": 0,
        "project_irb_number": "",
        "project_grant_number": "",
        "project_pi_firstname": "",
        "project_pi_lastname": "",
        "display_today_now_button": 1,
        "missing_data_codes": project.missing_data_codes,
        "external_modules": "",
        "bypass_branching_erase_field_prompt": 0,
    }
    # REDCap casts every value that looks like an integer (``isinteger``).
    return {
        key: int(value) if isinstance(value, str) and _INTEGER.match(value) else value
        for key, value in values.items()
    }


def export_project(call: ApiCall) -> Response:
    """One object, not a list (§5 ``project``)."""
    info = project_info(call.project)
    return render.by_format(
        call.format,
        lambda: render.php_json(info),
        lambda: render.csv_line(info.keys()) + render.csv_line(info.values()),
        lambda: (
            f"{render.XML_DECLARATION}\n<items>\n"
            + "".join(f"<{key}>{render.cdata(value)}</{key}>" for key, value in info.items())
            + "\n</items>\n"
        ),
    )


def generate_next_record_name(call: ApiCall) -> Response:
    """One more than the largest all-digit record name, else 1 (``DataEntry::getAutoId``)."""
    with call.project.lock:
        numbers = [int(name) for name in call.project.records if name.isdigit()]
    return render.ok(str(max(numbers) + 1 if numbers else 1), call.return_format)


# -- metadata, instruments, exportFieldNames ------------------------------------------------
def export_metadata(call: ApiCall) -> Response:
    """Data dictionary rows in dictionary order, filtered by ``fields``/``forms`` (§5)."""
    project = call.project
    wanted = set(call.array("fields"))
    forms = set(call.array("forms"))
    wanted.update(f.field_name for f in project.fields if f.form_name in forms)
    rows: list[dict[str, str]] = []
    for item in project.fields:
        if wanted and item.field_name not in wanted:
            continue
        row = item.metadata_row()
        if item.field_type == "slider" and row["custom_alignment"] == "":
            row["custom_alignment"] = "RV"  # REDCap spells out its default for sliders
        rows.append(row)
    header = list(METADATA_KEYS)

    def csv_body() -> str:
        return render.csv_table(header, rows).replace("\r\n", "\n")

    if call.format == "odm":  # getDataDictionary's default branch is CSV
        return render.ok(csv_body(), "odm")
    return render.by_format(
        call.format,
        lambda: "[" + ",\n".join(render.php_json(row) for row in rows) + "]",
        csv_body,
        lambda: render.xml_items("records", rows),
    )


def _doubled(text: str) -> str:
    return text.replace('"', '""')


def export_instruments(call: ApiCall) -> Response:
    """Instrument names and labels in project order (§5 ``instrument``)."""
    rows = [
        {"instrument_name": form.name, "instrument_label": form.label}
        for form in call.project.forms
    ]
    return render.by_format(
        call.format,
        lambda: render.php_json(rows),
        # REDCap writes this CSV by hand: label always quoted, name never.
        lambda: (
            "instrument_name,instrument_label\n"
            + "".join(
                f'{row["instrument_name"]},"{_doubled(row["instrument_label"])}"\n' for row in rows
            )
        ),
        lambda: render.xml_items("instruments", rows),
    )


def export_field_names(call: ApiCall) -> Response:
    """Export column names per field, checkbox choices one by one (§5 ``exportFieldNames``)."""
    project = call.project
    field = call.text("field")
    names = field_name_rows(project, field)
    rows = [
        {"original_field_name": name, "choice_value": choice, "export_field_name": export}
        for name, choice, export in names
    ]
    header = ["original_field_name", "choice_value", "export_field_name"]
    return render.by_format(
        call.format,
        lambda: render.php_json(rows),
        lambda: render.csv_table(header, rows),
        lambda: (
            f"{render.XML_DECLARATION}\n<fields>\n"
            + "".join(
                "<field>"
                + "".join(f"<{key}><![CDATA[{value}]]></{key}>" for key, value in row.items())
                + "</field>\n"
                for row in rows
            )
            + "</fields>"
        ),
    )


def field_name_rows(project: Project, field: str) -> list[tuple[str, str, str]]:
    """(original, choice, export name) triples, as ``REDCap::getExportFieldNames``."""
    complete = {form.complete_field: form.name for form in project.forms}
    known = {item.field_name for item in project.fields} | set(complete)
    if field != "" and field not in known:
        raise ApiError(400, "Invalid field")
    missing = parse_choices(project.missing_data_codes)
    triples: list[tuple[str, str, str]] = []
    for form in project.forms:
        for item in project.form_fields(form.name):
            if field not in ("", item.field_name):
                continue
            if item.field_type == "checkbox":
                choices = item.choices()
                if "@NOMISSING" not in item.field_annotation:
                    choices += missing
                for code, _ in choices:
                    triples.append(
                        (item.field_name, code, checkbox_code_column(item.field_name, code))
                    )
            elif item.field_type not in ("file", "descriptive"):
                triples.append((item.field_name, "", item.field_name))
        if field in ("", form.complete_field):
            triples.append((form.complete_field, "", form.complete_field))
    if not triples:  # a lone file or descriptive field: REDCap's list is empty, i.e. false
        raise ApiError(400, "An unknown error occurred")
    return triples
