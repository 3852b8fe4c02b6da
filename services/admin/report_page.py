"""The weekly report (:mod:`services.admin.report`) as an e-mail Outlook renders, and as text.

Outlook for Windows draws mail with Word's engine: no script, no SVG, no flex or grid, and
``<style>`` blocks are unreliable. So the page is nested tables with every style inline, and
its bar charts are table cells of a width and a background colour (the count always printed
beside them, so they read the same in greyscale and when a client drops the colours). It holds no
link, no image and nothing to load: record ids, rule and group names, counts and reason codes
with their meaning. Every value is escaped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from services.admin.status_page import meaning

FONT = "font-family:'Segoe UI',Arial,Helvetica,sans-serif;color:#111111;"
CELL = f"{FONT}font-size:14px;padding:4px 10px;border:1px solid #b8b8b8;"
HEAD = f"{CELL}background-color:#e6e6e6;font-weight:bold;text-align:left;"
NUMBER = f"{CELL}text-align:right;"
BAR_WIDTH = 220
COLOURS = ("#14325c", "#2f5f9e", "#5d8fd0", "#a9c6ec")  # dark to light: greyscale-safe
STEPS = (
    ("new", "newly applied"),
    ("sent", "sent"),
    ("delivered", "delivered"),
    ("replied", "replied"),
)
ID_REASONS = {
    "no_group": "no group's logic held for the record",
    "several_groups": "more than one group's logic held",
    "group_full": "the group has given every number before the next group's start",
}


def subject(data: Mapping[str, Any]) -> str:
    project = data["project"]
    return (
        f"redcap-relay weekly report: project {project['id']} ({project['title']}), "
        f"{data['generated_at'][:10]}"
    )


def render(data: Mapping[str, Any]) -> str:
    """The report as one HTML e-mail (also what ``--html FILE`` writes)."""
    project = data["project"]
    title = f"Weekly report: project {project['id']} ({project['title']})"
    parts = [
        f'<h1 style="{FONT}font-size:24px;margin:0 0 4px 0;">{escape(title)}</h1>',
        f'<p style="{FONT}font-size:14px;color:#444444;margin:0 0 18px 0;">The past 7 days '
        f"(since {escape(data['since'])}) and in total, as of {escape(data['generated_at'])} "
        f"({escape(data['timezone'])}). Counts and record ids only: no names, phone numbers, "
        "addresses, links or messages.</p>",
    ]
    for name, enrollment in data["ids"].items():
        parts.append(_enrollment(name, enrollment))
    for name, funnel in data["rules"].items():
        parts.append(_funnel(name, funnel))
    parts.append(_attention(data["attention"], data["attention_total"]))
    body = "\n".join(parts)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title></head>\n"
        '<body style="margin:0;padding:0;background-color:#ffffff;">\n'
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" '
        'style="border-collapse:collapse;"><tr><td align="center" style="padding:16px;">\n'
        '<table role="presentation" width="720" cellpadding="0" cellspacing="0" border="0" '
        'style="border-collapse:collapse;"><tr><td align="left" '
        f'style="{FONT}font-size:14px;line-height:1.4;">\n{body}\n'
        "</td></tr></table>\n</td></tr></table>\n</body></html>\n"
    )


def _h2(text: str) -> str:
    return (
        f'<h2 style="{FONT}font-size:19px;margin:26px 0 8px 0;padding-bottom:3px;'
        f'border-bottom:2px solid #333333;">{escape(text)}</h2>'
    )


def _table(header: Sequence[str], rows: Sequence[str]) -> str:
    cells = "".join(f'<th align="left" style="{HEAD}">{escape(h)}</th>' for h in header)
    return (
        '<table role="presentation" cellpadding="0" cellspacing="0" border="0" '
        f'style="border-collapse:collapse;margin:4px 0 10px 0;"><tr>{cells}</tr>'
        f"{''.join(rows)}</table>"
    )


def _bar(n: int, top: int, colour: str) -> str:
    """A bar of ``n`` out of ``top``: a coloured cell of that share of BAR_WIDTH pixels."""
    width = round(BAR_WIDTH * n / top) if top and n else 0
    inner = (
        '<table role="presentation" cellpadding="0" cellspacing="0" border="0" '
        f'width="{max(width, 2)}"><tr><td width="{max(width, 2)}" height="14" '
        f'bgcolor="{colour}" style="background-color:{colour};height:14px;font-size:1px;'
        'line-height:1px;">&nbsp;</td></tr></table>'
        if width
        else "&nbsp;"
    )
    return f'<td width="{BAR_WIDTH}" style="{CELL}">{inner}</td>'


def _td(value: object, style: str = CELL) -> str:
    return f'<td style="{style}">{escape(str(value))}</td>'


def _funnel(name: str, funnel: Mapping[str, Any]) -> str:
    week, total = funnel["week"], funnel["total"]
    steps = [(key, label) for key, label in STEPS if week[key] is not None]
    top = max([week[key] for key, _ in steps] + [1])
    rows = [
        f"<tr>{_td(label)}{_td(week[key], NUMBER)}{_bar(week[key], top, COLOURS[i])}"
        f"{_td(total[key], NUMBER)}</tr>"
        for i, (key, label) in enumerate(steps)
    ]
    parts = [
        _h2(f"Rule {name}"),
        _table(("Step", "Past 7 days", "", "In total"), rows),
    ]
    reasons = sorted(set(week["failed"]) | set(total["failed"]))
    if reasons:
        failed = []
        for key in reasons:
            status, _, code = key.partition(":")
            failed.append(
                f"<tr>{_td(status)}{_td(code)}{_td(meaning(code))}"
                f"{_td(week['failed'].get(key, 0), NUMBER)}{_td(total['failed'][key], NUMBER)}</tr>"
            )
        parts.append(_table(("Problem", "Code", "Meaning", "Past 7 days", "In total"), failed))
    else:
        parts.append(f'<p style="{FONT}font-size:14px;margin:4px 0;">No problems.</p>')
    return "".join(parts)


def _enrollment(name: str, enrollment: Mapping[str, Any]) -> str:
    groups = enrollment["groups"]
    top = max([n for week in enrollment["weeks"] for n in week["counts"].values()] + [1])
    rows = []
    for week in enrollment["weeks"]:
        cells = "".join(
            f"{_td(week['counts'][g], NUMBER)}{_bar(week['counts'][g], top, COLOURS[i % 4])}"
            for i, g in enumerate(groups)
        )
        rows.append(f"<tr>{_td(week['week'])}{cells}</tr>")
    bold = f"{NUMBER}font-weight:bold;"
    for label, counts in (("Past 7 days", enrollment["week"]), ("In total", enrollment["total"])):
        cells = "".join(f"{_td(counts[g], bold)}{_td('')}" for g in groups)
        rows.append(f"<tr>{_td(label, f'{CELL}font-weight:bold;')}{cells}</tr>")
    header = ["Week of (Monday)"]
    for group in groups:
        header += [group, ""]
    statuses = ", ".join(f"{code} {n}" for code, n in enrollment["by_status"].items())
    parts = [
        _h2(f"Enrollment: study IDs of rule {name} ({enrollment['field']})"),
        _table(header, rows),
        f'<p style="{FONT}font-size:14px;margin:4px 0;">Records by status: {escape(statuses)}.</p>',
    ]
    skipped = enrollment["skipped_by_reason"]
    if skipped:
        lines = [
            f"<tr>{_td(code)}{_td(ID_REASONS.get(code, code))}{_td(n, NUMBER)}</tr>"
            for code, n in skipped.items()
        ]
        parts.append(_table(("Skipped", "Meaning", "Records"), lines))
    return "".join(parts)


def _attention(rows: Sequence[Mapping[str, str]], total: int) -> str:
    if not rows:
        return _h2("Records that need a person") + (
            f'<p style="{FONT}font-size:14px;margin:4px 0;">None.</p>'
        )
    lines = [
        f"<tr>{_td(r['record'], NUMBER)}{_td(r['rule'])}{_td(r['status'])}"
        f"{_td(_why(r['code']))}</tr>"
        for r in rows
    ]
    more = (
        f'<p style="{FONT}font-size:14px;margin:4px 0;">and {total - len(rows)} more '
        "(admin status lists them all).</p>"
        if total > len(rows)
        else ""
    )
    return (
        _h2(f"Records that need a person ({total})")
        + _table(("Record", "Rule", "Status", "Why"), lines)
        + more
    )


def _why(code: str) -> str:
    return ID_REASONS.get(code) or meaning(code or "unknown")


def text(data: Mapping[str, Any]) -> str:
    """The report as plain text: what ``admin report`` prints, and the mail's text part."""
    project = data["project"]
    lines = [
        f"Weekly report: project {project['id']} ({project['title']})",
        f"The past 7 days (since {data['since']}) and in total, as of {data['generated_at']} "
        f"({data['timezone']}).",
    ]
    for name, enrollment in data["ids"].items():
        groups = enrollment["groups"]
        lines += ["", f"Enrollment (study IDs of rule {name}): {' / '.join(groups)}"]
        for week in enrollment["weeks"]:
            counts = " / ".join(str(week["counts"][g]) for g in groups)
            lines.append(f"  week of {week['week']}: {counts}")
        for label in ("week", "total"):
            counts = " / ".join(str(enrollment[label][g]) for g in groups)
            lines.append(f"  {'past 7 days' if label == 'week' else 'in total'}: {counts}")
        skipped = ", ".join(f"{code} {n}" for code, n in enrollment["skipped_by_reason"].items())
        if skipped:
            lines.append(f"  skipped: {skipped}")
    for name, funnel in data["rules"].items():
        week, total = funnel["week"], funnel["total"]
        lines += ["", f"Rule {name}: past 7 days / in total"]
        for key, label in STEPS:
            if week[key] is not None:
                lines.append(f"  {label:<14} {week[key]:>5} / {total[key]}")
        for key in sorted(set(week["failed"]) | set(total["failed"])):
            lines.append(f"  {key:<30} {week['failed'].get(key, 0):>5} / {total['failed'][key]}")
    total = data["attention_total"]
    lines += ["", f"Records that need a person: {total}"]
    for row in data["attention"]:
        code = f" ({row['code']})" if row["code"] else ""
        lines.append(f"  record {row['record']}: rule {row['rule']}: {row['status']}{code}")
    if total > len(data["attention"]):
        lines.append(f"  and {total - len(data['attention'])} more (admin status lists them all)")
    return "\n".join(lines) + "\n"
