"""What only REDCap can tell about the rules, checked before any service touches the project.

:func:`needs` tells the project check (:mod:`common.project`) what the rules need: a phone field
when a rule texts, an e-mail field when one mails, the opt-out fields, and :func:`rule_checks`:
for each rule, its fields exist in a shape that stores what we write, in the rule's event; the
fields its templates, anchor and language read exist (an anchor must be a date or date-time);
and REDCap itself accepts its ``when`` and ``stop_when`` logic (asked with a one-record export,
so the answer costs nothing whatever the project's size). Each failure is one line naming the
rule, the key and the fix. :func:`survey_checks` asks whether each rule's survey is one.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Set
from functools import partial

from common import field_types
from common.errors import RedcapRejected
from common.field_types import Kind
from common.project import Check, Layout, Needs
from common.redcap_client import RedcapClient
from common.settings import Settings
from messaging import thread
from messaging.ids import AssignRule
from messaging.line_types import KINDS, LINE_TYPES
from messaging.replies import OPT_OUT_KINDS, RECORD_KINDS
from messaging.rules import Rule, Rules, Trigger, survey_setting
from messaging.templates import LocalizedTemplates, MessageTemplate

BUILTIN_FIX = (
    "fix the field in the Online Designer, or upload redcap/pipeline_instrument.csv in REDCap's "
    "Data Dictionary page"
)
RULES_FIX = (
    "run '.venv/bin/python -m services.admin instrument > relay.csv' and upload it in REDCap's "
    "Data Dictionary page"
)


def needs(rules: Rules, settings: Settings | None = None) -> Needs:
    """What ``rules`` need of the project, for :func:`common.project.inspect` (and with
    CONVERSATION_LOG on, the log's repeating instrument in REDCAP_EVENT; with TWILIO_LOOKUP
    on, the field its line types are kept in)."""
    log_event = None
    if settings is not None and settings.conversation_log:
        log_event = settings.redcap_event or ""
    lookup = settings is not None and settings.twilio_lookup
    return Needs(
        sms=rules.sends_sms,
        email=rules.sends_email,
        opt_out_fields=tuple(OPT_OUT_KINDS),
        rule_checks=partial(rule_checks, rules=rules, log_event=log_event, line_types=lookup),
    )


def rule_checks(
    client: RedcapClient,
    meta: Mapping[str, Mapping[str, str]],
    forms_by_event: Mapping[str, Set[str]] | None,
    record_id_field: str,
    *,
    rules: Rules,
    log_event: str | None = None,
    line_types: bool = False,
) -> list[Check]:
    """Every rule's checks, the conversation log's when ``log_event`` is not None (its event;
    "" on classic projects), and with ``line_types`` (TWILIO_LOOKUP=1) the field Twilio
    Lookup's answers are kept in; ``forms_by_event`` is None on classic projects."""
    checks: list[Check] = []
    for rule in rules.every:
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
        checks += [Check(title, True, detail, warning=True) for detail in _warnings(rule, meta)]
    for ids in rules.assign:
        checks.append(_assign_check(client, ids, meta, forms_by_event, record_id_field))
    if rules.replying:
        checks.append(_opt_out_check(meta))
    if log_event is not None:
        checks.append(_conversation_check(client, meta, forms_by_event, log_event))
    if line_types and rules.sends_sms:
        checks.append(_line_types_check(meta))
    return checks


def _line_types_check(meta: Mapping[str, Mapping[str, str]]) -> Check:
    """TWILIO_LOOKUP=1: the field the sender keeps Lookup's answers in, so each number is
    looked up (and charged) once."""
    title = "Twilio Lookup"
    problems = _record_field_problems(meta, KINDS)
    if problems:
        fix = (
            "with TWILIO_LOOKUP=1, run '.venv/bin/python -m services.admin instrument > "
            "relay.csv' and upload it in REDCap's Data Dictionary page (or set TWILIO_LOOKUP=0)"
        )
        return Check(title, False, "; ".join(problems), fix)
    return Check(
        title,
        True,
        f"each number's line type asked once before its first text (Twilio charges each "
        f"lookup) and kept in {LINE_TYPES}",
    )


