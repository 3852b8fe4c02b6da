"""Small REDCap projects and shortcuts shared by the record export and import tests.

The projects are a classic one (two forms, every field type the import checks, a checkbox with
the code -1), a longitudinal one with two events and one whose ``visit`` form repeats. ``put``
stores values as a loader would, ``export`` runs a record export, and ``run`` / ``refused`` run
an import that must pass or fail, at function level.
"""

from __future__ import annotations

import copy
from datetime import datetime

import pytest

from sandbox.redcap.errors import ApiError
from sandbox.redcap.importer import ImportResult, import_rows
from sandbox.redcap.model import Arm, Event, Field, Form, Project, StoredRecord
from sandbox.redcap.records import ExportRequest, export_rows

NOW = datetime(2024, 5, 1, 12, 0, 0)
BASE = ("", "", None)


def _fields() -> list[Field]:
    return [
        Field("record_id", "demographics", "text", "Record ID"),
        Field("intro", "demographics", "descriptive", "Welcome"),
        Field("name", "demographics", "text", "Name"),
        Field(
            "age",
            "demographics",
            "text",
            "Age",
            text_validation_type_or_show_slider_number="integer",
        ),
        Field(
            "dob",
            "demographics",
            "text",
            "DOB",
            text_validation_type_or_show_slider_number="date_ymd",
        ),
        Field(
            "email",
            "demographics",
            "text",
            "Email",
            text_validation_type_or_show_slider_number="email",
        ),
        Field(
            "sex",
            "demographics",
            "radio",
            "Sex",
            select_choices_or_calculations="1, Male | 2, Female",
        ),
        Field(
            "race",
            "demographics",
            "checkbox",
            "Race",
            select_choices_or_calculations="1, White | 2, Black | -1, Unknown",
        ),
        Field("consent", "demographics", "yesno", "Consent"),
        Field("bmi", "demographics", "calc", "BMI", select_choices_or_calculations="1+1"),
        Field("photo", "demographics", "file", "Photo"),
        Field(
            "visit_dt",
            "visit",
            "text",
            "Visit",
            text_validation_type_or_show_slider_number="datetime_ymd",
        ),
        Field(
            "visit_ts",
            "visit",
            "text",
            "Visit (s)",
            text_validation_type_or_show_slider_number="datetime_seconds_ymd",
        ),
        Field(
            "weight", "visit", "text", "Weight", text_validation_type_or_show_slider_number="number"
        ),
        Field(
            "color",
            "visit",
            "dropdown",
            "Color",
            select_choices_or_calculations="r, Red | g, Green",
        ),
        Field("score", "visit", "slider", "Score"),
        Field("ok", "visit", "truefalse", "OK"),
        Field("tm", "visit", "text", "Time", text_validation_type_or_show_slider_number="time"),
        Field(
            "phone", "visit", "text", "Phone", text_validation_type_or_show_slider_number="phone"
        ),
        Field("notes", "visit", "notes", "Notes"),
    ]


def classic_project() -> Project:
    """Two forms, every field type the import checks, a checkbox with the code -1."""
    forms = [Form("demographics", "Demographics"), Form("visit", "Visit")]
    return Project(project_id=1, title="Classic", fields=_fields(), forms=forms)


def longitudinal_project() -> Project:
    """Events baseline (both forms) and follow-up (visit only), one arm."""
    project = classic_project()
    project.title = "Longitudinal"
    project.arms = [Arm(1, "Arm 1")]
    project.events = [
        Event("baseline_arm_1", "Baseline", 1, 41),
        Event("followup_arm_1", "Follow-up", 1, 42),
    ]
    project.form_events = {
        "baseline_arm_1": ["demographics", "visit"],
        "followup_arm_1": ["visit"],
    }
    return project


def repeating_project() -> Project:
    """A classic project whose ``visit`` form repeats."""
    project = classic_project()
    project.repeating_forms = {("", "visit")}
    return project


def put(project: Project, record: str, slot: tuple[str, str, int | None], **data: str) -> None:
    """Store values directly, as a loader would (one change-log entry at NOW)."""
    stored = project.records.setdefault(record, StoredRecord(record_id=record))
    stored.slots.setdefault(slot, {project.record_id_field: record}).update(data)
    stored.changed_at.append(NOW)


def export(project: Project, **options: object) -> list[dict[str, str | int]]:
    return export_rows(project, ExportRequest(**options), NOW)  # type: ignore[arg-type]


def run(
    project: Project,
    rows: list[dict[str, object]],
    *,
    overwrite: bool = False,
    date_format: str = "YMD",
    now: datetime = NOW,
) -> ImportResult:
    return import_rows(project, rows, overwrite=overwrite, date_format=date_format, now=now)


def refused(project: Project, rows: list[dict[str, object]], **options: object) -> str:
    """The 400 message of an import that must fail and leave the project as it was."""
    before = copy.deepcopy(project.records)
    with pytest.raises(ApiError) as caught:
        run(project, rows, **options)  # type: ignore[arg-type]
    assert caught.value.status == 400
    assert project.records == before  # all or nothing
    return caught.value.message


def line(record: str, field: str, value: str, message: str) -> str:
    return f'"{record}","{field}","{value}","{message}"'


def slot(
    project: Project, record: str, where: tuple[str, str, int | None] = BASE
) -> dict[str, str]:
    return project.records[record].slots[where]
