"""Templates rendered with typical values, for ``admin check``: length and SMS segments per
language, and each e-mail's subject, text and HTML, so a coordinator sees what a message costs
and says before any participant gets it (and a template that cannot render fails there)."""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import tzinfo

from messaging.rules import MailTemplates
from messaging.segments import Segments, segments
from messaging.templates import LocalizedTemplates, MessageTemplate

SAMPLE_LINK = "https://redcap.example.org/surveys/?s=" + "X" * 22  # 60 characters, a typical link
SAMPLE_RECORD_ID = "1"
SAMPLE_MOMENT = "2026-03-03 14:30"  # serves date, time, datetime and weekday formats alike
SAMPLE_TEXT = "Sample"
WARN_SEGMENTS = 3  # above this a message costs more than most studies expect


@dataclass(frozen=True)
class Sample:
    """One language's template rendered with typical values, for ``admin check``."""

    locale: str
    body: str
    length: int  # characters
    segments: Segments
    warning: bool  # more than WARN_SEGMENTS segments


def sample_values(template: MessageTemplate) -> dict[str, str]:
    """Typical values for the fields a template reads: a date-time for date fields, else text."""
    return {
        name: SAMPLE_MOMENT if name in template.date_fields else SAMPLE_TEXT
        for name in template.fields
    }


def samples(templates: LocalizedTemplates, tz: tzinfo) -> tuple[Sample, ...]:
    """Each language rendered with a 60-character link, record id 1 and ``sample_values``."""
    found: list[Sample] = []
    for locale, template in templates.templates.items():
        link = SAMPLE_LINK if template.link else None
        body = template.render(link, SAMPLE_RECORD_ID, sample_values(template), locale, tz)
        counted = segments(body)
        found.append(Sample(locale, body, len(body), counted, counted.count > WARN_SEGMENTS))
    return tuple(found)


@dataclass(frozen=True)
class MailSample:
    """One language's e-mail rendered with typical values: the subject as sent, the lengths of
    its plain text and its HTML (``None`` without ``email_html``)."""

    locale: str
    subject: str
    text_length: int  # characters
    html_length: int | None


def mail_samples(mail: MailTemplates, tz: tzinfo) -> tuple[MailSample, ...]:
    """Each language of an e-mail rendered as the sender renders it (HTML values escaped, the
    subject on one line), with the values ``samples`` uses."""
    found: list[MailSample] = []
    for locale, text in mail.text.templates.items():
        link = SAMPLE_LINK if text.link else None
        subject = mail.subject.templates[locale]
        rendered = subject.render(None, SAMPLE_RECORD_ID, sample_values(subject), locale, tz)
        body = text.render(link, SAMPLE_RECORD_ID, sample_values(text), locale, tz)
        markup = None
        if mail.html is not None:
            page = mail.html.templates[locale]
            markup = page.render(
                link, SAMPLE_RECORD_ID, sample_values(page), locale, tz, escape=html.escape
            )
        length = len(markup) if markup is not None else None
        found.append(MailSample(locale, " ".join(rendered.split()), len(body), length))
    return tuple(found)