def _conversation_check(
    client: RedcapClient,
    meta: Mapping[str, Mapping[str, str]],
    forms_by_event: Mapping[str, Set[str]] | None,
    event: str,
) -> Check:
    """CONVERSATION_LOG=1: the log's fields exist in a shape that stores what we write, its
    instrument is designated for REDCAP_EVENT and repeating there."""
    title = "conversation log"
    problems = []
    kinds = {**thread.KINDS, **thread.RECORD_KINDS}
    for name, kind in kinds.items():
        row = meta.get(name)
        if row is None:
            problems.append(f"{name} missing")
        elif problem := field_types.problem(name, kind, row, thread.CODES.get(name, ())):
            problems.append(problem)
        elif name in thread.KINDS and row.get("form_name") != thread.FORM:
            problems.append(f"{name} is on {row.get('form_name')!r}, not on {thread.FORM}")
    if problems:
        fix = (
            "with CONVERSATION_LOG=1, run '.venv/bin/python -m services.admin instrument > "
            "relay.csv' and upload it in REDCap's Data Dictionary page (or set CONVERSATION_LOG=0)"
        )
        return Check(title, False, "; ".join(problems), fix)
    if forms_by_event is not None and thread.FORM not in forms_by_event.get(event, ()):
        return Check(
            title,
            False,
            f"instrument {thread.FORM} is not designated for {event}",
            "designate it in REDCap's Define My Events page",
        )
    repeating = {
        (row.get("event_name", ""), row.get("form_name", "")) for row in client.repeating_forms()
    }
    if (event if forms_by_event is not None else "", thread.FORM) not in repeating:
        where = f" in event {event}" if forms_by_event is not None else ""
        return Check(
            title,
            False,
            f"instrument {thread.FORM} is not a repeating instrument{where}",
            "in Project Setup, 'Repeating instruments and events', tick "
            f"{thread.FORM}{where} (or set CONVERSATION_LOG=0)",
        )
    where = f" in {event}" if forms_by_event is not None else ""
    return Check(title, True, f"{thread.FORM} repeating{where}")


def _opt_out_check(meta: Mapping[str, Mapping[str, str]]) -> Check:
    """A rule takes replies: the record's opt-out fields must be there to record STOP, and its
    replies-read note, which makes each reply recorded once."""
    problems = _record_field_problems(meta, RECORD_KINDS)
    if problems:
        return Check("opt-out fields", False, "; ".join(problems), RULES_FIX)
    return Check("opt-out fields", True, ", ".join(RECORD_KINDS))


def _record_field_problems(
    meta: Mapping[str, Mapping[str, str]], kinds: Mapping[str, Kind]
) -> list[str]:
    """Why the record's own fields ``kinds`` (name -> what we write) cannot hold it: each one
    missing or of the wrong shape."""
    problems = []
    for name, kind in kinds.items():
        row = meta.get(name)
        if row is None:
            problems.append(f"{name} missing")
        elif problem := field_types.problem(name, kind, row, ()):
            problems.append(problem)
    return problems


def _field_problems(
    rule: Trigger,
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
                f"event {rule.event!r} is not an event of this project "
                f"(events: {', '.join(forms_by_event)})"
            )
        elif status["form_name"] not in forms_by_event[rule.event]:
            problems.append(
                f"instrument {status['form_name']!r} is not designated for {rule.event}; "
                "designate it in REDCap's Define My Events page"
            )
    return problems


def _assign_check(
    client: RedcapClient,
    rule: AssignRule,
    meta: Mapping[str, Mapping[str, str]],
    forms_by_event: Mapping[str, Set[str]] | None,
    record_id_field: str,
) -> Check:
    """A study ID rule: its own fields, the field receiving the IDs (a Text Box that takes them,
    in the rule's event, not the record id), and its logic as REDCap reads it."""
    title = f"rule {rule.name}"
    problems = _field_problems(rule, meta, forms_by_event)
    if problems:
        return Check(title, False, "; ".join(problems), RULES_FIX)
    target = meta.get(rule.field)
    # A prefix makes the IDs text; plain numbers may go in a field validated as a number.
    kind = Kind.TEXT if any(group.prefix for group in rule.groups) else Kind.COUNT
    if rule.field == record_id_field:
        problem = f"{rule.field} is the record id; name the field that holds the study ID"
    elif target is None:
        problem = f"field {rule.field!r} (the IDs go there) is not a field of this project"
    else:
        problem = field_types.problem(rule.field, kind, target)
        form, event = target["form_name"], rule.event
        if not problem and forms_by_event is not None and form not in forms_by_event.get(event, ()):
            problem = f"{rule.field} is on {form!r}, which is not designated for {event}"
    if problem:
        return Check(
            title, False, problem, "add it as a Text Box (no validation) in the Online Designer"
        )
    logic = [("when", rule.when), *((f"group {g.name}: when", g.when) for g in rule.groups)]
    for key, text in logic:
        if not text:
            continue
        try:
            client.export([record_id_field], text, records=[_PROBE])
        except RedcapRejected as exc:
            return Check(
                title,
                False,
                f"rule {rule.name}: {key}: REDCap rejects the logic ({exc})",
                "write it as in REDCap's branching logic, e.g. [field] = 'value'",
            )
    groups = ", ".join(group.name for group in rule.groups)
    return Check(title, True, f"IDs in {rule.field}; groups {groups}")


