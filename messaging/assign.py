"""Study IDs given out exactly once per record, never the same value on two records: what the
detector does with the records an ID rule (``[[assign]]``, :mod:`messaging.ids`) newly applies
to (its ``when`` holds, its status is blank).

One call, :func:`assign`, for the records in hand:

1. **What they hold.** One export of the ID field and the status, in the rule's event. A value
   already there (staff typed it) is respected: the record becomes ``kept`` and its field is
   never written.
2. **Their group.** One export per group (its ``when``, restricted to those records). No group,
   or more than one: ``skipped``, with the reason.
3. **The highest ID of each group.** One export of the field where it is not blank, in the
   rule's event: its cost grows with the IDs given, not with the project. Read last, just
   before the write; every value counts, typed or given, so the run never repeats one.
4. **The write.** Each record gets the next number of its group and, in the same import row, its
   status ``assigned``, the group and the time. REDCap applies an import whole or not at all
   (REDCAP_API.md §4.3): no record ever holds an ID without its status, nor the reverse.

**kill -9 at any point.** There is no number reserved anywhere but in REDCap, so a crash strands
nothing: the import *is* the claim.

- Dead before the import landed: nothing was written; the records still match, and the next
  cycle (this host or another) reads the same highest IDs and gives them the same numbers. No
  gap, no duplicate.
- Dead after it landed (with or without the answer): the records are ``assigned`` and no longer
  match; their IDs are in the next cycle's highest. A write of several batches that dies half
  way is both cases at once, batch by batch.

So a crash leaves no gap. A gap only ever comes from a person: an ID erased or its record
deleted (REDCap no longer holds it; if it was the group's highest, the next record gets it
again), a hand-typed ID ahead of the run (the run carries on after it), a row REDCap refuses is
flagged ``needs_review`` and its number goes to the next record instead.

**Two processes.** Only one may assign per project: the detector of a study with ID rules holds
the ``assign`` project lock (:func:`common.lock.project_lock`) while it runs, so a second one on
the host exits at start, saying why. A second host after the first died needs nothing from it:
what REDCap holds is all there is. Two hosts at once would both read the same highest and must
never run (as two senders must not); neither can the lock see a person typing an ID between the
read and the write, a window of one cycle's few requests (REDCap has no conditional write). An
ID held by two records anyway is logged, by record id, each time a cycle reads the IDs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from common import logs
from common.errors import RedcapRejected
from common.redcap_client import chunked
from common.runner import CycleResult
from common.writes import BATCH, reason_values
from messaging.context import Context
from messaging.ids import AssignGroup, AssignRule, AssignStatus
from messaging.records import ref, write


@dataclass(frozen=True)
class _Decision:
    """What becomes of one record: a number of ``group`` (``assigned``), the group of the value
    it holds (``kept``), or a status with its reason (``skipped``)."""

    record_id: str
    status: AssignStatus
    group: AssignGroup | None = None
    code: str = ""
    message: str = ""


def assign(ctx: Context, rule: AssignRule, record_ids: Sequence[str], result: CycleResult) -> None:
    """Give each of ``record_ids`` (``rule`` newly applies to them) its ID, or say why not; the
    counts go to ``result`` (``assigned``, ``kept``, ``skipped``, ``needs_review``)."""
    if not record_ids:
        return
    key, f = ctx.layout.record_id_field, rule.fields
    held = _rows_in_event(
        ctx,
        rule,
        ctx.redcap.export(
            [key, rule.field, f.status], records=list(record_ids), events=_events(ctx, rule)
        ),
    )
    decisions: list[_Decision] = []
    open_: list[str] = []
    for rid in dict.fromkeys(record_ids):
        row = held.get(rid, {})
        if row.get(f.status, "").strip():
            continue  # given a status since (by a person): not ours to decide any more
        typed = row.get(rule.field, "").strip()
        if typed:
            match = rule.group_of(typed)
            decisions.append(_Decision(rid, AssignStatus.KEPT, match[0] if match else None))
        else:
            open_.append(rid)
    chosen = _groups(ctx, rule, open_)
    for rid in open_:
        decisions.append(_choose(rule, rid, chosen.get(rid, [])))
    numbers = (
        _next_numbers(ctx, rule)
        if any(d.group and d.status == AssignStatus.ASSIGNED for d in decisions)
        else {}
    )
    _write(ctx, rule, decisions, numbers, result)


def _events(ctx: Context, rule: AssignRule) -> list[str] | None:
    event = ctx.layout.event_for(rule.event)
    return [event] if event else None


def _rows_in_event(
    ctx: Context, rule: AssignRule, rows: Sequence[Mapping[str, str]]
) -> dict[str, Mapping[str, str]]:
    """Record id -> its row in the rule's event (the only row on classic projects)."""
    key, event = ctx.layout.record_id_field, ctx.layout.event_for(rule.event)
    return {row[key]: row for row in rows if event is None or row.get("redcap_event_name") == event}


def _groups(ctx: Context, rule: AssignRule, record_ids: Sequence[str]) -> dict[str, list[str]]:
    """Record id -> the names of the groups whose ``when`` holds for it (one export per group
    with logic; the only group without ``when`` takes every record)."""
    found: dict[str, list[str]] = {rid: [] for rid in record_ids}
    if not record_ids:
        return found
    key = ctx.layout.record_id_field
    for group in rule.groups:
        if not group.when:
            held = set(record_ids)
        else:
            # Every event: the row where the group's logic holds may be another event's.
            held = {
                row[key] for row in ctx.redcap.export([key], group.when, records=list(record_ids))
            }
        for rid in record_ids:
            if rid in held:
                found[rid].append(group.name)
    return found


