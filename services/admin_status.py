"""``admin status``: the funnel of every rule, records per status, how many were sent (by SMS
and by e-mail), oldest waiting, problems; for a rule that takes replies, its participants' latest
reply by meaning and its auto-answers sent; how many participants opted out (STOP)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from common.pipeline import Status
from common.runner import EXIT_OK, Context
from messaging.answers import answer_rule
from messaging.replies import HELP, OPT_OUT, OPTED_IN, OPTED_OUT, UNCLEAR
from messaging.rows import RuleRow
from messaging.rules import EMAIL, SMS, Rule
from messaging.send import rows_for
from messaging.triggers import export_events

PROBLEMS = (
    Status.FAILED,
    Status.UNDELIVERED,
    Status.SKIPPED,
    Status.NEEDS_REVIEW,
    Status.UNCONFIRMED,
    Status.EXPIRED,  # a reminder that never went: worth a look; cancelled is stop_when at work
)
# Twilio or Graph took the message: what "sent" counts, whatever became of it after.
SENT = (
    Status.SMS_SENT,
    Status.SENT_EMAIL,
    Status.DELIVERED,
    Status.UNDELIVERED,
    Status.UNCONFIRMED,
)


def funnel(ctx: Context) -> dict[str, Any]:
    """Per rule, the funnel; the first rule's also at the top level (what scripts of the
    single-message version read). One export: every rule's fields, its replies and its
    auto-answers' count, and the record's opt-out."""
    key = ctx.layout.record_id_field
    fields = [key]
    for rule in ctx.rules:
        f = rule.fields
        fields += [f.status, f.registered_at, f.error_code, f.interrupted]
        fields += [f.channel] if f.channel else []
        if rule.replies is not None:
            fields.append(f.reply)
        if rule.answers and (count := answer_rule(rule).fields.count):
            fields.append(count)  # auto-answers sent so far, over every reply
    events = export_events(ctx, ctx.rules)
    if ctx.layout.opt_out:
        fields.append(OPT_OUT)
        if events is not None and ctx.layout.event and ctx.layout.event not in events:
            events.append(ctx.layout.event)  # the opt-out lives in REDCAP_EVENT
    raw = ctx.redcap.export(list(dict.fromkeys(fields)), events=events)
    rules: dict[str, dict[str, Any]] = {}
    for rule in ctx.rules:
        rows = rows_for(ctx, rule, raw)
        rules[rule.name] = _rule_funnel(ctx, rule, rows)
        if rule.replies is not None:
            rules[rule.name]["replies"] = _replies(ctx, rule, rows, raw)
    first = rules[ctx.rules[0].name]
    records = len({row[key] for row in raw})
    return {"records": records, "opted_out": _opted_out(ctx, raw), **first, "rules": rules}


def _opted_out(ctx: Context, raw: list[dict[str, str]]) -> int | None:
    """Participants with relay_opted_out = 1 (in REDCAP_EVENT); None if the project lacks the
    opt-out fields."""
    if not ctx.layout.opt_out:
        return None
    key, home = ctx.layout.record_id_field, ctx.layout.event
    return len(
        {
            row[key]
            for row in raw
            if (home is None or row.get("redcap_event_name") == home)
            and row.get(OPT_OUT, "").strip() == "1"
        }
    )


def _replies(
    ctx: Context, rule: Rule, rows: list[RuleRow], raw: list[dict[str, str]]
) -> dict[str, Any]:
    """The latest reply of each participant (R_reply keeps only the last) by meaning: the
    rule's answers, then unclear and Twilio's keywords, then any other value found; and how
    many auto-answers Twilio took (the companion rule's series count: every answer, not only
    the latest)."""
    assert rule.replies is not None
    said = Counter(row.get(rule.fields.reply) for row in rows if row.get(rule.fields.reply))
    meanings = [*rule.replies.answers, UNCLEAR, HELP, OPTED_OUT, OPTED_IN, *sorted(said)]
    sent = 0
    if rule.answers:
        companion = answer_rule(rule)
        sent = sum(row.sent for row in rows_for(ctx, companion, raw))
    return {
        "by_meaning": {meaning: said.get(meaning, 0) for meaning in dict.fromkeys(meanings)},
        "auto_answers_sent": sent,
    }


def _rule_funnel(ctx: Context, rule: Rule, rows: list[RuleRow]) -> dict[str, Any]:
    counts = Counter(row.status or "(none)" for row in rows)
    errors = Counter(
        f"{row.status}:{row.get(rule.fields.error_code) or 'unknown'}"
        for row in rows
        if row.status in PROBLEMS
    )
    tz = ctx.settings.timezone
    waiting = [
        row.time(rule.fields.registered_at, tz) for row in rows if row.status == Status.REGISTERED
    ]
    oldest = min((w for w in waiting if w is not None), default=None)
    age = (ctx.clock.now() - oldest).total_seconds() / 60 if oldest else None
    codes = [code for code in rule.fields.codes]
    # R_channel is what the last claim used; rules without it (SMS only) send SMS only.
    sent = Counter(row.get(rule.fields.channel) or SMS for row in rows if row.status in SENT)
    return {
        "by_status": {s: counts.get(s, 0) for s in [*codes, "(none)"]},
        "sent": sum(sent.values()),
        "sent_by_channel": {SMS: sent.get(SMS, 0), EMAIL: sent.get(EMAIL, 0)},
        "oldest_waiting_minutes": round(age, 1) if age is not None else None,
        "problems_by_code": dict(sorted(errors.items())),
        # Records whose send a stopped sender (crash, kill -9) interrupted at least once.
        "interrupted_records": sum(row.interrupted > 0 for row in rows),
    }


def command_status(ctx: Context, as_json: bool) -> int:
    data = funnel(ctx)
    if as_json:
        print(json.dumps(data, indent=2))
        return EXIT_OK
    print(f"project {ctx.layout.project_id} ({ctx.layout.title}): {data['records']} records")
    if data["opted_out"] is not None:
        print(f"opted out (replied STOP, or Twilio refused with 21610): {data['opted_out']}")
    for name, rule in data["rules"].items():
        if len(data["rules"]) > 1 or name != "pipeline":
            print(f"rule {name}:")
        _print_rule(rule, ctx.settings.rule(name).sends_email)
    return EXIT_OK


def _print_rule(data: dict[str, Any], sends_email: bool) -> None:
    for status, n in data["by_status"].items():
        print(f"  {status:<13} {n:>6}")
    by = data["sent_by_channel"]
    split = f" (SMS {by[SMS]}, e-mail {by[EMAIL]})" if sends_email else ""
    print(f"sent: {data['sent']}{split}")
    if data["oldest_waiting_minutes"] is not None:
        print(f"oldest waiting to be sent: {data['oldest_waiting_minutes']} minutes")
    if data["interrupted_records"]:
        print(
            f"sends interrupted by a stopped sender: {data['interrupted_records']} record(s) "
            "(failed:interrupted once SMS_MAX_INTERRUPTED is reached; see the sender's log)"
        )
    if data["problems_by_code"]:
        print("problems by reason:")
        for code, n in data["problems_by_code"].items():
            print(f"  {code:<30} {n:>6}")
    if "replies" in data:
        replies = data["replies"]
        said = ", ".join(f"{meaning} {n}" for meaning, n in replies["by_meaning"].items())
        print(f"latest reply per participant: {said}")
        print(f"auto-answers sent: {replies['auto_answers_sent']}")
