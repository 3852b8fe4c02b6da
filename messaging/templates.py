"""Message templates for message rules: placeholders, dates in the participant's language, segments.

A coordinator writes these by hand, so the set is small and anything else is refused::

    {survey_link}                  the participant's personal survey link
    {record_id}                    the record id
    {field:NAME}                   REDCap field NAME as exported (raw codes, Y-M-D dates)
    {field:NAME:date}              a date          en "Mar 3, 2026"          es "3 mar 2026"
    {field:NAME:date:WIDTH}        short  "3/3/26" / "3/3/26"; long "March 3, 2026" /
                                   "3 de marzo de 2026"; full "Tuesday, March 3, 2026" /
                                   "martes, 3 de marzo de 2026"
    {field:NAME:time}              a time          en "2:30 PM"              es "14:30"
    {field:NAME:time:WIDTH}        medium "2:30:00 PM"; long "2:30:00 PM CST" (with the zone);
                                   full "2:30:00 PM Central Standard Time"
    {field:NAME:datetime}          en "Mar 3, 2026, 2:30 PM"    es "3 mar 2026, 14:30"
    {field:NAME:datetime:WIDTH}    WIDTH sets the date part; the time is always hours:minutes
    {field:NAME:weekday}           en "Tuesday"                es "martes"   (takes no width)
    {url:field:NAME}               field NAME URL-encoded, to put in a link (a study ID: 3%2F17)
    {{  }}                         a literal brace

WIDTH is one of short, medium, long, full (Babel's names). The default is medium for date and
datetime, short for time. ``{survey_link}`` is required in a rule that has a survey and refused
in one that has none.

Values are what REDCap exports: a date ``YYYY-MM-DD``, a datetime ``YYYY-MM-DD HH:MM`` or
``YYYY-MM-DD HH:MM:SS`` (always Y-M-D, whatever the field's display format), local to the study's
zone. A format shows only what the value holds: ``date`` and ``weekday`` need a date, ``time``
and ``datetime`` a date with a time; a blank or unreadable value (or a date-only value under
``time``/``datetime``) renders as empty text. Dates are formatted by Babel (CLDR data) for the
locale chosen by the participant's language field (``LocalizedTemplates``).

``segments`` counts what a body costs as SMS (GSM-7 or UCS-2); ``samples`` renders each language
with typical values for ``admin check``.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from functools import lru_cache
from types import MappingProxyType
from typing import Literal
from urllib.parse import quote

from babel import Locale, UnknownLocaleError
from babel import dates as babel_dates

MAX_BODY = 1600  # Twilio refuses longer bodies (21617)
MAX_EMAIL = 100_000  # far beyond any invitation; Graph's own limit is the 4 MB request
MAX_SUBJECT = 255  # what mail clients show in full, and Exchange's practical subject length
FORMATS = ("date", "time", "datetime", "weekday")
Width = Literal["short", "medium", "long", "full"]
_WIDTHS: dict[str, Width] = {"short": "short", "medium": "medium", "long": "long", "full": "full"}
WIDTHS = tuple(_WIDTHS)
_DEFAULT_WIDTH: dict[str, Width] = {"date": "medium", "time": "short", "datetime": "medium"}
_NEEDS_TIME = ("time", "datetime")
_NAME = re.compile(r"[a-z][a-z0-9_]*")
_VALUE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})(?: ([0-9]{2}):([0-9]{2})(?::([0-9]{2}))?)?")
_ALLOWED = (
    "use {survey_link}, {record_id}, {field:NAME}, {field:NAME:date|time|datetime|weekday} or "
    "{url:field:NAME}"
)
NO_SURVEY = "this rule has no survey; add survey = ... or remove {survey_link}"


@dataclass(frozen=True)
class _Slot:
    kind: Literal["survey_link", "record_id", "field", "url"]
    name: str = ""
    format: str = ""  # "" for the raw value, else one of FORMATS
    width: Width = "medium"  # unused by the raw value and weekday


@dataclass(frozen=True)
class MessageTemplate:
    """One message text, checked; ``render`` fills it for one participant."""

    text: str
    link: bool  # carries {survey_link}
    fields: tuple[str, ...]  # REDCap fields it reads, in order, once each
    date_fields: tuple[str, ...]  # ... of those, the ones used with a date or time format
    time_fields: tuple[str, ...]  # ... of those, the ones used with time or datetime
    parts: tuple[str | _Slot, ...] = field(repr=False, compare=False)
    url_fields: tuple[str, ...] = ()  # ... of those, the ones put in a link ({url:field:NAME})

    @classmethod
    def parse(
        cls, text: str, *, link: bool, limit: int = MAX_BODY, no_link: str = NO_SURVEY
    ) -> MessageTemplate:
        """Check the placeholders; ValueError says in one line which one is wrong and why.
        ``limit`` is the longest text allowed (an SMS by default); ``no_link`` is why
        ``{survey_link}`` is refused where ``link`` is False (the rule has no survey, or the
        text is one that never carries the link)."""
        if not text.strip():
            raise ValueError('the message is empty; write its text, e.g. "See you {field:a:date}"')
        if len(text) > limit:
            what = "an SMS holds" if limit == MAX_BODY else "the limit is"
            raise ValueError(f"the message is {len(text)} characters; {what} {limit}")
        stray = _stray_brace(text)
        if stray:
            raise ValueError(f"{stray}; write a brace that is part of the text as {{{{ or }}}}")
        parts: list[str | _Slot] = []
        for literal, name, spec, conversion in string.Formatter().parse(text):
            if literal:
                parts.append(literal)
            if name is not None:
                parts.append(_slot(name, spec or "", conversion, link=link, no_link=no_link))
        slots = [p for p in parts if isinstance(p, _Slot)]
        has_link = any(s.kind == "survey_link" for s in slots)
        if link and not has_link:
            raise ValueError(
                "the message must contain {survey_link}, the participant's personal link "
                "(this rule has a survey)"
            )
        named = [s for s in slots if s.kind in ("field", "url")]
        return cls(
            text=text,
            link=has_link,
            fields=_once(s.name for s in named),
            date_fields=_once(s.name for s in named if s.format),
            time_fields=_once(s.name for s in named if s.format in _NEEDS_TIME),
            parts=tuple(parts),
            url_fields=_once(s.name for s in named if s.kind == "url"),
        )

    def render(
        self,
        link: str | None,
        record_id: str,
        values: Mapping[str, str],
        locale: str,
        tz: tzinfo,
        escape: Callable[[str], str] | None = None,
    ) -> str:
        """The body for one participant; dates in ``locale``, values read as local to ``tz``.
        ``escape`` is applied to every value put in (``html.escape`` for an HTML mail)."""
        if self.link and link is None:
            raise ValueError("this message needs the participant's survey link")
        babel_locale = _locale(locale)
        pieces: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                pieces.append(part)
                continue
            if part.kind == "survey_link":
                value = link or ""
            elif part.kind == "record_id":
                value = record_id
            elif part.kind == "url":
                # Every reserved character encoded (/ too): the value is one query value.
                value = quote(values.get(part.name, "").strip(), safe="")
            elif not part.format:
                value = values.get(part.name, "")
            else:
                value = _format(values.get(part.name, ""), part, babel_locale, tz)
            pieces.append(escape(value) if escape else value)
        return "".join(pieces)


def _stray_brace(text: str) -> str:
    """Where a brace opens no placeholder or closes none, said as a person would ("" if none);
    the same reading str.format makes, without its parser's words."""
    depth, opened, i = 0, 0, 0
    while i < len(text):
        pair = text[i : i + 2]
        if depth == 0 and pair in ("{{", "}}"):
            i += 2
            continue
        if text[i] == "{":
            if depth:
                return (
                    f"the '{{' at character {opened + 1} ({_around(text, opened)}) is never "
                    "closed (another '{' comes first)"
                )
            depth, opened = 1, i
        elif text[i] == "}":
            if not depth:
                return f"the '}}' at character {i + 1} ({_around(text, i)}) closes no placeholder"
            depth = 0
        i += 1
    if depth:
        return f"the '{{' at character {opened + 1} ({_around(text, opened)}) is never closed"
    return ""


