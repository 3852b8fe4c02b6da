"""``admin instrument --reports``: REDCap report recipes for the configured rules, with the fields
and filters of each ready to paste into *Create New Report* (redcap/REPORTS.md explains them for
the built-in rule's ``pipeline_*`` fields).

Per rule: its funnel, what needs attention, and what waits too long; for a rule that takes
replies, its replies and the opt-outs; then every rule's status at a glance. On a longitudinal
project (REDCAP_EVENT set) every field in a filter names its event (``[event][field]``), as
REDCap's advanced filter logic needs. The recipes read only the rules' state fields, never a
phone number, an address or a reply's text, so the reports are safe to share with the team.
"""

from __future__ import annotations

from common.pipeline import Status
from messaging import thread
from messaging.replies import OPT_OUT
from messaging.rules import Rule, Rules

ATTENTION = (
    Status.FAILED,
    Status.UNDELIVERED,
    Status.SKIPPED,
    Status.NEEDS_REVIEW,
    Status.UNCONFIRMED,
)
LATE_HOURS = 1  # past its due time by this much, a registered record is waiting too long


def recipes(
    rules: Rules,
    record_id_field: str = "record_id",
    home_event: str = "",
    conversation_log: bool = False,
) -> str:
    """The recipes as text, one block per report; ``home_event`` is REDCAP_EVENT (where the
    opt-out and the conversation log live)."""
    blocks = [
        "REDCap report recipes for these rules (REDCap: Data Exports, Reports, and Stats > "
        "Create New Report; paste each filter into the advanced filter logic)."
    ]
    for rule in rules.every:
        blocks += _rule_blocks(rule, record_id_field)
    if rules.replying:
        blocks.append(
            _block(
                "participants who opted out (replied STOP)",
                [record_id_field, OPT_OUT],
                f"{_ref(home_event, OPT_OUT)} = '1'",
                "",
            )
        )
    if conversation_log:
        blocks += _conversation_blocks(record_id_field, home_event)
    statuses = [rule.fields.status for rule in rules.every]
    blocks.append(_block("all rules at a glance", [record_id_field, *statuses], "", ""))
    return "\n\n".join(blocks) + "\n"


def _rule_blocks(rule: Rule, record_id_field: str) -> list[str]:
    f, event = rule.fields, rule.event
    status = _ref(event, f.status)
    funnel = [f.status, f.registered_at, f.sent_at, f.delivery_status, f.checked_at]
    funnel += [name for name in (f.count, f.channel) if name]
    attention = [*ATTENTION, *([Status.EXPIRED] if rule.anchor else [])]
    blocks = [
        _block(
            f"rule {rule.name}: funnel",
            [record_id_field, *funnel],
            f"{status} <> ''",
            f"order by {f.registered_at}, descending; Stats & Charts on {f.status} draws it",
        ),
        _block(
            f"rule {rule.name}: needs attention",
            [record_id_field, f.status, f.error_code, f.error_message, f.attempts, f.claimed_at],
            " or ".join(f"{status} = '{code}'" for code in attention),
            f"fix the cause, then: .venv/bin/python -m services.admin requeue RECORD "
            f"--rule {rule.name}",
        ),
    ]
    if rule.when:  # an auto-answer waits for no delay: it goes as soon as the reply is read
        blocks.append(
            _block(
                f"rule {rule.name}: waiting too long",
                [
                    record_id_field,
                    f.status,
                    f.registered_at,
                    *([rule.anchor] if rule.anchor else []),
                ],
                f"{status} = '{Status.REGISTERED}' and {_late(rule)}",
                "anything here for long: the sender is stopped, or quiet hours hold it",
            )
        )
    if rule.replies is not None:
        blocks.append(
            _block(
                f"rule {rule.name}: replies",
                [record_id_field, f.reply, f.reply_at],
                f"{_ref(event, f.reply)} <> ''",
                f"{f.reply} holds the meaning ({', '.join(rule.replies.answers)}, unclear, "
                "opted_out, opted_in, help); the text stays in a field the report leaves out",
            )
        )
    return blocks


def _conversation_blocks(record_id_field: str, home_event: str) -> list[str]:
    """The conversation log's two reports: who waits for a person, and the threads."""
    waiting = _ref(home_event, thread.WAITING)
    return [
        _block(
            "conversations waiting for an answer",
            [record_id_field, thread.WAITING],
            f"{waiting} <> ''",
            f"order by {thread.WAITING}, ascending (the longest wait first); open the record's "
            f"{thread.FORM} instances, answer the participant, then blank {thread.WAITING}",
        ),
        _block(
            "conversation threads",
            [record_id_field, *thread.KINDS],
            f"[{thread.SID}] <> ''",
            f"one row per message; order by {record_id_field}, then {thread.AT}. The texts are "
            "participants' own words: share this report only with those who answer them",
        ),
    ]


def _late(rule: Rule) -> str:
    """REDCap logic: the record's message is more than LATE_HOURS past its due time."""
    if rule.anchor:  # signed hours since the anchor, against the (often negative) offset
        hours = round(rule.offset_minutes / 60 + LATE_HOURS, 1)
        return f"datediff({_ref(rule.event, rule.anchor)}, 'now', 'h', true) > {hours:g}"
    hours = round(rule.delay_minutes / 60 + LATE_HOURS, 1)
    return f"datediff({_ref(rule.event, rule.fields.registered_at)}, 'now', 'h') > {hours:g}"


def _ref(event: str, name: str) -> str:
    return f"[{event}][{name}]" if event else f"[{name}]"


def _block(title: str, fields: list[str], logic: str, note: str) -> str:
    lines = [f"== {title}", f"fields: {', '.join(fields)}"]
    lines.append(f"filter: {logic}" if logic else "filter: (none)")
    if note:
        lines.append(f"note:   {note}")
    return "\n".join(lines)
