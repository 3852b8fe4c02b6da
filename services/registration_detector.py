"""Registration detector: marks newly complete registrations ``registered``, with the time.

One cycle is one filtered REDCap export (complete registration, blank ``pipeline_status``) and, when
there is something new, one batched import. The runaway guard refuses to touch more than
``MAX_NEW_PER_CYCLE`` at once: that many "new" registrations usually means the pipeline was pointed
at a project with history and ``admin baseline`` was never run.
"""

from __future__ import annotations

from collections.abc import Sequence

from common import logs, pipeline
from common.runner import Context, CycleResult, run_service
from common.settings import Settings
from common.writes import write_rows


def new_registrations_logic(settings: Settings) -> str:
    """REDCap logic selecting complete registrations with no pipeline status yet."""
    value = settings.registration_complete_value.replace("'", "")
    return f"[{settings.registration_complete_field}] = '{value}' and [{pipeline.STATUS}] = ''"


def find_new(ctx: Context) -> list[str]:
    """Record ids whose registration is complete and whose pipeline status is blank."""
    rows = ctx.redcap.export(
        fields=[ctx.layout.record_id_field, pipeline.STATUS],
        filter_logic=new_registrations_logic(ctx.settings),
        events=ctx.layout.events,
    )
    key = ctx.layout.record_id_field
    return list(dict.fromkeys(row[key] for row in rows if not row.get(pipeline.STATUS)))


def run_once(ctx: Context) -> CycleResult:
    result = CycleResult()
    new = find_new(ctx)
    limit = ctx.settings.max_new_per_cycle
    if len(new) > limit:
        result.add("held_by_runaway_guard", len(new))
        result.problem = (
            f"runaway guard: {len(new)} new registrations in one cycle (MAX_NEW_PER_CYCLE="
            f"{limit}); none were marked. If these records predate go-live run "
            "'python -m services.admin baseline'; if this is a real burst, raise MAX_NEW_PER_CYCLE"
        )
        return result
    mark(ctx, new, result)
    return result


def mark(ctx: Context, record_ids: Sequence[str], result: CycleResult) -> None:
    """Write ``registered`` + time for these records (batched; a refused row is flagged)."""
    values = {
        pipeline.STATUS: pipeline.Status.REGISTERED,
        pipeline.REGISTERED_AT: ctx.stamp(pipeline.REGISTERED_AT),
    }
    refused = write_rows(ctx.redcap, ctx.layout, [ctx.layout.row(r, values) for r in record_ids])
    for rid in record_ids:
        if rid not in refused:
            logs.transition(ctx.log, rid, "", pipeline.Status.REGISTERED)
            result.add("registered")


def main(argv: Sequence[str] | None = None) -> int:
    return run_service(
        "registration_detector",
        "Mark newly complete REDCap registrations as registered.",
        argv,
        run_once,
        needs_twilio=False,
    )


if __name__ == "__main__":
    raise SystemExit(main())
