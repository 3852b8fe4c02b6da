"""filterLogic on record export rows (REDCAP_API.md §2.3): :func:`parse_filter` and :func:`matches`.

:func:`parse_filter` checks the logic against the project; :func:`matches` evaluates it on one
export row through a :class:`LogicEnv` over that row's record. Where the reference is silent,
this module decides: a repeating field referenced without an instance outside its own instance
rows reads blank; bad filterLogic gets a 400 in our own words.
"""

from __future__ import annotations

from datetime import datetime

from sandbox.redcap.errors import ApiError
from sandbox.redcap.logic import Logic, LogicError, parse_logic
from sandbox.redcap.model import Field, Project, Slot, StoredRecord, checkbox_code_column
from sandbox.redcap.validation import is_numeric_field


def _bad_filter(detail: object) -> ApiError:
    # REDCap's wording for bad logic is unconfirmed (REDCAP_API.md §10): this one is ours.
    return ApiError(400, f'The value of the parameter "filterLogic" is not valid: {detail}')


def parse_filter(project: Project, text: str) -> Logic | None:
    """The parsed filter, or 400 for bad syntax and unknown fields or events (§2.3)."""
    if not text.strip():
        return None
    try:
        logic = parse_logic(text)
    except LogicError as error:
        raise _bad_filter(error) from None
    names = {item.field_name for item in project.fields} | {f.complete_field for f in project.forms}
    events = {event.unique_name for event in project.events}
    for kind, unknown in (
        ("fields", [ref.field for ref in logic.refs if ref.field not in names]),
        ("events", [ref.event for ref in logic.refs if ref.event not in events | {None}]),
    ):
        if unknown:
            raise _bad_filter(
                f"unknown {kind} " + ", ".join(f"'{n}'" for n in dict.fromkeys(unknown))
            )
    # Logic naming no field at all does not filter (RC Records::applyFilteringLogic).
    return logic if logic.refs else None


class FieldFacts:
    """What logic asks of the dictionary on every row, looked up once per export.

    A large project evaluates the filter on each of its rows; reading the field list and parsing
    choices for every reference made a 100,000-record export take seconds. Build one per export
    (under ``project.lock``), so a dictionary change is seen by the next export.
    """

    def __init__(self, project: Project) -> None:
        self.project = project
        self.fields: dict[str, Field] = {}
        for item in project.fields:
            self.fields.setdefault(item.field_name, item)  # the first wins, as Project.field
        self._numeric: dict[str, bool] = {}
        self._event_forms: dict[str, frozenset[str]] = {}

    def is_numeric(self, field: str) -> bool:
        known = self._numeric.get(field)
        if known is None:
            item = self.fields.get(field)
            if item is None:
                known = field.endswith("_complete")  # form status: codes 0, 1, 2
            else:
                known = is_numeric_field(item, self.project.missing_data_codes)
            self._numeric[field] = known
        return known

    def forms_in_event(self, event: str) -> frozenset[str]:
        forms = self._event_forms.get(event)
        if forms is None:
            forms = self._event_forms[event] = frozenset(self.project.forms_in_event(event))
        return forms


def matches(
    project: Project,
    logic: Logic,
    stored: StoredRecord,
    slot: Slot,
    now: datetime,
    facts: FieldFacts | None = None,
) -> bool:
    """Whether the filter keeps this row; all-prefixed logic only looks at its own events.

    Pass one :class:`FieldFacts` for all the rows of an export.
    """
    if project.is_longitudinal and logic.all_prefixed and slot[0] not in logic.events:
        return False
    try:
        return logic.evaluate(_RowEnv(facts or FieldFacts(project), stored, slot, now))
    except LogicError as error:
        raise _bad_filter(error) from None


class _RowEnv:
    """What filter logic sees from one export row (a :class:`LogicEnv`)."""

    def __init__(self, facts: FieldFacts, stored: StoredRecord, slot: Slot, now: datetime) -> None:
        self._facts = facts
        self._project = facts.project
        self._stored = stored
        self._slot = slot
        self._now = now

    def now(self) -> datetime:
        return self._now

    def is_numeric(self, field: str) -> bool:
        return self._facts.is_numeric(field)

    def lookup(
        self, event: str | None, field: str, choice: str | None, instance: str | None
    ) -> str:
        project = self._project
        if field == project.record_id_field:
            return self._stored.record_id
        item = self._facts.fields.get(field)
        form = item.form_name if item is not None else field.removesuffix("_complete")
        event = self._slot[0] if event is None else event
        is_status = item is None
        blank = "0" if is_status or (choice is not None and _is_checkbox(item)) else ""
        if form not in self._facts.forms_in_event(event):
            return blank
        data = self._stored.slots.get(self._target(event, form, instance), {})
        if choice is not None and _is_checkbox(item):
            return "1" if data.get(checkbox_code_column(field, choice)) == "1" else "0"
        return data.get(field, blank)

    def _target(self, event: str, form: str, instance: str | None) -> Slot:
        """The slot a reference reads: the base row, or an instance of a repeating context."""
        project = self._project
        repeat_form = form if project.is_repeating_form(event, form) else ""
        if not repeat_form and event not in project.repeating_events:
            return (event, "", None)
        row_event, row_form, row_instance = self._slot
        current = row_instance if (row_event, row_form) == (event, repeat_form) else None
        numbers = sorted(
            s[2] for s in self._stored.slots if s[:2] == (event, repeat_form) and s[2] is not None
        )
        number: int | None = None
        if instance is None or instance == "current-instance":
            number = current
        elif instance == "first-instance":
            number = numbers[0] if numbers else None
        elif instance == "last-instance":
            number = numbers[-1] if numbers else None
        elif instance in {"previous-instance", "next-instance"} and current is not None:
            number = current - 1 if instance == "previous-instance" else current + 1
        elif instance.isdecimal():
            number = int(instance)
        # Outside its repeating context an un-numbered reference has no value: a missing slot.
        return (event, repeat_form, number if number is not None else 0)


def _is_checkbox(item: Field | None) -> bool:
    return item is not None and item.field_type == "checkbox"
