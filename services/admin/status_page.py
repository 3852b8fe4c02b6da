"""``admin status --html FILE``: the status page, one self-contained HTML file for the study team.

Inline CSS and inline SVG only (no script, no external asset, no link), so it opens from a file
share or a mail attachment and prints. Health first, then each service's last activity, then
per rule: the funnel as a bar chart, failures by error code with their meaning and what to do,
who is waiting and for how long, replies. Record ids only: the data it renders holds no phone
number, address, link or reply text, and every value is escaped anyway. Numbers are printed
beside every bar and states are words, so the page reads the same in greyscale.
"""

from __future__ import annotations

import os
import tempfile
from html import escape
from pathlib import Path
from typing import Any

from common.twilio_client import ERROR_TEXT, describe_error
from messaging.alerts import REASONS
from messaging.context import Context
from services.admin.health import human

_REQUEUE = "fix it in REDCap, then .venv/bin/python -m services.admin requeue RECORD --rule RULE"
ADVICE = {  # what a coordinator does about each failure code
    "no_phone": f"add the phone number; {_REQUEUE}",
    "invalid_phone": f"correct the phone number; {_REQUEUE}",
    "not_textable": f"add a mobile number, or reach them by e-mail (channel sms,email); {_REQUEUE}",
    "no_email": f"add the e-mail address; {_REQUEUE}",
    "invalid_email": f"correct the e-mail address; {_REQUEUE}",
    "no_contact": f"add a phone number or an e-mail address; {_REQUEUE}",
    "not_allowed": "add the number or address to SMS_ALLOWED_NUMBERS / EMAIL_ALLOWED_ADDRESSES "
    "(or empty them at go-live), then requeue",
    "too_long": "shorten the rule's template (admin check shows its length), then requeue",
    "survey_link": "check the survey is enabled for the instrument in REDCap, then requeue",
    "max_attempts": "Twilio or Microsoft was unavailable: run admin check, then requeue",
    "interrupted": "the sender crashed on this record repeatedly: read the sender's log, "
    "then requeue",
    "outcome_unknown": "look the number up in Twilio's message log before requeueing (it may "
    "have gone)",
    "unresolved_send": "look the number up in Twilio's message log or Sent Items before "
    "requeueing (it may have gone)",
    "no_sid": "look the number up in Twilio's message log; requeue only if nothing went",
    "20404": "the message id belongs to another Twilio account: check TWILIO_ACCOUNT_SID",
    "redcap_rejected": "read the record's error message field in REDCap (a field's "
    "validation refused our value)",
    "ErrorInvalidRecipients": f"correct the e-mail address; {_REQUEUE}",
    "21211": f"correct the phone number; {_REQUEUE}",
    "21408": "enable the country in Twilio's Geo Permissions, then requeue",
    "21610": "the participant opted out: do not requeue; only their START opts them back in",
    "21612": "reach them another way (add an e-mail address), or ask Twilio support",
    "21614": f"not a mobile: ask for a mobile number or an e-mail address; {_REQUEUE}",
    "21617": "shorten the rule's template, then requeue",
    "30001": "lower SMS_MAX_PER_SECOND, then requeue",
    "30003": "the phone was off or out of signal: requeue later",
    "30004": "the participant or their carrier blocks us: reach them another way",
    "30005": f"the number does not exist: correct it; {_REQUEUE}",
    "30006": f"a landline or unreachable carrier: ask for a mobile number; {_REQUEUE}",
    "30007": "the carrier filtered the text: review the template's wording and the sender's "
    "registration, then requeue",
    "30008": "requeue later; if it keeps failing, ask Twilio support",
    "30034": "register the sender number for US A2P 10DLC in Twilio",
}
STYLE = """
body{font:16px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#111;
 margin:0 auto;max-width:1100px;padding:24px;background:#fff}
h1{font-size:28px;margin:0 0 4px}h2{font-size:22px;margin:28px 0 8px;
 border-bottom:2px solid #333;padding-bottom:4px}h3{font-size:17px;margin:18px 0 6px}
.sub{color:#444;margin:0 0 16px}
.health{border:4px solid #111;padding:12px 16px;margin:16px 0;background:#f4f4f4}
.health.bad{border-style:double;border-width:6px;background:#fde8e8}
.health.ok{border-color:#2d6a2d;background:#e9f5e9}
.health h2{border:0;margin:0 0 6px}.fix{color:#333}
table{border-collapse:collapse;margin:4px 0 8px}th,td{border:1px solid #999;
 padding:4px 10px;text-align:left;vertical-align:top}th{background:#e6e6e6}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.rule{border:1px solid #bbb;padding:4px 18px 14px;margin:22px 0;border-radius:6px}
.muted{color:#555}.row{display:flex;gap:32px;align-items:flex-start;flex-wrap:wrap}
"""
BAR_COLOURS = ("#14325c", "#2f5f9e", "#5d8fd0", "#a9c6ec")  # dark to light: greyscale-safe
STEPS = (("due", "due"), ("sent", "sent"), ("delivered", "delivered"), ("replied", "replied"))


