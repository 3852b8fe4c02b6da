"""Which records a rule newly applies to: its ``when`` holds and its status is still blank.

One cycle asks REDCap once for every rule together (an export whose ``filterLogic`` ORs the
rules' conditions), so an idle cycle costs one request whatever the number of rules. Only when
that export names records, and more than one rule could be the reason, does each candidate rule
get one more export (its own condition, restricted to those records) to say which rule holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from common.runner import Context
from messaging.rules import Rule


def ref(ctx: Context, rule: Rule, field: str) -> str:
    """``[field]`` in REDCap logic, qualified with the rule's event on longitudinal projects
    (so a row of another event never stands in for this rule's fields)."""
    event = ctx.layout.event_for(rule.event)
    return f"[{event}][{field}]" if event else f"[{field}]"


def export_events(ctx: Context, rules: Iterable[Rule]) -> list[str] | None:
    """The events holding these rules' fields, for an export; None on classic projects."""
    events = [ctx.layout.event_for(rule.event) for rule in rules]
    chosen = [event for event in dict.fromkeys(events) if event]
    return chosen or None


def any_of(conditions: Sequence[str]) -> str:
    """REDCap logic that holds when any of ``conditions`` does."""
    return " or ".join(f"({condition})" for condition in conditions)


def new_logic(ctx: Context, rule: Rule) -> str:
    return f"({rule.when}) and {ref(ctx, rule, rule.fields.status)} = ''"


def newly_true(ctx: Context, rules: Sequence[Rule]) -> dict[str, list[str]]:
    """Per rule name, the records whose ``when`` holds and whose status is blank."""
    key = ctx.layout.record_id_field
    fields = [key, *(rule.fields.status for rule in rules)]
    rows = ctx.redcap.export(
        fields, any_of([new_logic(ctx, rule) for rule in rules]), events=export_events(ctx, rules)
    )
    found: dict[str, list[str]] = {}
    for rule in rules:
        event = ctx.layout.event_for(rule.event)
        candidates = list(
            dict.fromkeys(
                row[key]
                for row in rows
                if not row.get(rule.fields.status)
                and (event is None or row.get("redcap_event_name") == event)
            )
        )
        if candidates and len(rules) > 1:
            confirmed = ctx.redcap.export(
                [key], new_logic(ctx, rule), records=candidates, events=export_events(ctx, [rule])
            )
            candidates = list(dict.fromkeys(row[key] for row in confirmed))
        if candidates:
            found[rule.name] = candidates
    return found
