"""What only REDCap can tell about the rules, checked before any service touches the project.

For each rule: its fields exist in a shape that stores what we write, in the rule's event; the
fields its templates, anchor and language read exist (an anchor must be a date or date-time);
and REDCap itself accepts its ``when`` and ``stop_when`` logic (asked with a one-record export,
so the answer costs nothing whatever the project's size). Each failure is one line naming the
rule, the key and the fix.
"""

from __future__ import annotations

from collections.abc import Mapping, Set

from common import field_types
from common.checks import Check
from common.errors import RedcapRejected
from common.redcap_client import RedcapClient
from messaging.answers import expanded
from messaging.replies import OPT_OUT_KINDS
from messaging.rules import Rule

BUILTIN_FIX = (
    "fix the field in the Online Designer, or upload redcap/pipeline_instrument.csv in REDCap's "
    "Data Dictionary page"
)
RULES_FIX = (
    "run 'python -m services.admin instrument > relay.csv' and upload it in REDCap's Data "
    "Dictionary page"
)


def rule_checks(
    client: RedcapClient,
    meta: Mapping[str, Mapping[str, str]],
    forms_by_event: Mapping[str, Set[str]] | None,
    rules: tuple[Rule, ...],
    record_id_field: str,
) -> list[Check]:
    """Every rule's checks; ``forms_by_event`` is None on classic projects."""
    checks: list[Check] = []
    for rule in expanded(rules):
        title = "pipeline fields" if rule.builtin else f"rule {rule.name}"
        problems = _field_problems(rule, meta, forms_by_event)
        if problems:
            fix = BUILTIN_FIX if rule.builtin else RULES_FIX
            checks.append(Check(title, False, "; ".join(problems), fix))
            continue
        reads = _read_problems(rule, meta)
        if reads:
            checks.append(Check(title, False, reads[0][0], reads[0][1]))
            continue
        logic = _logic_problem(client, rule, record_id_field)
        if logic:
            checks.append(Check(title, False, *logic))
            continue
        checks.append(Check(title, True, f"{len(rule.fields.kinds())} fields"))
    if any(rule.replies for rule in rules):
        checks.append(_opt_out_check(meta))
    return checks


def _opt_out_check(meta: Mapping[str, Mapping[str, str]]) -> Check:
    """A rule takes replies: the record's opt-out fields must be there to record STOP."""
    problems = []
    for name, kind in OPT_OUT_KINDS.items():
        row = meta.get(name)
        if row is None:
            problems.append(f"{name} missing")
        elif problem := field_types.problem(name, kind, row, ()):
            problems.append(problem)
    if problems:
        return Check("opt-out fields", False, "; ".join(problems), RULES_FIX)
    return Check("opt-out fields", True, ", ".join(OPT_OUT_KINDS))


def _field_problems(
    rule: Rule,
    meta: Mapping[str, Mapping[str, str]],
    forms_by_event: Mapping[str, Set[str]] | None,
) -> list[str]:
    problems: list[str] = []
    for name, kind in rule.fields.kinds().items():
        row = meta.get(name)
        if row is None:
            problems.append(f"{name} missing")
        elif problem := field_types.problem(name, kind, row, rule.fields.codes):
            problems.append(problem)
    status = meta.get(rule.fields.status)
    if not problems and forms_by_event is not None and status is not None:
        if rule.event not in forms_by_event:
            problems.append(
                f"rule {rule.name}: event {rule.event!r} is not an event of this project "
                f"(events: {', '.join(forms_by_event)})"
            )
        elif status["form_name"] not in forms_by_event[rule.event]:
            problems.append(
                f"instrument {status['form_name']!r} is not designated for {rule.event}; "
                "designate it in REDCap's Define My Events page"
            )
    return problems


def _read_problems(rule: Rule, meta: Mapping[str, Mapping[str, str]]) -> list[tuple[str, str]]:
    where = "SMS_TEMPLATE" if rule.builtin else f"rule {rule.name}: template"
    problems: list[tuple[str, str]] = []
    used = [
        *(rule.templates.fields if rule.sends_sms and not rule.answer_of else ()),
        *(rule.mail.fields if rule.mail else ()),
        *(name for templates in rule.answers.values() for name in templates.fields),
    ]
    missing = [name for name in dict.fromkeys(used) if name not in meta]
    if missing:
        problems.append(
            (
                f"{where} uses unknown field(s): {', '.join(missing)}",
                "fix the {field:NAME} placeholders",
            )
        )
    if rule.anchor:
        row = meta.get(rule.anchor)
        check = field_types.validation(row) if row else ""
        if row is None:
            problems.append(
                (f"rule {rule.name}: anchor {rule.anchor!r} is not a field", "name a date field")
            )
        elif not check.startswith(("date_", "datetime_")):
            problems.append(
                (
                    f"rule {rule.name}: anchor {rule.anchor!r} is not a date or date-time field",
                    "name a field validated as a date or date-time (e.g. datetime_ymd)",
                )
            )
    for name in rule.templates.language_fields:
        if name not in meta:
            problems.append(
                (
                    f"rule {rule.name}: language_field {name!r} is not a field",
                    "name the field holding the participant's language",
                )
            )
    return problems


def _logic_problem(
    client: RedcapClient, rule: Rule, record_id_field: str
) -> tuple[str, str] | None:
    """REDCap's own verdict on the rule's logic: a one-record export with it as the filter."""
    for key, logic in (("when", rule.when), ("stop_when", rule.stop_when)):
        if not logic:
            continue
        try:
            client.export([record_id_field], logic, records=[_PROBE])
        except RedcapRejected as exc:
            where = (
                "REGISTRATION_COMPLETE_FIELD/_VALUE" if rule.builtin else f"rule {rule.name}: {key}"
            )
            return (
                f"{where}: REDCap rejects the logic ({exc})",
                "write it as in REDCap's branching logic, e.g. [field] = 'value'",
            )
    return None


_PROBE = "1"  # a record id; whether it exists does not matter, REDCap parses the logic first
