"""The REDCap simulator's project model: metadata, events, surveys, and the stored data.

A :class:`Project` is what the loaders (``odm.py``, ``dictionary.py``, ``demo.py``) build and
what the API layer serves. Data is stored the way REDCap keeps it: per record, per *slot*
(event, repeating instrument, instance), a mapping of export column -> non-blank value.
Checkbox choices are stored under their export column (``race___1`` = ``"1"``).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from datetime import datetime

# The 18 raw metadata keys, in REDCap's order (REDCAP_API.md §5 "metadata").
METADATA_KEYS: tuple[str, ...] = (
    "field_name",
    "form_name",
    "section_header",
    "field_type",
    "field_label",
    "select_choices_or_calculations",
    "field_note",
    "text_validation_type_or_show_slider_number",
    "text_validation_min",
    "text_validation_max",
    "identifier",
    "branching_logic",
    "required_field",
    "custom_alignment",
    "question_number",
    "matrix_group_name",
    "matrix_ranking",
    "field_annotation",
)

CHOICE_TYPES = frozenset({"dropdown", "radio", "checkbox"})
YESNO_CHOICES = (("1", "Yes"), ("0", "No"))
TRUEFALSE_CHOICES = (("1", "True"), ("0", "False"))
# Field types that hold no data of their own in record import/export.
NO_DATA_TYPES = frozenset({"descriptive"})

# (event unique name or "" on classic projects, repeating form name or "", instance or None)
Slot = tuple[str, str, int | None]


def checkbox_code_column(field_name: str, code: str) -> str:
    """``field___code`` with the code formatted as REDCap does (REDCAP_API.md §2.2)."""
    formatted = code.replace("-", "_").replace(".", "_").lower()
    formatted = re.sub(r"[^a-z0-9_]", "", formatted)
    return f"{field_name}___{formatted}"


def parse_choices(text: str) -> list[tuple[str, str]]:
    """``"1, Yes | 0, No"`` -> ``[("1", "Yes"), ("0", "No")]`` (labels may contain commas)."""
    choices: list[tuple[str, str]] = []
    for part in text.split("|"):
        part = part.strip()
        if not part:
            continue
        code, _, label = part.partition(",")
        choices.append((code.strip(), label.strip()))
    return choices


@dataclass
class Field:
    """One data dictionary row, keyed by REDCap's raw metadata names."""

    field_name: str
    form_name: str
    field_type: str
    field_label: str = ""
    section_header: str = ""
    select_choices_or_calculations: str = ""
    field_note: str = ""
    text_validation_type_or_show_slider_number: str = ""
    text_validation_min: str = ""
    text_validation_max: str = ""
    identifier: str = ""
    branching_logic: str = ""
    required_field: str = ""
    custom_alignment: str = ""
    question_number: str = ""
    matrix_group_name: str = ""
    matrix_ranking: str = ""
    field_annotation: str = ""

    @property
    def name(self) -> str:
        return self.field_name

    @property
    def validation(self) -> str:
        return self.text_validation_type_or_show_slider_number

    def choices(self) -> list[tuple[str, str]]:
        """Codes and labels for dropdown, radio, checkbox, yesno and truefalse fields."""
        if self.field_type == "yesno":
            return list(YESNO_CHOICES)
        if self.field_type == "truefalse":
            return list(TRUEFALSE_CHOICES)
        if self.field_type in CHOICE_TYPES:
            return parse_choices(self.select_choices_or_calculations)
        return []

    def export_columns(self) -> list[str]:
        """The columns this field exports as: ``name``, or one per checkbox choice."""
        if self.field_type in NO_DATA_TYPES:
            return []
        if self.field_type == "checkbox":
            return [checkbox_code_column(self.field_name, code) for code, _ in self.choices()]
        return [self.field_name]

    def metadata_row(self) -> dict[str, str]:
        return {key: str(getattr(self, key)) for key in METADATA_KEYS}


@dataclass
class Form:
    name: str
    label: str
    survey_title: str | None = None  # set when the instrument is enabled as a survey

    @property
    def is_survey(self) -> bool:
        return self.survey_title is not None

    @property
    def complete_field(self) -> str:
        return f"{self.name}_complete"


@dataclass
class Arm:
    num: int
    name: str


@dataclass
class Event:
    unique_name: str
    name: str
    arm_num: int
    event_id: int
    custom_label: str = ""
    day_offset: float = 0.0
    offset_min: float = 0.0
    offset_max: float = 0.0