def _around(text: str, at: int) -> str:
    """A few characters either side of ``at``, quoted: enough to find it in the rules file."""
    start, end = max(at - 12, 0), min(at + 13, len(text))
    shown = ("..." if start else "") + text[start:end] + ("..." if end < len(text) else "")
    return repr(shown.replace("\n", " "))


def _slot(name: str, spec: str, conversion: str | None, *, link: bool, no_link: str = "") -> _Slot:
    # str.format reads "{field:a:date}" as field "field" with format spec "a:date". Shown as
    # repr shows it, less the quotes: a newline in it reads \n and the error stays one line.
    shown = repr(
        "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
    )[1:-1]
    if conversion is not None:
        raise ValueError(f"placeholder {shown} is not allowed; {_ALLOWED}")
    if name in ("survey_link", "record_id"):
        if spec:
            raise ValueError(f"placeholder {shown} takes nothing after the name; write {{{name}}}")
        if name == "survey_link" and not link:
            raise ValueError(f"placeholder {shown}: {no_link or NO_SURVEY}")
        return _Slot("survey_link" if name == "survey_link" else "record_id")
    if name == "url":
        return _url_slot(shown, spec)
    if name != "field":
        raise ValueError(f"placeholder {shown} is not allowed; {_ALLOWED}")
    variable, *rest = spec.split(":")
    if not _NAME.fullmatch(variable):
        raise ValueError(
            f"placeholder {shown} needs a REDCap variable name after field: "
            "(lower-case letters, digits and _, starting with a letter), e.g. {field:visit_date}"
        )
    if not rest:
        return _Slot("field", variable)
    fmt, *rest = rest
    if fmt not in FORMATS:
        raise ValueError(
            f"placeholder {shown}: {fmt!r} is not a format; use date, time, datetime or weekday"
        )
    if not rest:
        return _Slot("field", variable, fmt, _DEFAULT_WIDTH.get(fmt, "medium"))
    if fmt == "weekday":
        raise ValueError(
            f"placeholder {shown}: weekday takes no width; write {{field:{variable}:weekday}}"
        )
    width, *rest = rest
    if width not in WIDTHS:
        raise ValueError(
            f"placeholder {shown}: {width!r} is not a width; use short, medium, long or full"
        )
    if rest:
        raise ValueError(
            f"placeholder {shown} has too many parts; write {{field:{variable}:{fmt}:{width}}}"
        )
    return _Slot("field", variable, fmt, _WIDTHS[width])