def render(ctx: Context, data: dict[str, Any]) -> str:
    """The page for ``data`` (what ``admin status --json`` prints)."""
    title = f"redcap-relay status: project {ctx.layout.project_id} ({ctx.layout.title})"
    health = data.get("health", {"healthy": True, "findings": [], "not_checked": []})
    when = health.get("checked_at", "")
    parts = [
        f"<h1>{escape(title)}</h1>",
        f'<p class="sub">As of {escape(when)} ({escape(str(ctx.settings.timezone))}); '
        f"{_n(data.get('records', 0))} records. Record ids only: no phone numbers, "
        "addresses, links or messages.</p>",
        _health(health),
    ]
    if "report" in data:
        report = data["report"]
        parts.append(
            f"<p>From REDCap report {escape(str(report['id']))}: {_n(report['rows'])} rows.</p>"
        )
    parts.append(_activity(data.get("last_activity", {})))
    if data.get("opted_out") is not None:
        parts.append(
            f"<p><strong>Opted out</strong> (replied STOP, or Twilio refused with 21610): "
            f"{_n(data['opted_out'])} participant(s). No rule texts them until they send "
            "START.</p>"
        )
    for name, rule in data.get("rules", {}).items():
        parts.append(_rule(name, rule))
    for name, ids in data.get("ids", {}).items():
        parts.append(_ids(name, ids))
    body = "\n".join(parts)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>\n<body>\n{body}\n"
        "</body></html>\n"
    )


PUBLIC_HELP = (
    "write FILE readable by everyone (0644), for a web server's or a share's folder whose own "
    "permissions say who reads it; without it only you can read it (0600): record ids can be "
    "medical record numbers"
)


def write(path: Path, text: str, *, public: bool = False) -> None:
    """Write ``text`` to ``path`` atomically (a temporary file beside it, then a rename): readers
    never see half a page. Mode 0600, whatever FILE's was: it holds no phone, address or text,
    but record ids, which a study may key on medical record numbers; ``public`` 0644."""
    path = path.resolve()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644 if public else 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _n(value: object) -> str:
    return escape(str(value))


def _health(health: dict[str, Any]) -> str:
    findings = health["findings"]
    if not findings:
        head = '<section class="health ok"><h2>Health: OK (&#10003; no findings)</h2>'
        items = "<p>Every service has kept up with the records it had to move.</p>"
    else:
        head = (
            '<section class="health bad"><h2>Health: NEEDS ATTENTION (&#9888; '
            f"{len(findings)} finding(s))</h2>"
        )
        items = "<ul>" + "".join(
            f"<li><strong>{escape(f['check'])}</strong>: {escape(f['what'])}<br>"
            f'<span class="fix">What to do: {escape(f["fix"])}</span></li>'
            for f in findings
        )
        items += "</ul>"
    skipped = "".join(f"<li>{escape(note)}</li>" for note in health["not_checked"])
    if skipped:
        items += f'<p class="muted">Not checked:</p><ul class="muted">{skipped}</ul>'
    return head + items + "</section>"


def _activity(activity: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><td>{escape(service)}</td><td>{escape(last['at'])}</td>"
        f"<td>{escape(human(last['minutes_ago']))} ago</td></tr>"
        if last
        else f"<tr><td>{escape(service)}</td><td>never</td><td></td></tr>"
        for service, last in activity.items()
    )
    return (
        "<h2>Last activity per service</h2><p class=muted>The newest time each service wrote "
        "on any record (the detector: a registration; the sender: a claim or a send; the "
        "checker: a delivery report; the reply poller: a reply).</p>"
        f"<table><tr><th>Service</th><th>Last wrote</th><th>How long ago</th></tr>{rows}</table>"
    )


def _rule(name: str, rule: dict[str, Any]) -> str:
    statuses = "".join(
        f"<tr><td>{escape(status)}</td><td class=n>{_n(n)}</td></tr>"
        for status, n in rule["by_status"].items()
        if n
    )
    row = [
        f"<div>{_chart(rule['funnel'])}</div>",
        "<div><h3>Records by status</h3>"
        f"<table><tr><th>Status</th><th>Records</th></tr>{statuses}</table></div>",
    ]
    if "replies" in rule:
        said = rule["replies"]["by_meaning"]
        cells = "".join(
            f"<tr><td>{escape(meaning)}</td><td class=n>{_n(n)}</td></tr>"
            for meaning, n in said.items()
        )
        row.append(
            "<div><h3>Latest reply per participant</h3>"
            f"<table><tr><th>Meaning</th><th>Participants</th></tr>{cells}</table>"
            f"<p>Auto-answers sent: {_n(rule['replies']['auto_answers_sent'])}</p></div>"
        )
    return (
        f'<section class="rule"><h2>Rule {escape(name)}</h2><div class="row">{"".join(row)}'
        f"</div>{_failures(name, rule['problems_by_code'])}{_waiting(rule)}</section>"
    )


