"""Rehearsing on a study's own project with its own settings (``python -m sandbox --env-file``).

The study's settings file is read the way the services read it
(:func:`common.settings.read_env_file`, :meth:`Settings.from_env`, which also refuses a name
that is no setting). Every setting is kept except
the ones that say which REDCap and which Twilio to talk to, and with what credentials: those
point at the simulators (:func:`rehearsal_env`), so nothing a rehearsal does can reach
production. Before a participant is simulated the loaded project is checked against the settings
with the services' own project check (:func:`common.project.load_layout`, what ``admin check``
shows), and the simulated registrations are tried on a scratch copy of the project, so every
problem is one line naming the setting and the fix: a :class:`ConfigError` for a bad settings
file (exit 2), a :class:`ProjectCheckError` for a project that lacks what the settings name
(exit 3), as in the services.

When the settings name a ``RULES_FILE``, the rehearsal copy gets the rules' fields it lacks, as
uploading ``admin instrument``'s CSV in REDCap would (:func:`add_rules`), and every rule's survey
is enabled there as SURVEY_INSTRUMENT's is. Simulated participants fill what the rules read with
plausible values (names, an address, a visit, a language code of the rule's), and register only
after go-live: :func:`waiting_for_baseline` counts the records ``admin baseline`` would still mark.
"""

from __future__ import annotations

import csv
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from common.errors import ConfigError, ProjectCheckError, RelayError
from common.project import Layout, load_layout
from common.redcap_client import RedcapClient
from common.settings import Settings, read_env_file
from messaging import thread
from messaging.checks import needs
from messaging.context import build_context
from messaging.due import newly_true
from messaging.instrument import instrument_csv
from messaging.line_types import LINE_TYPES
from messaging.rules import RULES_FORM, Rule, Rules, survey_setting
from messaging.rules_file import rules_for
from sandbox.clock import SimClock
from sandbox.participants import Participant, Registration, store
from sandbox.redcap.dictionary import forms_of, load_dictionary
from sandbox.redcap.errors import ApiError
from sandbox.redcap.model import Project
from sandbox.session import Sandbox

# Settings under these prefixes say where production is, or log in to it; any the sandbox does
# not set itself is written blank, so a setting added later cannot point a rehearsal at it.
# SANDBOX_ ones are the sandbox's own (its clock): a study's file never sets them.
PRODUCTION_PREFIXES = ("REDCAP_API_", "TWILIO_", "GRAPH_", "SANDBOX_")
# Settings under those prefixes that say how the services behave, not where production is or how
# to log in to it: the rehearsal takes them from the study (the simulators serve what they ask).
CARRIED = frozenset({"TWILIO_LOOKUP"})


def read_study_env(path: Path) -> dict[str, str]:
    """The study's settings file as written, in its order (the real environment is not mixed in:
    it wins again when the services run)."""
    return read_env_file(str(path))


def rehearsal_env(study: Mapping[str, str], box: Sandbox, lock_dir: str) -> dict[str, str]:
    """``study``'s settings with the simulators' URLs and credentials in place of production's,
    and a lock directory of the sandbox's own (a rehearsal never contends with a live sender)."""
    connection = box.connection()
    values = {
        key: ""
        if key.startswith(PRODUCTION_PREFIXES) and key not in connection and key not in CARRIED
        else value
        for key, value in study.items()
    }
    values.update(connection)
    values["LOCK_DIR"] = lock_dir
    return values


def parse(values: Mapping[str, str], source: str, file_names: Iterable[str] = ()) -> Settings:
    """The settings the services will read; ConfigError naming ``source`` and the variable.
    ``file_names``: the names the study wrote, each of which must be a setting."""
    try:
        return Settings.from_env(values, file_names=file_names, source=source)
    except ConfigError as exc:
        message = str(exc)
        raise ConfigError(message if source in message else f"{source}: {message}") from None


def prepare(
    box: Sandbox, settings: Settings, *, demo_fields: bool = False
) -> tuple[Registration, list[str]]:
    """Check the served project against ``settings`` as ``admin check`` does; what a simulated
    registration fills, and one-line notes on what was changed in the rehearsal copy."""
    client = RedcapClient(
        settings.redcap_api_url, settings.redcap_api_token, settings.http_timeout_seconds
    )
    rules = rules_for(settings)
    notes = add_rules(box.project, settings, rules)
    try:
        layout = load_layout(client, settings, needs(rules, settings))
    except ProjectCheckError:
        raise
    except RelayError as exc:
        raise ProjectCheckError(f"the REDCap simulator refused the project check: {exc}") from None
    notes += _surveys(box.project, settings, layout, rules)
    email_field = layout.email_fields[0] if layout.email_fields else ""
    phone_field = layout.phone_fields[0] if rules.sends_sms else ""
    taken = {layout.record_id_field, settings.registration_complete_field, phone_field, email_field}
    registration = Registration(
        complete_field=settings.registration_complete_field,
        complete_value=settings.registration_complete_value,
        phone_field=phone_field,
        event=layout.event,
        demo_fields=demo_fields,
        email_field=email_field,
        plausible=tuple(name for name in _read(settings, rules) if name not in taken),
        codes={**_when_values(rules, taken), **_language_codes(rules)},
    )
    return registration, notes