def _url_slot(shown: str, spec: str) -> _Slot:
    """``{url:field:NAME}``: the field's raw value, URL-encoded for a link."""
    kind, _, variable = spec.partition(":")
    if kind != "field" or not _NAME.fullmatch(variable):
        raise ValueError(
            f"placeholder {shown}: write {{url:field:NAME}} with a REDCap variable name, e.g. "
            "{url:field:study_id}"
        )
    return _Slot("url", variable)


def _once(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(names))


@lru_cache(maxsize=64)
def _locale(name: str) -> Locale:
    try:
        return Locale.parse(name)
    except (UnknownLocaleError, ValueError):
        raise ValueError(f"{name!r} is not a locale Babel knows") from None


def _moment(raw: str, tz: tzinfo) -> date | datetime | None:
    """A REDCap export value as a date, or a datetime in ``tz``; None when it is neither."""
    match = _VALUE.fullmatch(raw.strip())
    if not match:
        return None
    year, month, day, hour, minute, second = match.groups()
    try:
        if hour is None:
            return date(int(year), int(month), int(day))
        return datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second or 0), tzinfo=tz
        )
    except ValueError:  # 2026-02-30, 25:00
        return None


def _format(raw: str, slot: _Slot, locale: Locale, tz: tzinfo) -> str:
    moment = _moment(raw, tz)
    if moment is None or (slot.format in _NEEDS_TIME and not isinstance(moment, datetime)):
        return ""
    day = moment.date() if isinstance(moment, datetime) else moment
    if slot.format == "weekday":
        text = babel_dates.format_date(day, "EEEE", locale=locale)
    elif slot.format == "date":
        text = babel_dates.format_date(day, slot.width, locale=locale)
    else:
        assert isinstance(moment, datetime)  # checked above; narrows the type for mypy
        # The value already carries the study's zone: no tzinfo argument, so no conversion.
        clock = babel_dates.format_time(
            moment, "short" if slot.format == "datetime" else slot.width, locale=locale
        )
        if slot.format == "time":
            text = clock
        else:
            # Babel's own way of joining (format_datetime), but with hours:minutes for the time:
            # seconds in a reminder are noise.
            joined = babel_dates.get_datetime_format(slot.width, locale=locale)
            date_text = babel_dates.format_date(day, slot.width, locale=locale)
            text = str(joined).replace("'", "").replace("{0}", clock).replace("{1}", date_text)
    # CLDR puts no-break spaces in times ("2:30\u202fPM"); they are not in GSM-7 and would make
    # the whole message UCS-2 (70 characters a segment instead of 160).
    return text.replace("\u202f", " ").replace("\u00a0", " ")