def _ids(name: str, ids: dict[str, Any]) -> str:
    """A study ID rule: its records by status and why some got no ID (no ID is shown)."""
    statuses = "".join(
        f"<tr><td>{escape(status)}</td><td class=n>{_n(n)}</td></tr>"
        for status, n in ids["by_status"].items()
        if n
    )
    why = "".join(
        f"<tr><td>{escape(code)}</td><td class=n>{_n(n)}</td></tr>"
        for code, n in ids["problems_by_code"].items()
    )
    reasons = (
        f"<h3>No ID given, by reason</h3><table><tr><th>Status:code</th><th>Records</th></tr>"
        f"{why}</table>"
        if why
        else ""
    )
    return (
        f'<section class="rule"><h2>Rule {escape(name)} (study IDs in '
        f"{escape(ids['field'])})</h2><h3>Records by status</h3>"
        f"<table><tr><th>Status</th><th>Records</th></tr>{statuses}</table>{reasons}</section>"
    )


def _chart(funnel: dict[str, int | None]) -> str:
    """Horizontal bars, each labelled with its step and its count."""
    steps = [(label, funnel[key]) for key, label in STEPS if funnel.get(key) is not None]
    top = max([n or 0 for _, n in steps] + [1])
    height, bar_max = 40, 310
    rows = []
    for i, (label, n) in enumerate(steps):
        y, width = i * height + 6, round(bar_max * (n or 0) / top)
        rows.append(
            f'<text x="0" y="{y + 21}" font-size="17" font-weight="600">{escape(label)}</text>'
            f'<rect x="110" y="{y}" width="{max(width, 2)}" height="28" fill="{BAR_COLOURS[i]}" '
            'stroke="#000" stroke-width="1"/>'
            f'<text x="{118 + max(width, 2)}" y="{y + 21}" font-size="18" font-weight="700">'
            f"{_n(n)}</text>"
        )
    total = len(steps) * height + 8
    return (
        "<h3>Funnel</h3>"
        f'<svg role="img" aria-label="funnel" width="480" height="{total}" '
        f'viewBox="0 0 480 {total}" font-family="system-ui,sans-serif">{"".join(rows)}</svg>'
    )


def _failures(rule: str, problems: dict[str, int]) -> str:
    if not problems:
        return "<h3>Failures</h3><p>None.</p>"
    rows = []
    for key, n in problems.items():
        status, _, code = key.partition(":")
        rows.append(
            f"<tr><td>{escape(status)}</td><td>{escape(code)}</td><td class=n>{_n(n)}</td>"
            f"<td>{escape(meaning(code))}</td>"
            f"<td>{escape(ADVICE.get(code, _default(rule)).replace('RULE', rule))}</td></tr>"
        )
    return (
        "<h3>Failures by reason</h3><table><tr><th>Status</th><th>Code</th><th>Records</th>"
        f"<th>Meaning</th><th>What to do</th></tr>{''.join(rows)}</table>"
    )


def meaning(code: str) -> str:
    """A failure code in plain words: ours (messaging.alerts), Twilio's, or say it is unknown."""
    if code in REASONS:
        return REASONS[code]
    if code.isdigit():
        return describe_error(code) if int(code) in ERROR_TEXT else f"Twilio error {code}"
    return "no reason recorded" if code == "unknown" else f"code {code}"


def _default(rule: str) -> str:
    return f"read the record's {rule}_error_message in REDCap; {_REQUEUE}"


def _waiting(rule: dict[str, Any]) -> str:
    waiting, total = rule["waiting"], rule["waiting_total"]
    if not waiting:
        return "<h3>Waiting</h3><p>Nobody is waiting.</p>"
    doing = {
        "registered": "due, to be sent",
        "sending": "being sent",
        "sms_sent": "sent, delivery report awaited",
    }
    rows = "".join(
        f"<tr><td>{escape(w['record'])}</td><td>{escape(doing.get(w['status'], w['status']))}"
        f"</td><td class=n>{escape(human(w['minutes'])) if w['minutes'] is not None else '?'}"
        "</td></tr>"
        for w in waiting
    )
    more = f"<p>and {total - len(waiting)} more.</p>" if total > len(waiting) else ""
    return (
        f"<h3>Waiting ({_n(total)})</h3><table><tr><th>Record</th><th>For</th>"
        f"<th>How long</th></tr>{rows}</table>{more}"
    )
