"""Check the REDCap project before touching it, and learn its layout.

Every command runs :func:`load_layout` first: the token must belong to ``REDCAP_PROJECT_ID``, the
event must be right on longitudinal projects, and the project must hold what the engine says it
needs (:class:`Needs`: a phone field when a rule texts, an e-mail field when one mails, each rule's
fields, checked by the engine's own ``rule_checks``). ``admin check`` shows the same checks as a
checklist.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Set
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from common import field_types
from common.errors import ProjectCheckError
from common.redcap_client import RedcapClient
from common.settings import Settings


@dataclass(frozen=True)
class Check:
    """One line of ``admin check`` and of the startup check: what was checked, whether it passed,
    and for a failure the fix."""

    name: str
    ok: bool
    detail: str = ""
    fix: str = ""
    warning: bool = False  # passed, but worth a look (admin check prints it as [warn])


# The engine's checks of its own fields: (client, metadata by field, forms by event or None on
# classic projects, the record id field) -> checks.
RuleChecks = Callable[
    [RedcapClient, Mapping[str, Mapping[str, str]], Mapping[str, Set[str]] | None, str],
    list[Check],
]


@dataclass(frozen=True)
class Needs:
    """What the engine needs of the project (this layer knows no rules, so it is told)."""

    sms: bool = True  # a rule texts: one of PHONE_FIELDS must exist
    email: bool = False  # a rule mails: one of EMAIL_FIELDS must exist
    opt_out_fields: tuple[str, ...] = ()  # all present: Layout.opt_out
    rule_checks: RuleChecks | None = None


PIPELINE_FORM = "pipeline"


@dataclass(frozen=True)
class Layout:
    """What the services need to know about the project."""

    project_id: int
    title: str
    record_id_field: str
    event: str | None  # the unique event name on longitudinal projects, else None
    phone_fields: tuple[str, ...]  # PHONE_FIELDS that exist, in the configured order
    metadata: Mapping[str, Mapping[str, str]] = field(repr=False)
    forms_in_event: frozenset[str] = frozenset()
    surveys_enabled: bool = True
    event_forms: Mapping[str, frozenset[str]] = field(default_factory=dict)
    email_fields: tuple[str, ...] = ()  # EMAIL_FIELDS that exist, when a rule sends e-mail
    opt_out: bool = False  # the record's opt-out fields exist (messaging.replies): honour them

    def row(self, record_id: str, values: Mapping[str, str], event: str = "") -> dict[str, str]:
        """An import row for one record: its id, its event if any (``event``, else
        REDCAP_EVENT), and ``values``."""
        row = {self.record_id_field: record_id}
        if where := self.event_for(event):
            row["redcap_event_name"] = where
        row.update(values)
        return row

    def event_for(self, event: str) -> str | None:
        """The event a rule's fields live in: its own, else REDCAP_EVENT; None if classic."""
        return (event or self.event) if self.event else None

    def forms_for(self, event: str | None) -> frozenset[str]:
        """The instruments designated for ``event`` (every instrument on classic projects)."""
        return self.event_forms.get(event, frozenset()) if event else self.forms_in_event

    def stamp(self, field: str, moment: datetime, tz: ZoneInfo) -> str:
        """``moment`` as ``field`` stores it (with or without seconds, by its validation)."""
        return field_types.format_time(self.metadata.get(field, {}), moment, tz)

    @property
    def events(self) -> list[str] | None:
        return [self.event] if self.event else None


def inspect(
    client: RedcapClient, settings: Settings, needs: Needs
) -> tuple[Layout | None, list[Check]]:
    """Run every project check; the layout is None when a check that matters failed."""
    checks: list[Check] = []
    info = client.project_info()
    pid = int(info.get("project_id", 0) or 0)
    title = str(info.get("project_title", ""))
    if pid != settings.redcap_project_id:
        checks.append(
            Check(
                "project id",
                False,
                f"REDCAP_PROJECT_ID={settings.redcap_project_id} but the token belongs to "
                f"project {pid} ({title!r})",
                "use that project's token, or correct REDCAP_PROJECT_ID",
            )
        )
        return None, checks
    checks.append(Check("project id", True, f"project {pid} ({title!r})"))

    meta = {row["field_name"]: row for row in client.metadata()}
    forms = {row["form_name"] for row in meta.values()}
    record_id_field = next(iter(meta)) if meta else "record_id"
    event: str | None = None
    forms_in_event = frozenset(forms)
    mapping = client.form_event_mapping()
    if mapping is not None:
        events = [str(row["unique_event_name"]) for row in mapping]
        if not settings.redcap_event:
            checks.append(
                Check(
                    "event",
                    False,
                    "the project is longitudinal but REDCAP_EVENT is not set",
                    f"set REDCAP_EVENT to one of: {', '.join(dict.fromkeys(events))}",
                )
            )
        elif settings.redcap_event not in events:
            checks.append(
                Check(
                    "event",
                    False,
                    f"REDCAP_EVENT={settings.redcap_event!r} is not an event of this project",
                    f"use one of: {', '.join(dict.fromkeys(events))}",
                )
            )
        else:
            event = settings.redcap_event
            forms_in_event = frozenset(
                str(row["form"]) for row in mapping if row["unique_event_name"] == event
            )
            checks.append(Check("event", True, f"longitudinal; using event {event}"))
    elif settings.redcap_event:
        checks.append(
            Check(
                "event",
                False,
                "REDCAP_EVENT is set but the project is not longitudinal",
                "remove REDCAP_EVENT",
            )
        )

    forms_by_event: dict[str, set[str]] | None = None
    if mapping is not None:
        forms_by_event = {}
        for row in mapping:
            forms_by_event.setdefault(str(row["unique_event_name"]), set()).add(str(row["form"]))
    if needs.rule_checks is not None and (event is not None or mapping is None):
        checks += needs.rule_checks(client, meta, forms_by_event, record_id_field)
    if not settings.rules_file:
        checks.append(_registration_field(meta, forms, settings, forms_in_event, event))
    phones = tuple(name for name in settings.phone_fields if name in meta)
    if needs.sms:
        checks.append(_phone_fields(meta, settings, phones))
    emails = tuple(name for name in settings.email_fields if name in meta)
    if needs.email:
        checks.append(_email_fields(meta, settings, emails))
    if any(not c.ok for c in checks):
        return None, checks
    layout = Layout(
        pid,
        title,
        record_id_field,
        event,
        phones,
        meta,
        forms_in_event,
        surveys_enabled=str(info.get("surveys_enabled", "1")) not in ("0", ""),
        event_forms={e: frozenset(f) for e, f in (forms_by_event or {}).items()},
        email_fields=emails,
        opt_out=bool(needs.opt_out_fields) and all(name in meta for name in needs.opt_out_fields),
    )
    return layout, checks