@dataclass(frozen=True)
class LocalizedTemplates:
    """A rule's templates by locale; the participant's language field picks one."""

    templates: Mapping[str, MessageTemplate]  # locale -> template; the first is the default
    default: str
    language_field: str = ""  # REDCap field holding each participant's language code
    languages: Mapping[str, str] = field(default_factory=dict)  # its raw codes -> locales
    key: str = "template"  # the rules file's key (template, subject, answer_confirmed...)
    by_language: bool = False  # written per language (template.en = ...), not as one text

    @classmethod
    def build(
        cls,
        spec: str | Mapping[str, object],
        *,
        link: bool,
        language_field: str = "",
        languages: Mapping[str, object] | None = None,
        locale: str = "en",
        limit: int = MAX_BODY,
        key: str = "template",
        no_link: str = NO_SURVEY,
    ) -> LocalizedTemplates:
        """From ``template = "..."`` (in ``locale``) or ``template.en = "..."``; else ValueError
        whose one line starts with the key as written (``template``, ``answer_cancelled.es``).

        Every locale must be one Babel knows, spelled as Babel does (``fr_CA``); every code in
        ``languages`` must map to a locale that has a template; every template must be reachable
        (the first is the fallback, each other one needs a code). ``no_link``: why a
        ``{survey_link}`` is refused when ``link`` is False.
        """
        by_language = not isinstance(spec, str)
        written = {locale: spec} if isinstance(spec, str) else dict(spec)
        if not written:
            raise ValueError(f'{key} has no languages; write {key} = "..." or {key}.en = "..."')
        templates: dict[str, MessageTemplate] = {}
        for name, text in written.items():
            where = f"{key}.{name}" if by_language else key
            _check_locale(str(name), where)
            if not isinstance(text, str):
                raise ValueError(f'{where} must be text in quotes: {where} = "..."')
            try:
                templates[str(name)] = MessageTemplate.parse(
                    text, link=link, limit=limit, no_link=no_link
                )
            except ValueError as exc:
                raise ValueError(f"{where}: {exc}") from None
        default = next(iter(templates))
        mapped = _check_languages(language_field, dict(languages or {}), templates, default, key)
        return cls(
            templates=MappingProxyType(templates),
            default=default,
            language_field=language_field,
            languages=MappingProxyType(mapped),
            key=key,
            by_language=by_language,
        )

    def where(self, locale: str) -> str:
        """The key of ``locale``'s text as the rules file writes it: ``template.es``, or
        ``template`` for a rule written in one language."""
        return f"{self.key}.{locale}" if self.by_language else self.key

    @property
    def fields(self) -> tuple[str, ...]:
        """REDCap fields the templates read (not the language field: see ``language_fields``)."""
        return _once(n for t in self.templates.values() for n in t.fields)

    @property
    def date_fields(self) -> tuple[str, ...]:
        return _once(n for t in self.templates.values() for n in t.date_fields)

    @property
    def time_fields(self) -> tuple[str, ...]:
        return _once(n for t in self.templates.values() for n in t.time_fields)

    @property
    def url_fields(self) -> tuple[str, ...]:
        """The fields the templates put in a link (``{url:field:NAME}``)."""
        return _once(n for t in self.templates.values() for n in t.url_fields)

    @property
    def language_fields(self) -> tuple[str, ...]:
        """The language field, if any, as a tuple to splice into the fields to export."""
        return (self.language_field,) if self.language_field else ()

    def choose(self, values: Mapping[str, str]) -> tuple[str, MessageTemplate]:
        """The participant's locale and template; the default for a blank or unmapped code."""
        code = values.get(self.language_field, "").strip() if self.language_field else ""
        locale = self.languages.get(code, self.default)
        return locale, self.templates[locale]

    def render(
        self, link: str | None, record_id: str, values: Mapping[str, str], tz: tzinfo
    ) -> str:
        """``choose`` then ``MessageTemplate.render``: the body for one participant."""
        locale, template = self.choose(values)
        return template.render(link, record_id, values, locale, tz)


