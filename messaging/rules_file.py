"""A study's rules from its settings (:func:`rules_for`): the RULES_FILE's, or the built-in rule
made from the first version's settings. Every mistake is one ConfigError naming the rule, the key
as written (``answer_cancelled.es``) and the fix, and pointing to docs/rules.md; an unknown key
gets the likely one ("did you mean") and lists the allowed ones (messaging.rules.KEYS)."""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from common.errors import ConfigError
from common.settings import Settings
from messaging.ids import parse_assign
from messaging.replies import UNCLEAR, Replies
from messaging.rules import (
    BUILTIN,
    CHANNELS,
    EMAIL,
    KEYS,
    NAME,
    REPLY_WINDOW_HOURS,
    RULES_FORM,
    SMS,
    MailTemplates,
    Rule,
    RuleFields,
    Rules,
)
from messaging.templates import MAX_BODY, MAX_EMAIL, MAX_SUBJECT, NO_SURVEY, LocalizedTemplates


def rules_for(settings: Settings) -> Rules:
    """The RULES_FILE's rules, or the one built-in rule made from today's settings; ConfigError
    naming the setting or the rule, the key and the fix. With ALERT_EMAIL_TO every rule gets its
    ``alerted_at`` field."""
    alerts = bool(settings.alert_email_to)
    if settings.rules_file:
        path = Path(settings.rules_file)
        return load_study(path, default_event=settings.redcap_event, alerts=alerts)
    rule = builtin_rule(
        registration_field=settings.registration_complete_field,
        registration_value=settings.registration_complete_value,
        delay_minutes=settings.sms_delay_minutes,
        template_text=settings.sms_template,
        survey=settings.survey_instrument,
        event=settings.redcap_event,
        alerts=alerts,
    )
    return Rules((rule,))


def builtin_rule(
    *,
    registration_field: str,
    registration_value: str,
    delay_minutes: float,
    template_text: str,
    survey: str,
    event: str,
    alerts: bool = False,
) -> Rule:
    """Today's single message, from today's settings, in today's ``pipeline_*`` fields."""
    templates = _templates("", "SMS_TEMPLATE", template_text, link=True)
    return Rule(
        name=BUILTIN,
        when=f"[{registration_field}] = '{registration_value}'",
        templates=templates,
        fields=RuleFields(BUILTIN, BUILTIN, extended=False, alerts=alerts),
        delay_minutes=delay_minutes,
        survey=survey,
        event=event,
        builtin=True,
        read=templates.fields,
    )


RULES_DOCS = "docs/rules.md"  # where every key is explained; each rules error points there


def load_rules(path: Path, default_event: str, alerts: bool = False) -> tuple[Rule, ...]:
    """The message rules of a RULES_FILE (its ``[[rule]]`` tables)."""
    return load_study(path, default_event, alerts).written


def load_study(path: Path, default_event: str, alerts: bool = False) -> Rules:
    """The rules of a RULES_FILE, message rules and study ID rules (``[[assign]]``, read by
    :mod:`messaging.ids`); ConfigError naming the rule, the key and the fix, and where the keys
    are explained. ``alerts`` (ALERT_EMAIL_TO is set) gives every message rule its
    ``alerted_at`` field."""
    try:
        return _load(path, default_event, alerts)
    except ConfigError as exc:
        raise ConfigError(f"{exc} (see {RULES_DOCS})") from None