_EQUALS = re.compile(r"\[([a-z][a-z0-9_]*)\]\s*=\s*(?:'([^']*)'|\"([^\"]*)\"|([0-9.]+))")


def _when_values(rules: Rules, taken: set[str]) -> dict[str, tuple[str, ...]]:
    """What each rule's ``when`` asks a field to equal (``[consent] = '1'``), so that simulated
    participants meet it; two rules asking different values of one field take turns (one
    participant eligible, the next not)."""
    wanted: dict[str, list[str]] = {}
    for rule in rules.written:
        for name, *values in _EQUALS.findall(rule.when):
            value = next((v for v in values if v), "")
            if name not in taken and value and value not in wanted.setdefault(name, []):
                wanted[name].append(value)
    return {name: tuple(values) for name, values in wanted.items() if values}


def _read(settings: Settings, rules: Rules) -> list[str]:
    """The fields the rules read (templates, anchors, languages), the fields their ``when``
    compares and CONSENT_FIELD: what a simulated participant fills, so the rules apply to them
    and their messages render as a real one's."""
    names = [name for rule in rules.written for name in rule.read]
    names += [name for rule in rules.written for name, *_ in _EQUALS.findall(rule.when)]
    names += [settings.consent_field] if settings.consent_field else []
    own = {name for rule in rules.every for name in rule.fields.kinds()}
    return [name for name in dict.fromkeys(names) if name not in own]


def _language_codes(rules: Rules) -> dict[str, tuple[str, ...]]:
    """Each language field and its rule's codes, taken in turn so every language is rehearsed."""
    codes: dict[str, tuple[str, ...]] = {}
    for rule in rules.written:
        for part in (rule.templates, rule.mail.text if rule.mail else None):
            if part is not None and part.language_field:
                codes.setdefault(part.language_field, tuple(part.languages))
    return codes


def waiting_for_baseline(settings: Settings) -> Callable[[], int]:
    """How many records a rule applies to that have no status yet: what ``admin baseline``
    would mark, and what a simulated registration must not join (it would be baselined with
    them, never messaged). Asked of the simulated REDCap as the admin command asks it."""
    ctx = build_context(settings, needs_twilio=False, name="sandbox")

    def count() -> int:
        try:
            return sum(len(found) for found in newly_true(ctx, ctx.rules.written).values())
        except RelayError:
            return -1  # not known this time: ask again

    return count


def rehearse_registrations(
    scratch: Project, clock: SimClock, people: list[Participant], registration: Registration
) -> None:
    """Store the simulated registrations in ``scratch``, a throwaway copy of the project: REDCap's
    refusal becomes one ProjectCheckError naming the setting, before the real simulation starts."""
    try:
        store(scratch, clock, people, registration)
    except ApiError as exc:
        raise ProjectCheckError(_refusal(exc.message, registration)) from None


def add_rules(project: Project, settings: Settings, rules: Rules) -> list[str]:
    """The RULES_FILE's rules' fields (and with CONVERSATION_LOG=1 the log's instrument), added
    to the rehearsal copy where it lacks them; a note naming them, since the real project needs
    them uploaded too."""
    log, lookup = settings.conversation_log, settings.twilio_lookup
    if not settings.rules_file and not log and not lookup:
        return []
    with project.lock:
        names = [r.name for r in rules.written if project.field(r.fields.status) is None]
        missing = [f"rule(s) {', '.join(names)}"] if names and settings.rules_file else []
        if log and project.field(thread.SID) is None:
            missing.append(f"the conversation log ({thread.FORM}, made repeating)")
        if lookup and project.field(LINE_TYPES) is None and rules.sends_sms:
            missing.append(f"Twilio Lookup's {LINE_TYPES}")
        add_rule_fields(
            project, rules, conversation_log=log, line_types=lookup,
            event=settings.redcap_event or "",
        )  # fmt: skip
    if not missing:
        return []
    return [
        f"added the fields of {', '.join(missing)} to this copy of the project (upload "
        "the output of `.venv/bin/python -m services.admin instrument` in REDCap's Data "
        "Dictionary page before going live)"
    ]


