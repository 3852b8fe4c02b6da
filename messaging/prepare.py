"""Step 1 of the send path (messaging.send): for each due row, the channel and address (the
rule's ``channel`` order; an allowlist or an opt-out stops there), the survey link, and the
rendered text; what cannot be sent comes back with its reason, written by ``record_problems``
as ``skipped`` or ``failed``. Nothing is written for the rows that are ready."""

from __future__ import annotations

import hashlib
import html
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from common import logs
from common.addresses import allowed, pick_email
from common.errors import (
    PermanentError,
    SurveyLinkError,
)
from common.phones import normalize_phone, pick_phone
from common.pipeline import Status
from common.runner import Context
from messaging.links import survey_links
from messaging.records import values_row, with_home_values, write
from messaging.replies import OPT_OUT, OPTED_OUT
from messaging.rows import RuleRow
from messaging.rules import EMAIL, SMS, Rule
from messaging.templates import MAX_BODY, MAX_EMAIL

# Why a record is not messaged at all: ``skipped`` (nothing to send to), not ``failed``.
SKIP_CODES = frozenset(
    {
        "no_phone",
        "invalid_phone",
        "not_allowed",
        "no_email",
        "invalid_email",
        "no_contact",
        OPTED_OUT,
    }
)


@dataclass(frozen=True)
class Prepared:
    """One message ready to claim: its channel, address and rendered text (PHI: never logged).
    ``mail_id`` is the id an e-mail carries in its header, new for every claim."""

    row: RuleRow
    to: str
    body: str
    link: str
    channel: str = SMS
    subject: str = ""
    html: str | None = None
    mail_id: str = ""

    @property
    def ref(self) -> str:
        return self.mail_id if self.channel == EMAIL else fingerprint(self.body)


def fingerprint(body: str) -> str:
    """What ``R_sms_ref`` holds: enough of a hash to tell one rule's message from another's to
    the same number (a welcome and its reminder carry the same link), and never the text."""
    return hashlib.sha256(body.encode("utf-8")).hexdigest()[:20]


def prepare(
    ctx: Context, rows: Sequence[RuleRow]
) -> tuple[list[Prepared], list[tuple[RuleRow, PermanentError]]]:
    """Channels, addresses, links and texts for rows of one rule; those that cannot be messaged
    come back with their error."""
    problems: list[tuple[RuleRow, PermanentError]] = []
    contacts: dict[str, tuple[str, str]] = {}
    rows = with_home_values(ctx, rows)
    for row in rows:
        contact = choose_contact(ctx, row)
        if isinstance(contact, PermanentError):
            problems.append((row, contact))
        else:
            contacts[row.record_id] = contact
    rule = rows[0].rule if rows else None
    links: Mapping[str, str | PermanentError] = {}
    if rule is not None and rule.survey and contacts:
        links = survey_links(ctx, rule, list(contacts))
    ready: list[Prepared] = []
    for row in rows:
        if row.record_id not in contacts:
            continue
        link = links.get(row.record_id, "") if row.rule.survey else ""
        if isinstance(link, PermanentError) or (row.rule.survey and not link):
            problems.append((row, link or SurveyLinkError("survey_link", "no survey link")))
            continue
        channel, to = contacts[row.record_id]
        prepared = _render(ctx, row, channel, to, str(link))
        if isinstance(prepared, PermanentError):
            problems.append((row, prepared))
        else:
            ready.append(prepared)
    return ready, problems