@dataclass
class Report:
    """A saved report: its columns and its filter (REDCap logic), served by ``content=report``."""

    report_id: int
    title: str
    fields: list[str]
    filter_logic: str = ""


@dataclass
class StoredRecord:
    """One record's data: slot -> {export column: non-blank value}, plus its change log."""

    record_id: str
    slots: dict[Slot, dict[str, str]] = field(default_factory=dict)
    changed_at: list[datetime] = field(default_factory=list)  # server-local naive times


class FilterWork:
    """Rows REDCap evaluated, per record export: what the project's server spent on a request.

    REDCap selects the records first (``records``, then ``dateRangeBegin``/``End`` from its log,
    both by SQL) and then reads and tests ``filterLogic`` on every row of those records, one by
    one in PHP; that per-row work is what grows with a project. Each export adds one entry to
    :attr:`per_request` (the rows it evaluated, or read when it has no filter), so a benchmark or
    a test can say what its polling cost REDCap. Thread-safe; :meth:`reset` starts over.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.per_request: list[int] = []

    def add(self, rows: int) -> None:
        with self._lock:
            self.per_request.append(rows)

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self.per_request)

    def reset(self) -> None:
        with self._lock:
            self.per_request = []


@dataclass
class Project:
    """A whole simulated REDCap project. ``lock`` guards ``records`` across request threads."""

    project_id: int
    title: str
    fields: list[Field]
    forms: list[Form]
    arms: list[Arm] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)  # empty: classic project
    form_events: dict[str, list[str]] = field(default_factory=dict)  # event -> forms, in order
    repeating_forms: set[tuple[str, str]] = field(default_factory=set)  # (event or "", form)
    repeating_events: set[str] = field(default_factory=set)
    repeating_labels: dict[tuple[str, str], str] = field(default_factory=dict)
    records: dict[str, StoredRecord] = field(default_factory=dict)
    reports: dict[int, Report] = field(default_factory=dict)
    # Survey hashes: (record, form, event, instance) -> 16-character hash, stable once issued.
    survey_hashes: dict[tuple[str, str, str, int], str] = field(default_factory=dict)
    # The values of survey_hashes, so issuing a new one checks uniqueness in constant time.
    issued_hashes: set[str] = field(default_factory=set, repr=False)
    survey_email_field: str = ""
    record_autonumbering: bool = False
    in_production: int = 0
    purpose: int = 0
    purpose_other: str = ""
    project_notes: str = ""
    missing_data_codes: str = ""
    secondary_unique_field: str = ""
    custom_record_label: str = ""
    creation_time: str = "2024-01-01 00:00:00"
    production_time: str = ""
    project_language: str = "English"
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    filter_work: FilterWork = field(default_factory=FilterWork, repr=False)

    # -- metadata lookups ------------------------------------------------------------------
    @property
    def record_id_field(self) -> str:
        return self.fields[0].field_name

    @property
    def is_longitudinal(self) -> bool:
        return bool(self.events)

    @property
    def has_repeating(self) -> bool:
        return bool(self.repeating_forms or self.repeating_events)

    @property
    def surveys_enabled(self) -> bool:
        return any(form.is_survey for form in self.forms)

    def field(self, name: str) -> Field | None:
        for item in self.fields:
            if item.field_name == name:
                return item
        return None

    def form(self, name: str) -> Form | None:
        for item in self.forms:
            if item.name == name:
                return item
        return None

    def event(self, unique_name: str) -> Event | None:
        for item in self.events:
            if item.unique_name == unique_name:
                return item
        return None

    def form_fields(self, form_name: str) -> list[Field]:
        return [f for f in self.fields if f.form_name == form_name]

    def forms_in_event(self, event: str) -> list[str]:
        """Forms designated for ``event``; every form on classic projects (event ``""``)."""
        if not self.is_longitudinal:
            return [form.name for form in self.forms]
        return list(self.form_events.get(event, []))

    def is_repeating_form(self, event: str, form: str) -> bool:
        return (event, form) in self.repeating_forms

    def export_columns(self) -> list[str]:
        """Every data column in dictionary order, each form's ``_complete`` after its fields."""
        columns: list[str] = []
        for form in self.forms:
            for item in self.form_fields(form.name):
                columns.extend(item.export_columns())
            columns.append(form.complete_field)
        return columns

    def column_form(self) -> dict[str, str]:
        """Export column -> the form it belongs to."""
        owner: dict[str, str] = {}
        for form in self.forms:
            for item in self.form_fields(form.name):
                for column in item.export_columns():
                    owner[column] = form.name
            owner[form.complete_field] = form.name
        return owner