def _load(path: Path, default_event: str, alerts: bool) -> Rules:
    where = f"RULES_FILE {path}"
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{where}: no such file; set RULES_FILE to your rules file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{where}: cannot be read ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML ({exc})") from None
    unknown = [key for key in document if key not in ("rule", "assign")]
    if unknown:
        raise ConfigError(
            f"{where}: unknown top-level key {unknown[0]!r}; write each rule as a [[rule]] table "
            "(a study ID rule as [[assign]])"
        )
    tables = document.get("rule")
    if not isinstance(tables, list) or not tables:
        raise ConfigError(f"{where}: no rules; add at least one [[rule]] table")
    rules: list[Rule] = []
    for number, table in enumerate(tables, 1):
        rule = _parse(table, f"{where}: rule {number}", default_event, alerts)
        if any(other.name == rule.name for other in rules):
            raise ConfigError(
                f"{where}: rule {rule.name!r} is defined twice; give each rule its own name"
            )
        rules.append(rule)
    names = {rule.name for rule in rules}
    for rule in rules:
        if rule.answers and f"{rule.name}_answer" in names:
            raise ConfigError(
                f"{where}: rule {rule.name + '_answer'!r} has the name of rule {rule.name!r}'s "
                "auto-answers (their fields are {rule}_answer_*); rename it"
            )
    assign = (
        parse_assign(document["assign"], where, default_event, RULES_FORM)
        if "assign" in document
        else ()
    )
    for given in assign:
        if given.name in names or given.name in {f"{name}_answer" for name in names}:
            raise ConfigError(
                f"{where}: assign {given.name!r} has the name of a [[rule]] (the prefix of its "
                "fields); rename one"
            )
    return Rules(tuple(rules), assign)


def _parse(table: Mapping[str, Any], where: str, default_event: str, alerts: bool) -> Rule:
    name = table.get("name")
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ConfigError(
            f"{where}: name must be lower-case letters, digits and _ (it prefixes the rule's "
            'REDCap fields), e.g. name = "survey_reminder"'
        )
    where = f"{where.rsplit(': rule', 1)[0]}: rule {name!r}"
    for key in table:
        if key not in KEYS and not key.startswith("answer_"):
            raise ConfigError(
                f"{where}: unknown key {key!r}; {_did_you_mean(key, KEYS)}"
                f"allowed keys: {', '.join(KEYS)}"
            )
    read = _Reader(table, where)
    when = read.text("when", required=True)
    anchor = read.field_name("anchor")
    has_delay = "delay_minutes" in table
    if anchor and has_delay:
        raise ConfigError(f"{where}: give either delay_minutes or anchor, not both")
    if "offset_minutes" in table and not anchor:
        raise ConfigError(f'{where}: offset_minutes needs anchor = "<date field>"')
    repeat = read.integer("repeat", minimum=0, maximum=20)
    # Two messages of a series are told apart by their time (messaging.reconcile looks 5 minutes
    # before a claim): they must be further apart than that.
    every = read.number("every_minutes", minimum=10)
    if repeat and not every:
        raise ConfigError(f"{where}: repeat = {repeat} needs every_minutes (e.g. 2880 = 2 days)")
    if every and not repeat:
        raise ConfigError(f"{where}: every_minutes needs repeat = <how many more sends>")
    survey = read.field_name("survey")
    channels = _channels(table, where)
    _answer_keys(table, where, SMS in channels)
    languages = table.get("languages", {})
    if not isinstance(languages, dict) or not all(isinstance(v, str) for v in languages.values()):
        raise ConfigError(f'{where}: languages must map codes to locales, e.g. {{ 1 = "en" }}')
    language_field = read.field_name("language_field")
    if bool(language_field) != bool(languages):
        raise ConfigError(f"{where}: language_field and languages go together")
    choice = _Choice(language_field, {str(k): v for k, v in languages.items()})
    templates = (
        choice.templates(where, "template", table["template"], link=bool(survey))
        if SMS in channels
        else _NO_SMS
    )
    mail = _mail(table, where, bool(survey), choice) if EMAIL in channels else None
    try:
        replies = Replies.parse(table["replies"], where) if "replies" in table else None
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if "reply_within_hours" in table and replies is None:
        raise ConfigError(f"{where}: reply_within_hours needs replies (the answers it waits for)")
    window = read.number(
        "reply_within_hours", 1, MAX_HOURS, default=REPLY_WINDOW_HOURS, unit="hours", example=72
    )
    answers = {
        key.removeprefix("answer_"): choice.templates(
            where, key, spec, link=False, no_link=_ANSWER_NO_LINK
        )
        for key, spec in table.items()
        if key.startswith("answer_")
    }
    reads = [
        *templates.fields,
        *(mail.fields if mail else ()),
        *([anchor] if anchor else []),
        *(templates.language_fields or (mail.text.language_fields if mail else ())),
    ]
    return Rule(
        name=name,
        when=when,
        templates=templates,
        channels=channels,
        mail=mail,
        replies=replies,
        reply_within_hours=window,
        answers=MappingProxyType(answers),
        fields=RuleFields(
            name,
            BUILTIN if name == BUILTIN else RULES_FORM,
            email=EMAIL in channels,
            alerts=alerts,
            replies=replies is not None,
        ),
        delay_minutes=read.number("delay_minutes", minimum=0) if has_delay else 0.0,
        anchor=anchor,
        offset_minutes=read.number("offset_minutes", minimum=-MAX_MINUTES),
        survey=survey,
        event=read.field_name("event") or default_event,
        stop_when=read.text("stop_when"),
        repeat=repeat,
        every_minutes=every,
        read=tuple(dict.fromkeys(reads)),
        check_every_cycle=read.flag("check_every_cycle"),
    )