def choose_contact(ctx: Context, row: RuleRow) -> tuple[str, str] | PermanentError:
    """(channel, address) for ``row``: its rule's channels in order, the first with a usable
    address. An address an allowlist (SMS_ALLOWED_NUMBERS, EMAIL_ALLOWED_ADDRESSES) leaves out
    stops there (``not_allowed``): a rehearsal's safety net never falls through to the next
    channel."""
    settings = ctx.settings
    if ctx.layout.opt_out and row.get(OPT_OUT).strip() == "1":
        return PermanentError(OPTED_OUT, "the participant opted out (replied STOP); START lifts it")
    if row.rule.to_field:  # an auto-answer goes back to the number the reply came from
        try:
            return SMS, normalize_phone(row.get(row.rule.to_field), settings.phone_region)
        except ValueError as exc:
            return PermanentError("invalid_phone", f"the reply's number is not usable ({exc})")
    problems: list[PermanentError] = []
    for channel in row.rule.channels:
        try:
            if channel == SMS:
                _, to = pick_phone(row.values, ctx.layout.phone_fields, settings.phone_region)
                ok = settings.sms_allowed_numbers is None or to in settings.sms_allowed_numbers
                setting = "SMS_ALLOWED_NUMBERS"
            else:
                _, to = pick_email(row.values, ctx.layout.email_fields)
                ok = allowed(to, settings.email_allowed_addresses)
                setting = "EMAIL_ALLOWED_ADDRESSES"
        except PermanentError as exc:
            problems.append(exc)
            continue
        if not ok:
            what = "number" if channel == SMS else "address"
            return PermanentError("not_allowed", f"the {what} is not in {setting}")
        return channel, to
    if len(problems) == 1:
        return problems[0]
    invalid = [p for p in problems if p.code.startswith("invalid_")]
    return PermanentError(
        invalid[0].code if invalid else "no_contact", "; ".join(str(p) for p in problems)
    )


def _render(
    ctx: Context, row: RuleRow, channel: str, to: str, link: str
) -> Prepared | PermanentError:
    rule, tz = row.rule, ctx.settings.timezone
    templates = rule.templates
    if rule.answer_of:
        chosen = rule.answers.get(row.get(rule.reply_field))
        if chosen is None:
            return PermanentError("no_answer", "the rule has no auto-answer for this reply")
        templates = chosen
    if channel == SMS:
        locale, template = templates.choose(row.values)
        body = template.render(link, row.record_id, row.values, locale, tz)
        if len(body) > MAX_BODY:
            return PermanentError("too_long", "message over 1600 characters")
        return Prepared(row, to, body, link)
    assert rule.mail is not None
    locale, text = rule.mail.text.choose(row.values)
    body = text.render(link, row.record_id, row.values, locale, tz)
    # The subject's languages are the text's (checked when the rules are read).
    subject = rule.mail.subject.templates[locale].render(
        None, row.record_id, row.values, locale, tz
    )
    markup = None
    if rule.mail.html is not None:
        markup = rule.mail.html.templates[locale].render(
            link, row.record_id, row.values, locale, tz, escape=html.escape
        )
    if len(body) > MAX_EMAIL or len(markup or "") > MAX_EMAIL:
        return PermanentError("too_long", f"e-mail over {MAX_EMAIL} characters")
    return Prepared(
        row,
        to,
        body,
        link,
        channel=EMAIL,
        subject=" ".join(subject.split()),  # a value with a line break stays on one line
        html=markup,
        mail_id=uuid.uuid4().hex,
    )


def record_problems(ctx: Context, problems: Sequence[tuple[RuleRow, PermanentError]]) -> None:
    """Write ``skipped`` (nothing usable to send to, or not allowed) or ``failed``, with the
    reason."""
    by_rule: dict[str, list[dict[str, str]]] = {}
    rules: dict[str, Rule] = {}
    for row, exc in problems:
        status = Status.SKIPPED if exc.code in SKIP_CODES else Status.FAILED
        f = row.rule.fields
        rules[row.rule.name] = row.rule
        by_rule.setdefault(row.rule.name, []).append(
            values_row(
                ctx,
                row,
                {f.status: status, f.error_code: exc.code, f.error_message: str(exc)[:1000]},
            )
        )
        logs.transition(
            ctx.log, row.record_id, row.status, status, reason=exc.code, rule=row.rule.name
        )
    for name, rows in by_rule.items():
        write(ctx, rules[name], rows)
