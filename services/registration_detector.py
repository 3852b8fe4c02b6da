"""Rule detector: marks each record a rule newly applies to ``registered`` in the rule's status,
and gives study IDs.

For the built-in rule that is "registration complete" (today's behaviour); for a RULES_FILE, each
rule's ``when``, and each study ID rule's (``[[assign]]``: the record gets its ID, see
:mod:`messaging.assign`; the detector then holds the project's ``assign`` lock). One cycle is one
filtered REDCap export for all rules together (a sweep every SWEEP_MINUTES; between sweeps a
change probe of the records changed since the last cycle, :mod:`messaging.probes`) and, when
there is something new, one batched import per rule. A rule whose ``when`` reads the clock
(``today``, ``now``) is found true at sweeps, or every cycle with ``check_every_cycle = true``.
The runaway guard refuses to touch more than ``MAX_NEW_PER_CYCLE`` records for
one rule at once: that many usually means a rule was added to (or the pipeline pointed at) a
project with history and ``admin baseline`` was never run.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from common import logs
from common.lock import ASSIGNER
from common.pipeline import Status
from common.runner import CycleResult
from messaging.assign import assign
from messaging.context import Context, serve
from messaging.due import newly_true
from messaging.records import write
from messaging.rules import BUILTIN, Rule


def run_once(ctx: Context) -> CycleResult:
    result = CycleResult()
    limit = ctx.settings.max_new_per_cycle
    rules = {rule.name: rule for rule in ctx.rules.written}
    ids = {rule.name: rule for rule in ctx.rules.assign}
    for name, new in newly_true(ctx, ctx.rules.triggers, ctx.watch).items():
        if len(new) > limit:
            result.add("held_by_runaway_guard", len(new))
            now = ctx.clock.now()
            for record in new:  # unmarked, so unchanged: the next probes ask about them again
                ctx.watch.note(name, record, now)
            what = "new registrations" if name == BUILTIN else f"records newly matching rule {name}"
            baseline = "baseline" if name == BUILTIN else f"baseline --rule {name}"
            result.problem = (
                f"runaway guard: {len(new)} {what} in one cycle (MAX_NEW_PER_CYCLE={limit}); "
                f"none were marked. If these records predate go-live run "
                f"'.venv/bin/python -m services.admin {baseline}'; if this is a real burst, raise "
                "MAX_NEW_PER_CYCLE"
            )
            continue
        if name in ids:
            assign(ctx, ids[name], new, result)
        else:
            mark(ctx, rules[name], new, result)
    return result


def mark(ctx: Context, rule: Rule, record_ids: Sequence[str], result: CycleResult) -> None:
    """Write ``registered`` + time in ``rule``'s fields (batched; a refused row is flagged)."""
    f = rule.fields
    values = {f.status: Status.REGISTERED, f.registered_at: ctx.stamp(f.registered_at)}
    rows = [ctx.layout.row(rid, values, rule.event) for rid in record_ids]
    refused = write(ctx, rule, rows)
    for rid in record_ids:
        if rid not in refused:
            logs.transition(ctx.log, rid, "", Status.REGISTERED, rule=rule.name)
            result.add("registered")


def start(ctx: Context, args: argparse.Namespace) -> str:
    """Hold the project's ``assign`` lock when the study gives IDs: one assigner per project."""
    return ASSIGNER if ctx.rules.assign else ""


def main(argv: Sequence[str] | None = None) -> int:
    return serve(
        "registration_detector",
        __doc__,
        argv,
        run_once,
        needs_twilio=False,
        start=start,
        probes=True,
    )


if __name__ == "__main__":
    raise SystemExit(main())
