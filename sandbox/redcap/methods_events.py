"""The longitudinal design methods: events, arms, form-event mapping and repeating setup.

Each answers in the requested format as REDCap 15.7.6 does (REDCAP_API.md §5), and classic
projects get REDCap's 400 errors, which PyCap's ``is_longitudinal`` depends on (§7.2).
"""

from __future__ import annotations

import re

from sandbox.httpserver import Response
from sandbox.redcap import render
from sandbox.redcap.errors import ApiError
from sandbox.redcap.model import Project
from sandbox.redcap.params import ApiCall

_INTEGER = re.compile(r"^-?\d+$")


def _arms_param(call: ApiCall) -> set[int] | None:
    """The ``arms`` filter as arm numbers; ``None`` when absent (all arms)."""
    values = [value.strip() for value in call.array("arms") if value.strip() != ""]
    if not values:
        return None
    return {int(value) for value in values if _INTEGER.match(value)}


def export_events(call: ApiCall) -> Response:
    """Events in project order, optionally by arm (§5 ``event``; scheduling off)."""
    arms = _arms_param(_longitudinal(call, "events"))
    rows: list[dict[str, str | int]] = [
        {
            "event_name": event.name,
            "arm_num": event.arm_num,
            "unique_event_name": event.unique_name,
            "custom_event_label": event.custom_label,
            "event_id": event.event_id,
        }
        for event in call.project.events
        if arms is None or event.arm_num in arms
    ]
    return _rows(call, "events", rows, list(rows[0]) if rows else [])


def export_arms(call: ApiCall) -> Response:
    """Arm numbers and names (§5 ``arm``)."""
    arms = _arms_param(_longitudinal(call, "arms"))
    rows: list[dict[str, str | int]] = [
        {"arm_num": arm.num, "name": arm.name}
        for arm in call.project.arms
        if arms is None or arm.num in arms
    ]
    return _rows(call, "arms", rows, ["arm_num", "name"], sanitize=True)


def _longitudinal(call: ApiCall, what: str) -> ApiCall:
    """``call``, if its project is longitudinal; REDCap's refusal on a classic project."""
    if not call.project.is_longitudinal:
        raise ApiError(400, f"You cannot export {what} for classic projects")
    return call


def _rows(
    call: ApiCall,
    tag: str,
    rows: list[dict[str, str | int]],
    header: list[str],
    *,
    sanitize: bool = False,
) -> Response:
    """``rows`` in the call's format: JSON, CSV (nothing at all for no rows) or XML items."""
    return render.by_format(
        call.format,
        lambda: render.php_json(rows),
        lambda: render.trimmed_csv(header, rows, sanitize=sanitize) if rows else "",
        lambda: render.xml_items(tag, rows),
    )


def export_form_event_mapping(call: ApiCall) -> Response:
    """Forms designated per event; an error on classic projects, which PyCap relies on."""
    project = _longitudinal(call, "form/event mappings").project
    arms = _arms_param(call)
    rows: list[dict[str, str | int]] = []
    for arm in project.arms:
        if arms is not None and arm.num not in arms:
            continue
        for event in project.events:
            if event.arm_num != arm.num:
                continue
            rows.extend(
                {"arm_num": arm.num, "unique_event_name": event.unique_name, "form": form}
                for form in project.form_events.get(event.unique_name, [])
            )
    header = ["arm_num", "unique_event_name", "form"]
    blank = not rows
    if blank:  # REDCap answers an empty mapping with one all-blank row
        rows.append({"arm_num": "", "unique_event_name": "", "form": ""})
    return render.by_format(
        call.format,
        lambda: render.php_json(rows),
        lambda: render.trimmed_csv(header, [] if blank else rows),
        lambda: (
            f"{render.XML_DECLARATION}\n<items>\n"
            + "".join(
                f"<item><arm_num>{row['arm_num']}</arm_num><unique_event_name>"
                f"{row['unique_event_name']}</unique_event_name><form>{row['form']}</form>"
                "</item>\n"
                for row in rows
            )
            + "</items>\n"
        ),
    )


def export_repeating(call: ApiCall) -> Response:
    """Repeating instruments and events (§5 ``repeatingFormsEvents``)."""
    project = call.project
    if not project.has_repeating:
        raise ApiError(
            400,
            "You cannot export repeating instruments and events because the project does "
            "not contain any repeating instruments and events",
        )
    rows = _repeating_rows(project)
    header = ["form_name", "custom_form_label"]
    if project.is_longitudinal:
        header.insert(0, "event_name")

    def csv_body() -> str:
        lines = [",".join(header) + "\n"]
        for row in rows:
            label = str(row["custom_form_label"]).replace('"', '""')
            cells = [str(row[key]) for key in header[:-1]] + [label]
            lines.append(",".join(cells) + "\n")
        return "".join(lines)

    def xml_body() -> str:
        items = []
        for row in rows:
            inner = ""
            for key, value in row.items():
                shown = f"<![CDATA[{value}]]>" if key == "custom_form_label" else value
                inner += f"<{key}>{shown if value != '' else ''}</{key}>"
            items.append(f"<item>{inner}</item>\n")
        return (
            f"{render.XML_DECLARATION}\n<repeatingFormsEvents>\n"
            + "".join(items)
            + ("</repeatingFormsEvents>\n")
        )

    return render.by_format(call.format, lambda: render.php_json(rows), csv_body, xml_body)


def _repeating_rows(project: Project) -> list[dict[str, str]]:
    labels = project.repeating_labels
    if not project.is_longitudinal:
        return [
            {"form_name": form.name, "custom_form_label": labels.get(("", form.name), "")}
            for form in project.forms
            if project.is_repeating_form("", form.name)
        ]
    rows: list[dict[str, str]] = []
    for event in project.events:
        name = event.unique_name
        if name not in project.form_events:
            continue
        if name in project.repeating_events:
            rows.append(
                {
                    "event_name": name,
                    "form_name": "",
                    "custom_form_label": labels.get((name, ""), ""),
                }
            )
        rows.extend(
            {
                "event_name": name,
                "form_name": form,
                "custom_form_label": labels.get((name, form), ""),
            }
            for form in project.forms_in_event(name)
            if project.is_repeating_form(name, form)
        )
    return rows