MAX_MINUTES = 366 * 24 * 60
MAX_HOURS = 366 * 24
# An e-mail-only rule has no SMS template; this stands in for it and is never rendered.
_NO_SMS = LocalizedTemplates.build("(e-mail only)", link=False)
# Why these texts never carry the participant's link, whatever the rule's survey.
_ANSWER_NO_LINK = (
    "an auto-answer carries no survey link (it answers a text back); put the link in template"
)
_SUBJECT_NO_LINK = (
    "the subject carries no survey link (lock screens and mail lists show it); put it in "
    "email_template"
)


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``did you mean 'x'? `` for the likeliest of ``choices``, or "" when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"did you mean {close[0]!r}? " if close else ""


def _answer_keys(table: Mapping[str, Any], where: str, texts: bool) -> None:
    """``replies`` needs a rule that texts; each ``answer_<answer>`` needs that answer (or
    ``unclear``) in ``replies``."""
    if "replies" in table and not texts:
        raise ConfigError(f'{where}: replies come by SMS; add "sms" to channel or remove replies')
    given = table.get("replies")
    listed: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
    for key in table:
        if not key.startswith("answer_"):
            continue
        answer = key.removeprefix("answer_")
        if "replies" not in table:
            raise ConfigError(f"{where}: {key} needs replies (the answers it responds to)")
        if answer != UNCLEAR and answer not in listed:
            keys = [*(f"answer_{a}" for a in listed), f"answer_{UNCLEAR}"]
            raise ConfigError(
                f"{where}: {key} answers no reply in replies; {_did_you_mean(key, keys)}"
                f"use one of: {', '.join(keys)}"
            )


def _channels(table: Mapping[str, Any], where: str) -> tuple[str, ...]:
    """The rule's channels from ``channel``, and the template keys they need (and only those)."""
    spec = table.get("channel", SMS)
    key = spec.replace(" ", "").lower() if isinstance(spec, str) else None
    if key not in CHANNELS:
        raise ConfigError(
            f'{where}: channel = {spec!r} is not a channel; use "sms", "email", "sms,email" '
            '(SMS, else e-mail when there is no usable phone) or "email,sms"'
        )
    channels = CHANNELS[key]
    if SMS in channels and "template" not in table:
        raise ConfigError(f'{where}: template is missing; add template = "..." (the SMS text)')
    if SMS not in channels and "template" in table:
        raise ConfigError(
            f'{where}: template is the SMS text, but channel = "{key}"; remove it, or use '
            'channel = "sms,email"'
        )
    if EMAIL in channels:
        for needed in ("subject", "email_template"):
            if needed not in table:
                raise ConfigError(
                    f'{where}: channel = "{key}" needs {needed} = "..." (the e-mail\'s '
                    + ("subject)" if needed == "subject" else "plain text)")
                )
    else:
        for mail_key in ("subject", "email_template", "email_html"):
            if mail_key in table:
                raise ConfigError(
                    f'{where}: {mail_key} is for e-mail, but channel = "{key}"; add '
                    f'channel = "{key},email" or remove {mail_key}'
                )
    return channels


