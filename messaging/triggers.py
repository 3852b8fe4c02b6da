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
    """Per rule name, the records whose ``when`` holds and whose status is blank.

    The export spans every event: a rule's own event may hold no data for a record yet (REDCap
    exports no row for it), while the row where ``when`` holds is elsewhere. The filter does
    all the choosing (the rule's status is event-qualified), so any row names a candidate.
    """
    key = ctx.layout.record_id_field
    classic = ctx.layout.event is None  # one row per record: its statuses come along
    fields = [key, *(rule.fields.status for rule in rules)] if classic else [key]
    rows = ctx.redcap.export(fields, any_of([new_logic(ctx, rule) for rule in rules]))
    candidates = list(dict.fromkeys(row[key] for row in rows))
    if not candidates:
        return {}
    if len(rules) == 1:
        return {rules[0].name: candidates}
    found: dict[str, list[str]] = {}
    for rule in rules:
        open_ = [r[key] for r in rows if not r.get(rule.fields.status)] if classic else candidates
        if not open_:
            continue  # the rule already holds a status for every candidate: nothing to ask
        confirmed = ctx.redcap.export([key], new_logic(ctx, rule), records=open_)
        if confirmed:
            found[rule.name] = list(dict.fromkeys(row[key] for row in confirmed))
    return found
