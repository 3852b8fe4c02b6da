"""Reading and writing one rule's records: the fields a rule's work needs, its rows of an
export (in its event, completed from REDCAP_EVENT where it lives elsewhere), and batched imports
whose refusals are flagged on the rule's status. Shared by every service."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from common.runner import Context
from common.writes import write_rows
from messaging.replies import OPT_OUT
from messaging.rows import RuleRow
from messaging.rules import Rule


def rule_fields(rules: Iterable[Rule]) -> list[str]:
    """Every field of these rules, and every field their templates, anchors and languages read."""
    names: list[str] = []
    for rule in rules:
        names += list(rule.fields.kinds()) + list(rule.read)
    return names


def export_fields(ctx: Context, rules: Iterable[Rule] | None = None) -> list[str]:
    """What the sender reads: the record id, the rules' fields and reads, the address fields."""
    chosen = list(ctx.rules if rules is None else rules)
    names = [ctx.layout.record_id_field, *rule_fields(chosen), *address_fields(ctx, chosen)]
    return list(dict.fromkeys(names))


def address_fields(ctx: Context, rules: Iterable[Rule]) -> list[str]:
    """The phone fields and (when a rule sends e-mail) the e-mail fields these rules read, and
    the record's opt-out flag where the project has it."""
    chosen = list(rules)
    names = list(ctx.layout.phone_fields) if any(r.sends_sms for r in chosen) else []
    if any(r.sends_email for r in chosen):
        names += ctx.layout.email_fields
    if ctx.layout.opt_out:
        names.append(OPT_OUT)
    return names


def rows_for(ctx: Context, rule: Rule, raw: Iterable[Mapping[str, str]]) -> list[RuleRow]:
    """The exported rows that hold ``rule``'s fields (its event, on longitudinal projects)."""
    key, event = ctx.layout.record_id_field, ctx.layout.event_for(rule.event)
    return [
        RuleRow(rule, r[key], dict(r))
        for r in raw
        if event is None or r.get("redcap_event_name") == event
    ]


def with_home_values(ctx: Context, rows: Sequence[RuleRow]) -> list[RuleRow]:
    """Rows of a rule in another event than REDCAP_EVENT, completed with the phone and the
    fields the rule reads from REDCAP_EVENT (where registration lives), where its own event
    leaves them blank: one export for the records in hand."""
    if not rows or ctx.layout.event_for(rows[0].rule.event) == ctx.layout.event:
        return list(rows)
    rule, key = rows[0].rule, ctx.layout.record_id_field
    wanted = [key, *address_fields(ctx, [rule]), *rule.read]
    home = {
        r[key]: r
        for r in ctx.redcap.export(
            list(dict.fromkeys(wanted)),
            records=[row.record_id for row in rows],
            events=[ctx.layout.event] if ctx.layout.event else None,
        )
    }
    completed = []
    for row in rows:
        values = dict(row.values)
        for name, value in home.get(row.record_id, {}).items():
            if value and not values.get(name):
                values[name] = value
        completed.append(RuleRow(rule, row.record_id, values))
    return completed


def write(
    ctx: Context, rule: Rule, rows: Sequence[dict[str, str]], *, overwrite: bool = False
) -> set[str]:
    """Batched import of one rule's rows; REDCap's refusals flag the rule's status."""
    return write_rows(ctx.redcap, ctx.layout, rows, rule.fields, overwrite=overwrite)


def values_row(ctx: Context, row: RuleRow, values: Mapping[str, str]) -> dict[str, str]:
    """An import row for ``row``'s record with ``values``, in its rule's event."""
    return ctx.layout.row(row.record_id, values, row.rule.event)