def _check_locale(name: str, where: str) -> None:
    try:
        canonical = str(Locale.parse(name.replace("-", "_")))
    except (UnknownLocaleError, ValueError):
        raise ValueError(
            f"{where}: {name!r} is not a locale Babel knows; use a code such as en, es or fr_CA"
        ) from None
    if canonical != name:
        raise ValueError(f"{where}: write the locale {name!r} as {canonical}")


def _check_languages(
    language_field: str,
    languages: dict[str, object],
    templates: Mapping[str, MessageTemplate],
    default: str,
    key: str = "template",
) -> dict[str, str]:
    have = ", ".join(templates)
    if language_field and not _NAME.fullmatch(language_field):
        raise ValueError(
            f"language_field = {language_field!r} is not a REDCap variable name "
            "(lower-case letters, digits and _)"
        )
    if languages and not language_field:
        raise ValueError(
            "languages needs language_field = NAME, the REDCap field holding each language code"
        )
    if language_field and not languages:
        raise ValueError(
            f'language_field = "{language_field}" needs languages = {{ "1" = "{default}", ... }}: '
            "its codes and their locales"
        )
    mapped: dict[str, str] = {}
    for code, target in languages.items():
        where = f'languages: code "{code}"'
        if not isinstance(target, str):
            raise ValueError(f'{where} must map to a locale in quotes, e.g. "{code}" = "{default}"')
        _check_locale(target, where)
        if target not in templates:
            raise ValueError(
                f'{key} has no {target} text, which {where} maps to; add {key}.{target} = "..." '
                f"or map the code to one of {have}"
            )
        mapped[str(code)] = target
    if len(templates) > 1 and not language_field:
        raise ValueError(
            f"{key} has languages {have} but nothing chooses between them; add language_field = "
            f'NAME and languages = {{ "1" = "{default}", ... }}'
        )
    for name in templates:
        if name != default and name not in mapped.values():
            raise ValueError(
                f"{key}.{name} is never chosen: no code in languages maps to {name}; map a code "
                f"to {name} or remove {key}.{name}"
            )
    return mapped