def _read_problems(rule: Rule, meta: Mapping[str, Mapping[str, str]]) -> list[tuple[str, str]]:
    """What the rule reads that the project lacks, each named by the key as the rules file writes
    it (``answer_cancelled.es``, ``email_template``; SMS_TEMPLATE for the built-in rule)."""
    problems: list[tuple[str, str]] = []
    for where, template in _texts(rule):
        missing = [name for name in template.fields if name not in meta]
        for name in missing:
            problems.append(
                (
                    f"{where} uses {{field:{name}}}, and {name} is not a field of this project",
                    _did_you_mean(name, meta) + "correct the placeholder, or add the field",
                )
            )
    if private := _private_in_links(rule, meta):
        problems.append(private)
    if rule.anchor:
        row = meta.get(rule.anchor)
        check = field_types.validation(row) if row else ""
        if row is None:
            problems.append(
                (
                    f"anchor = {rule.anchor!r} is not a field of this project",
                    _did_you_mean(rule.anchor, meta) + "name a date or date-time field",
                )
            )
        elif not check.startswith(("date_", "datetime_")):
            problems.append(
                (
                    f"anchor = {rule.anchor!r} is not a date or date-time field",
                    "name a field validated as a date or date-time (e.g. datetime_ymd)",
                )
            )
    chooser = _chooser(rule)
    if chooser is not None:
        name = chooser.language_field
        row = meta.get(name)
        if row is None:
            problems.append(
                (
                    f"language_field = {name!r} is not a field of this project",
                    _did_you_mean(name, meta) + "name the field holding the participant's language",
                )
            )
        elif (choices := _choices(row)) is not None and (
            unknown := [code for code in chooser.languages if code not in choices]
        ):
            problems.append(
                (
                    f"languages: code {unknown[0]!r} is not a choice of {name} (its codes: "
                    f"{', '.join(choices) or 'none'})",
                    f"use {name}'s raw codes in languages, as its data dictionary row lists them",
                )
            )
    return problems


def _texts(rule: Rule) -> list[tuple[str, MessageTemplate]]:
    """Every text the rule sends, with its key as written: the SMS template, the e-mail's parts
    and the auto-answers (named once, on the rule that takes the replies, not its companion)."""
    if rule.answer_of:
        return []
    if rule.builtin:
        return [("SMS_TEMPLATE", t) for t in rule.templates.templates.values()]
    parts = [rule.templates] if rule.sends_sms else []
    if rule.mail is not None:
        parts += [rule.mail.subject, rule.mail.text, *([rule.mail.html] if rule.mail.html else [])]
    parts += list(rule.answers.values())
    return [(part.where(locale), t) for part in parts for locale, t in part.templates.items()]


def _chooser(rule: Rule) -> LocalizedTemplates | None:
    """The rule's choice of language (its SMS template's, else its e-mail's), if it has one;
    an auto-answer companion's is its parent's, checked there."""
    if rule.answer_of:
        return None
    for part in (rule.templates, rule.mail.text if rule.mail else None):
        if part is not None and part.language_field:
            return part
    return None


def _choices(row: Mapping[str, str]) -> dict[str, str] | None:
    """A choice field's raw codes and labels; None for a field without choices (free text: any
    code may be typed there)."""
    kind = field_types.field_type(row)
    if kind == "yesno":
        return {"1": "Yes", "0": "No"}
    if kind == "truefalse":
        return {"1": "True", "0": "False"}
    if kind not in ("dropdown", "radio"):
        return None
    found: dict[str, str] = {}
    for part in row.get("select_choices_or_calculations", "").split("|"):
        value, _, label = part.partition(",")
        if value.strip():
            found[value.strip()] = label.strip()
    return found


def _warnings(rule: Rule, meta: Mapping[str, Mapping[str, str]]) -> list[str]:
    """What passes but is probably not meant: a language choice no template answers (those
    participants silently get the first language), a date-only anchor counted in whole days
    (the message would go at midnight)."""
    found: list[str] = []
    chooser = _chooser(rule)
    row = meta.get(chooser.language_field) if chooser is not None else None
    if chooser is not None and row is not None:
        for code, label in (_choices(row) or {}).items():
            if code not in chooser.languages:
                found.append(
                    f"{chooser.language_field} choice {code} ({label}) is not in languages: "
                    f'those participants get {chooser.default}; add {code} = "<locale>" to '
                    "languages if they should get another"
                )
    anchor = meta.get(rule.anchor) if rule.anchor else None
    date_only = anchor is not None and field_types.validation(anchor).startswith("date_")
    if date_only and rule.offset_minutes % MINUTES_A_DAY == 0:
        daytime = rule.offset_minutes + DAYTIME_MINUTES
        found.append(
            f"anchor {rule.anchor} is a date without a time, so offset_minutes = "
            f"{rule.offset_minutes:g} sends at 00:00 (quiet hours, if set, hold it until "
            f"morning); offset_minutes = {daytime:g} sends at 09:00 instead"
        )
    return found


