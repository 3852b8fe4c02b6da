"""The demo project that ``make demo`` and the tests run the pipeline against.

A study's registration form, an ``interest_form`` survey the SMS links to, and redcap-relay's
``pipeline`` instrument (``redcap/pipeline_instrument.csv``, the file study teams upload), built
from the two data dictionaries the way REDCap would build it from an upload. The projects start
with **no records**: tests and the demo register participants themselves, so every record a run
sees is one it made.
"""

from __future__ import annotations

from pathlib import Path

from sandbox.redcap.dictionary import forms_of, load_dictionary, synthetic_id
from sandbox.redcap.model import Arm, Event, Project, Report

DEMO_DICTIONARY = Path(__file__).with_name("demo_dictionary.csv")
PIPELINE_DICTIONARY = Path(__file__).resolve().parents[2] / "redcap" / "pipeline_instrument.csv"

SURVEY_FORM = "interest_form"
SURVEY_TITLE = "Tell us about your interest"
FUNNEL_REPORT = "Pipeline funnel"
NEEDS_ATTENTION_REPORT = "Needs attention"
NEEDS_ATTENTION_LOGIC = (
    "[pipeline_status] = 'failed' or [pipeline_status] = 'needs_review' "
    "or [pipeline_status] = 'undelivered'"
)
ENROLLMENT_EVENT = "enrollment_arm_1"
FOLLOWUP_EVENT = "followup_arm_1"


def build_demo_project(project_id: int = 1) -> Project:
    """The classic (non-longitudinal) demo project, with its two saved reports and no records.

    Report ids are ``project_id * 1000 + 1`` and ``+ 2``; find them by title with
    :func:`find_report`.
    """
    fields = load_dictionary(DEMO_DICTIONARY) + load_dictionary(PIPELINE_DICTIONARY)
    project = Project(
        project_id=project_id,
        title="redcap-relay demo",
        fields=fields,
        forms=forms_of(fields),
        survey_email_field="email",
        record_autonumbering=True,
        purpose=0,  # REDCap's "Practice / Just for fun": a demonstration, not research
    )
    survey = project.form(SURVEY_FORM)
    if survey is None:
        raise ValueError(f"{DEMO_DICTIONARY}: the {SURVEY_FORM} form is missing")
    survey.survey_title = SURVEY_TITLE
    pipeline = [item.field_name for item in fields if item.field_name.startswith("pipeline_")]
    attention = [
        "pipeline_status",
        "pipeline_sms_attempts",
        "pipeline_delivery_status",
        "pipeline_error_code",
        "pipeline_error_message",
    ]
    for number, (title, columns, logic) in enumerate(
        [
            (FUNNEL_REPORT, pipeline, ""),
            (NEEDS_ATTENTION_REPORT, attention, NEEDS_ATTENTION_LOGIC),
        ],
        1,
    ):
        report_id = synthetic_id(project_id, number)
        project.reports[report_id] = Report(
            report_id=report_id,
            title=title,
            fields=[project.record_id_field, *columns],
            filter_logic=logic,
        )
    return project


def build_demo_longitudinal_project(project_id: int = 2) -> Project:
    """The demo project with two events: ``enrollment_arm_1`` (every form), ``followup_arm_1``.

    Follow-up has only the survey, so the same survey can be sent again per event.
    """
    project = build_demo_project(project_id)
    project.title = "redcap-relay demo (longitudinal)"
    project.arms = [Arm(num=1, name="Arm 1")]
    project.events = [
        Event(ENROLLMENT_EVENT, "Enrollment", 1, synthetic_id(project_id, 1)),
        Event(FOLLOWUP_EVENT, "Follow-up", 1, synthetic_id(project_id, 2), day_offset=30.0),
    ]
    project.form_events = {
        ENROLLMENT_EVENT: [form.name for form in project.forms],
        FOLLOWUP_EVENT: [SURVEY_FORM],
    }
    return project


def find_report(project: Project, title: str) -> Report:
    """The project's saved report called ``title``."""
    for report in project.reports.values():
        if report.title == title:
            return report
    raise KeyError(f"project {project.project_id} has no report {title!r}")