def _choose(rule: AssignRule, record_id: str, groups: Sequence[str]) -> _Decision:
    if len(groups) == 1:
        return _Decision(record_id, AssignStatus.ASSIGNED, rule.group_named(groups[0]))
    names = ", ".join(group.name for group in rule.groups)
    if not groups:
        return _Decision(
            record_id,
            AssignStatus.SKIPPED,
            code="no_group",
            message=f"no group's when held (groups: {names}); correct the record, then admin "
            f"requeue RECORD --rule {rule.name}",
        )
    return _Decision(
        record_id,
        AssignStatus.SKIPPED,
        code="several_groups",
        message=f"more than one group's when held ({', '.join(groups)}); make the groups' logic "
        f"exclude each other, then admin requeue RECORD --rule {rule.name}",
    )


def _next_numbers(ctx: Context, rule: AssignRule) -> dict[str, int]:
    """Per group, the number after the highest REDCap holds (its start if none): one export of
    the IDs there are, in the rule's event."""
    key = ctx.layout.record_id_field
    rows = _rows_in_event(
        ctx,
        rule,
        ctx.redcap.export(
            [key, rule.field], f"{ref(ctx, rule, rule.field)} <> ''", events=_events(ctx, rule)
        ),
    )
    values = {rid: row.get(rule.field, "").strip() for rid, row in rows.items()}
    _warn_duplicates(ctx, rule, values)
    highest = rule.highest(list(values.values()))
    return {group.name: highest.get(group.name, group.start - 1) + 1 for group in rule.groups}


def _warn_duplicates(ctx: Context, rule: AssignRule, values: Mapping[str, str]) -> None:
    """An ID on two records was typed (or written by a second host): say where, never what."""
    counts = Counter(value for value in values.values() if value)
    for value, n in counts.items():
        if n > 1:
            records = sorted(rid for rid, held in values.items() if held == value)
            ctx.log.warning(
                "rule=%s records %s hold the same %s; correct it by hand in REDCap",
                rule.name,
                ", ".join(records),
                rule.field,
            )


def _write(
    ctx: Context,
    rule: AssignRule,
    decisions: Sequence[_Decision],
    numbers: dict[str, int],
    result: CycleResult,
) -> None:
    """The decisions in batched imports; a number counts as used only once REDCap took its row.
    A batch REDCap refuses is written row by row: a row still refused is ``needs_review`` and
    its number goes to the next record."""
    for batch in chunked(list(decisions), BATCH):
        if ctx.stop.is_set():
            return  # the rest still match: the next cycle gives them their IDs
        trial = dict(numbers)
        planned = [_row(ctx, rule, decision, trial) for decision in batch]
        try:
            ctx.redcap.import_rows([row for row, _ in planned])
        except RedcapRejected:
            for decision in batch:
                trial = dict(numbers)
                row, done = _row(ctx, rule, decision, trial)
                if write(ctx, rule, [row]):
                    result.add(AssignStatus.NEEDS_REVIEW)  # flagged by write(); number unused
                    continue
                numbers.update(trial)
                _done(ctx, rule, done, result)
            continue
        numbers.update(trial)
        for _, done in planned:
            _done(ctx, rule, done, result)


def _row(
    ctx: Context, rule: AssignRule, decision: _Decision, numbers: dict[str, int]
) -> tuple[dict[str, str], _Decision]:
    """The import row of ``decision`` and what it records: an ``assigned`` one takes (and
    advances) its group's next number in ``numbers``, or is ``skipped`` when the group has none
    left. The ID and its status travel in the same row."""
    f = rule.fields
    values = {f.status: str(decision.status), f.assigned_at: ctx.stamp(f.assigned_at)}
    group = decision.group
    if decision.status == AssignStatus.ASSIGNED and group is not None:
        number = numbers[group.name]
        if not group.holds(number):
            decision = _full(rule, decision.record_id, group)
        else:
            numbers[group.name] = number + 1
            values.update({rule.field: group.format(number), f.group: group.name})
    if decision.status == AssignStatus.KEPT:
        values[f.group] = group.name if group else ""
    elif decision.status != AssignStatus.ASSIGNED:
        values.update(reason_values(f, decision.status, decision.code, decision.message))
    return ctx.layout.row(decision.record_id, values, rule.event), decision


def _full(rule: AssignRule, record_id: str, group: AssignGroup) -> _Decision:
    after = next(
        (g.name for g in rule.groups if g.prefix == group.prefix and g.start == group.limit), ""
    )
    return _Decision(
        record_id,
        AssignStatus.SKIPPED,
        code="group_full",
        message=f"group {group.name} has given every number below {group.limit} (where group "
        f"{after} starts); move a group's start, then admin requeue RECORD --rule {rule.name}",
    )


def _done(ctx: Context, rule: AssignRule, decision: _Decision, result: CycleResult) -> None:
    logs.transition(
        ctx.log, decision.record_id, "", decision.status, reason=decision.code, rule=rule.name
    )
    result.add(str(decision.status))