def _did_you_mean(name: str, meta: Mapping[str, Mapping[str, str]]) -> str:
    close = difflib.get_close_matches(name, list(meta), n=1)
    return f"did you mean {close[0]}? " if close else ""


MINUTES_A_DAY = 24 * 60
DAYTIME_MINUTES = 9 * 60  # 09:00: what a date-only anchor's whole-day offset is moved to


def _private_in_links(rule: Rule, meta: Mapping[str, Mapping[str, str]]) -> tuple[str, str] | None:
    """A ``{url:field:NAME}`` of a field the data dictionary marks as an identifier, or
    validates as a phone or an e-mail: a link keeps it in browser histories, mail filters and
    the booking site's logs."""
    for where, template in _texts(rule):
        for name in template.url_fields:
            row = meta.get(name, {})
            what = field_types.validation(row)
            if row.get("identifier") == "y" or what in ("phone", "email"):
                why = f"validated as {what}" if what in ("phone", "email") else "an identifier"
                return (
                    f"{where}: {{url:field:{name}}} puts {name} ({why} in the data dictionary) "
                    "in a link, where browser histories, mail filters and the booking site's "
                    "logs keep it",
                    "put only a study ID in a link, e.g. {url:field:study_id}",
                )
    return None


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
            where = "REGISTRATION_COMPLETE_FIELD/_VALUE" if rule.builtin else key
            return (
                f"{where}: REDCap rejects the logic ({exc})",
                "write it as in REDCap's branching logic, e.g. [field] = 'value'",
            )
    return None


_PROBE = "1"  # a record id; whether it exists does not matter, REDCap parses the logic first


def survey_checks(
    client: RedcapClient, settings: Settings, layout: Layout, rules: Rules
) -> list[Check]:
    """Is each rule's survey a survey of the project, in the rule's event?

    Asked cheaply, whatever the project's size: the metadata says whether the instrument exists,
    project info whether surveys are on, and REDCap's answer for one existing record (the one
    before ``generateNextRecordName``) whether this instrument is enabled as a survey. A project
    with no numbered record yet is asked for its participant list, then empty. Whatever this
    cannot see, the first link the sender asks for settles (a refusal there stops the sender
    with the same message).
    """
    checks: list[Check] = []
    probe: list[str | None] = []  # asked once, for the first rule that needs it
    asked: set[tuple[str, str]] = set()  # (survey, event): rules sharing a survey ask once
    for rule in rules.written:
        if (rule.survey, rule.event) in asked:
            continue
        asked.add((rule.survey, rule.event))
        setting = survey_setting(rule)
        if rule.builtin and not rule.survey:
            checks.append(Check("survey instrument", False, f"{setting} is not set", SURVEY_FIX))
            continue
        if not rule.survey:
            continue
        event = layout.event_for(rule.event)
        forms = layout.forms_for(event)
        if rule.survey not in forms:
            where = f"designated for {event}" if event else "an instrument of it"
            checks.append(
                Check(
                    "survey instrument",
                    False,
                    f"{setting}={rule.survey!r} is not {where}",
                    "use one of: " + ", ".join(sorted(forms)),
                )
            )
            continue
        if not layout.surveys_enabled:
            checks.append(
                Check(
                    "survey instrument",
                    False,
                    "surveys are not enabled in this project",
                    "enable them in Project Setup, then enable the instrument as a survey",
                )
            )
            continue
        if not probe:
            probe.append(_existing_record(client))
        try:
            if probe[0] is None:
                client.participant_list(rule.survey, event)  # no records yet: an empty list
            else:
                client.survey_link(probe[0], rule.survey, event)
        except RedcapRejected as exc:
            if refusal := not_a_survey(str(exc), rule.survey, setting):
                checks.append(Check("survey instrument", False, refusal, NOT_SURVEY_FIX))
                continue
        checks.append(Check("survey instrument", True, f"{rule.survey} is enabled as a survey"))
    return checks


SURVEY_FIX = (
    "set it to the unique name of the survey instrument whose link is texted "
    "(shown in the Online Designer, e.g. interest_form)"
)
NOT_SURVEY_FIX = (
    "enable it as a survey (Online Designer > Survey settings), or name a survey in "
    "SURVEY_INSTRUMENT"
)


def not_a_survey(answer: str, instrument: str, setting: str = "SURVEY_INSTRUMENT") -> str:
    """REDCap's refusal of a survey link that is the setting's fault, as our one line; else ""."""
    if "has not been enabled as a survey" in answer or "Invalid instrument" in answer:
        return f"{setting}={instrument!r} is not enabled as a survey in this project"
    return ""


def _existing_record(client: RedcapClient) -> str | None:
    nxt = client.next_record_name()
    return str(int(nxt) - 1) if nxt.isdigit() and int(nxt) > 1 else None
