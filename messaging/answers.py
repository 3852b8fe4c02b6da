"""Auto-answers to replies ("Thank you, your visit is confirmed") as a rule of their own.

A rule with ``answer_<answer>`` templates gets a companion rule ``<rule>_answer`` whose fields
(``<rule>_answer_status``, ``_sms_claimed_at``, ``_sms_sid``, ``_sms_ref``...) are an ordinary
rule's. The reply poller records a reply and, in the same import, sets the companion's status
to ``registered``; from there the sender sends it through the one claim -> send -> record path,
reconciliation included, so each auto-answer goes at most once and is never lost. The companion
has no ``when`` of its own (the detector and ``admin baseline`` leave it alone); its text is
chosen by the reply's meaning (``R_reply``) and it goes to the number the reply came from (the
rule's ``R_sms_to``).
"""

from __future__ import annotations

from collections.abc import Iterable

from messaging.fields import RuleFields
from messaging.rules import RULES_FORM, Rule

SUFFIX = "_answer"


def answer_rule(rule: Rule) -> Rule:
    """The companion that sends ``rule``'s auto-answers."""
    fields = [rule.fields.reply, rule.fields.to]
    for templates in rule.answers.values():
        fields += [*templates.fields, *templates.language_fields]
    return Rule(
        name=rule.name + SUFFIX,
        when="",
        templates=next(iter(rule.answers.values())),
        # A failed auto-answer is a problem for the staff digests too.
        fields=RuleFields(rule.name + SUFFIX, RULES_FORM, alerts=rule.fields.alerts),
        event=rule.event,
        read=tuple(dict.fromkeys(fields)),
        answers=rule.answers,
        answer_of=rule.name,
        reply_field=rule.fields.reply,
        to_field=rule.fields.to,
    )


def expanded(rules: Iterable[Rule]) -> tuple[Rule, ...]:
    """``rules`` and, after each rule with auto-answers, its companion: every rule the sender
    sends for and every set of fields the project needs."""
    out: list[Rule] = []
    for rule in rules:
        out.append(rule)
        if rule.answers:
            out.append(answer_rule(rule))
    return tuple(out)