def _phone_fields(
    meta: Mapping[str, Mapping[str, str]], settings: Settings, phones: tuple[str, ...]
) -> Check:
    if phones:
        return Check("phone fields", True, ", ".join(phones))
    likely = [n for n, row in meta.items() if _looks_like_phone(n, row)]
    return Check(
        "phone fields",
        False,
        f"none of PHONE_FIELDS exists ({', '.join(settings.phone_fields)})",
        "set PHONE_FIELDS to the variable(s) holding the participant's phone"
        + (f" (fields that look like one: {', '.join(likely)})" if likely else ""),
    )


def _email_fields(
    meta: Mapping[str, Mapping[str, str]], settings: Settings, emails: tuple[str, ...]
) -> Check:
    if emails:
        return Check("e-mail fields", True, ", ".join(emails))
    likely = [
        n
        for n, row in meta.items()
        if row.get("text_validation_type_or_show_slider_number") == "email"
    ]
    return Check(
        "e-mail fields",
        False,
        f"a rule sends e-mail but none of EMAIL_FIELDS exists ({', '.join(settings.email_fields)})",
        "set EMAIL_FIELDS to the variable(s) holding the participant's address"
        + (f" (fields validated as e-mail: {', '.join(likely)})" if likely else ""),
    )


def load_layout(client: RedcapClient, settings: Settings, needs: Needs) -> Layout:
    """The layout, or ProjectCheckError with the first failed check and its fix."""
    layout, checks = inspect(client, settings, needs)
    for check in checks:
        if not check.ok:
            found = f"{check.name}: {check.detail}"
            raise ProjectCheckError(f"{found}; {check.fix}" if check.fix else found)
    assert layout is not None  # every check passed
    return layout


def _registration_field(
    meta: Mapping[str, Mapping[str, str]],
    forms: set[str],
    settings: Settings,
    forms_in_event: frozenset[str],
    event: str | None,
) -> Check:
    name = settings.registration_complete_field
    if name in meta:
        form = meta[name]["form_name"]
    elif name.endswith("_complete") and name[: -len("_complete")] in forms:
        form = name[: -len("_complete")]
    else:
        return Check(
            "registration field",
            False,
            f"REGISTRATION_COMPLETE_FIELD={name!r} is not a field of this project",
            "set it to the registration form's status field, one of: "
            + ", ".join(
                f"{f}_complete" for f in sorted(forms_in_event or forms) if f != PIPELINE_FORM
            ),
        )
    if event and form not in forms_in_event:
        return Check(
            "registration field",
            False,
            f"{name} is on {form!r}, which is not designated for {event}",
            "designate it, or change REDCAP_EVENT",
        )
    value = settings.registration_complete_value
    codes = _codes(meta.get(name), is_status=name not in meta)
    if codes and value not in codes:
        return Check(
            "registration field",
            False,
            f"REGISTRATION_COMPLETE_VALUE={value!r} is not a code of {name}",
            "use one of its raw codes: " + ", ".join(codes),
        )
    return Check("registration field", True, f"{name} = {value!r} means registered")


def _codes(row: Mapping[str, str] | None, is_status: bool) -> list[str]:
    """The raw codes a choice field (or a form's status field) can hold; [] for free text."""
    if is_status:
        return ["0", "1", "2"]  # Incomplete, Unverified, Complete
    if row is None:
        return []
    kind = field_types.field_type(row)
    if kind in ("yesno", "truefalse"):
        return ["1", "0"]
    if kind in ("dropdown", "radio"):
        return sorted(field_types.choice_codes(row))
    return []


def _looks_like_phone(name: str, row: Mapping[str, str]) -> bool:
    """A field a coordinator probably means: validated as a phone, or named like one."""
    if row.get("text_validation_type_or_show_slider_number") == "phone":
        return True
    return (
        row.get("field_type") == "text"
        and not name.startswith("pipeline_")
        and any(word in name for word in ("phone", "mobile", "cell"))
    )