@dataclass(frozen=True)
class _Choice:
    """A rule's choice of language, shared by all its templates (SMS, subject, e-mail)."""

    language_field: str
    languages: Mapping[str, str]

    def templates(
        self,
        where: str,
        key: str,
        spec: object,
        *,
        link: bool,
        limit: int = MAX_BODY,
        no_link: str = NO_SURVEY,
    ) -> LocalizedTemplates:
        return _templates(
            where,
            key,
            spec,
            link=link,
            language_field=self.language_field,
            languages=self.languages,
            limit=limit,
            no_link=no_link,
        )


def _mail(table: Mapping[str, Any], where: str, link: bool, choice: _Choice) -> MailTemplates:
    subject = choice.templates(
        where, "subject", table["subject"], link=False, limit=MAX_SUBJECT, no_link=_SUBJECT_NO_LINK
    )
    for locale, template in subject.templates.items():
        if "\n" in template.text or "\r" in template.text:
            raise ConfigError(f"{where}: {subject.where(locale)} must be one line")
    text = choice.templates(
        where, "email_template", table["email_template"], link=link, limit=MAX_EMAIL
    )
    html = None
    if "email_html" in table:
        html = choice.templates(
            where, "email_html", table["email_html"], link=link, limit=MAX_EMAIL
        )
    return MailTemplates(subject, text, html)


def _templates(
    where: str,
    key: str,
    spec: object,
    *,
    link: bool,
    language_field: str = "",
    languages: Mapping[str, str] | None = None,
    limit: int = MAX_BODY,
    no_link: str = NO_SURVEY,
) -> LocalizedTemplates:
    """``key``'s text(s); ConfigError ``where: <the key as written>: <what is wrong>``."""
    place = f"{where}: " if where else ""
    if not isinstance(spec, str | dict):
        raise ConfigError(f'{place}{key} must be text, or one text per language ({key}.en = "...")')
    try:
        return LocalizedTemplates.build(
            spec,
            link=link,
            language_field=language_field,
            languages=dict(languages or {}),
            limit=limit,
            key=key,
            no_link=no_link,
        )
    except ValueError as exc:
        raise ConfigError(f"{place}{exc}") from None


class _Reader:
    """Typed reads of one rule's keys, naming the rule and the key in every error."""

    def __init__(self, table: Mapping[str, Any], where: str) -> None:
        self._table = table
        self._where = where

    def text(self, key: str, required: bool = False) -> str:
        value = self._table.get(key, "")
        if not isinstance(value, str):
            raise ConfigError(f"{self._where}: {key} must be text in quotes")
        if required and not value.strip():
            raise ConfigError(
                f"{self._where}: {key} is missing; it is REDCap logic, e.g. "
                "\"[registration_complete] = '2'\""
            )
        return value.strip()

    def field_name(self, key: str) -> str:
        value = self.text(key)
        if value and not NAME.fullmatch(value):
            raise ConfigError(
                f"{self._where}: {key} = {value!r} is not a REDCap name (lower-case letters, "
                "digits, _)"
            )
        return value

    def number(
        self,
        key: str,
        minimum: float,
        maximum: float = MAX_MINUTES,
        *,
        default: float = 0.0,
        unit: str = "minutes",
        example: int = 60,
    ) -> float:
        """A number of ``unit``; ``default`` (0: not set) when the key is absent."""
        if key not in self._table:
            return default
        value = self._table[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{self._where}: {key} must be a number of {unit}, e.g. {example}")
        if not minimum <= value <= maximum:
            raise ConfigError(
                f"{self._where}: {key} = {value} must be from {minimum:g} to {maximum:g}"
            )
        return float(value)

    def flag(self, key: str) -> bool:
        value = self._table.get(key, False)
        if not isinstance(value, bool):
            raise ConfigError(f"{self._where}: {key} must be true or false (no quotes)")
        return value

    def integer(self, key: str, minimum: int, maximum: int) -> int:
        value = self._table.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{self._where}: {key} must be a whole number, e.g. 2")
        if not minimum <= value <= maximum:
            raise ConfigError(f"{self._where}: {key} = {value} must be from {minimum} to {maximum}")
        return value