def _surveys(project: Project, settings: Settings, layout: Layout, rules: Rules) -> list[str]:
    """Each rule's survey (SURVEY_INSTRUMENT for the built-in rule) must be an instrument of the
    rule's event; one that is not enabled as a survey in the loaded copy is enabled there, since
    exports need not carry survey settings."""
    settings.require_survey()
    notes: list[str] = []
    for rule in rules.written:
        if rule.survey:
            notes += _survey(project, settings, layout, rule)
    return list(dict.fromkeys(notes))


def _survey(project: Project, settings: Settings, layout: Layout, rule: Rule) -> list[str]:
    instrument = rule.survey
    event = layout.event_for(rule.event)
    forms = layout.forms_for(event)
    if instrument not in forms:
        where = f"designated for {event}" if event else "an instrument"
        setting = survey_setting(rule)
        fix = "SURVEY_INSTRUMENT" if rule.builtin else f"the rule in {settings.rules_file}"
        raise ProjectCheckError(
            f"{setting}={instrument!r} is not {where}; fix {fix} or the project's event "
            f"designations (instruments: {', '.join(sorted(forms))})"
        )
    form = next(form for form in project.forms if form.name == instrument)
    if form.is_survey:
        return []
    with project.lock:
        form.survey_title = form.label or instrument
    return [
        f"{instrument} is not enabled as a survey in this copy of the project; enabled it for the "
        "rehearsal (make sure it is a survey in REDCap: Online Designer > Survey settings)"
    ]


def _refusal(message: str, registration: Registration) -> str:
    """REDCap's first import error as the setting that caused it (the value is not repeated: it
    may be a phone number)."""
    first = next(csv.reader([message.splitlines()[0]]), [])
    if len(first) < 4:
        return f"REDCap refuses the simulated registrations: {message.splitlines()[0]}"
    column, reason = first[1], first[3]
    if column == registration.email_field:
        return (
            f"EMAIL_FIELDS: REDCap refuses an e-mail address in {column} ({reason}); put the "
            "field that holds the participant's address first in EMAIL_FIELDS"
        )
    if column == registration.phone_field:
        return (
            f"PHONE_FIELDS: REDCap refuses a phone number in {column} ({reason}); put the field "
            "that holds the participant's phone first in PHONE_FIELDS"
        )
    if column == registration.complete_field:
        return (
            f"REGISTRATION_COMPLETE_VALUE={registration.complete_value!r} cannot be stored in "
            f"{column} ({reason}); set it to the value {column} holds once registration is done"
        )
    return f"REDCap refuses the simulated registrations: {column}: {reason}"


def add_rule_fields(
    project: Project,
    rules: Rules | Sequence[Rule],
    *,
    conversation_log: bool = False,
    line_types: bool = False,
    event: str = "",
) -> Project:
    """Give ``project`` the fields of ``rules`` it lacks, as uploading ``admin instrument``'s CSV
    in REDCap's Data Dictionary page would (their instrument designated in each rule's event);
    with ``conversation_log`` also the log's instrument, made repeating in ``event``
    (REDCAP_EVENT; the first event if blank) as Project Setup's "Repeating instruments" would,
    and with ``line_types`` the field of Twilio Lookup's answers (TWILIO_LOOKUP=1)."""
    rules = rules if isinstance(rules, Rules) else Rules(tuple(rules))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rules.csv"
        path.write_text(instrument_csv(rules, conversation_log, line_types), encoding="utf-8")
        fields = [f for f in load_dictionary(path) if project.field(f.name) is None]
    if not fields:
        return project
    added = {f.name for f in fields}
    homes = [(r.fields.status, r.fields.form, r.event) for r in rules.every]
    homes += [(r.fields.status, r.fields.form, r.event) for r in rules.assign]
    if conversation_log:
        homes += [(thread.WAITING, RULES_FORM, event), (thread.SID, thread.FORM, event)]
    if line_types:
        homes.append((LINE_TYPES, RULES_FORM, event))
    missing = [(name, where) for status, name, where in homes if status in added]
    project.fields.extend(fields)
    for form in forms_of(fields):
        if project.form(form.name) is None:
            project.forms.append(form)
    if project.is_longitudinal:
        for name, where in missing:
            designated = project.form_events.setdefault(where or project.events[0].unique_name, [])
            if name not in designated:
                designated.append(name)
    if conversation_log:
        home = (event or project.events[0].unique_name) if project.is_longitudinal else ""
        project.repeating_forms.add((home, thread.FORM))
    return project
