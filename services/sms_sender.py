"""SMS sender: texts each ``registered`` participant their survey link once the delay has passed.

One cycle: one filtered export of ``registered`` and ``sending`` records; reconcile stale
``sending`` claims; then, outside quiet hours, claim -> send -> record in chunks, rate limited.
Only one sender may run per project (an OS lock). ``--dry-run`` (or ``DRY_RUN=1``) logs what it
would send, masked, and changes nothing.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from datetime import timedelta

from common import pipeline
from common.lock import ProcessLock
from common.phones import mask_phone
from common.pipeline import PipelineRow, Status
from common.runner import Context, CycleResult, run_service
from messaging.pacing import SendPacer
from messaging.reconcile import reconcile
from messaging.send import (
    batches,
    claim,
    export_fields,
    prepare,
    record_problems,
    send_batch,
    to_rows,
)

WORK_LOGIC = (
    f"[{pipeline.STATUS}] = '{Status.REGISTERED}' or [{pipeline.STATUS}] = '{Status.SENDING}'"
)


class Sender:
    """Per-process state that is not pipeline state: the send pacer and the dry-run flag."""

    def __init__(self, dry_run: bool) -> None:
        self.dry_run = dry_run
        self.pacer: SendPacer | None = None  # one for the process: the rate spans cycles

    def run_once(self, ctx: Context) -> CycleResult:
        result = CycleResult()
        if self.pacer is None:
            self.pacer = SendPacer(ctx.settings.sms_max_per_second, ctx.clock)
        rows = to_rows(
            ctx, ctx.redcap.export(export_fields(ctx), WORK_LOGIC, events=ctx.layout.events)
        )
        sending = [r for r in rows if r.status == Status.SENDING]
        registered = [r for r in rows if r.status == Status.REGISTERED]
        if sending and not self.dry_run:
            for outcome, n in reconcile(ctx, sending).items():
                result.add(f"reconcile_{outcome}", n)
        due, waiting = split_due(ctx, registered)
        if waiting:
            result.add("waiting_delay", len(waiting))
        if not due:
            return result
        quiet = ctx.settings.quiet_hours
        if quiet and quiet.contains(ctx.clock.now().astimezone(ctx.settings.timezone).time()):
            result.add("waiting_quiet_hours", len(due))
            return result
        if self.dry_run:
            self._dry_run(ctx, due, result)
            return result
        self.send(ctx, due, result, ctx.stop.is_set)
        return result

    def send(
        self,
        ctx: Context,
        due: Sequence[PipelineRow],
        result: CycleResult,
        should_stop: Callable[[], bool],
    ) -> None:
        """Chunk by chunk: prepare, record problems, claim, send, record."""
        assert self.pacer is not None
        for group in batches(due):
            if should_stop():
                break
            ready, problems = prepare(ctx, group)
            if problems:
                record_problems(ctx, problems)
                for _, exc in problems:
                    result.add(f"not_sent_{exc.code}")
            claimed = claim(ctx, ready) if ready else []
            counts = send_batch(ctx, claimed, self.pacer, should_stop)
            for key, n in counts.items():
                result.add(key, n)
            if counts.get("deferred") or counts.get("unknown"):
                break  # Twilio is struggling: leave the rest for the next cycle

    def _dry_run(self, ctx: Context, due: Sequence[PipelineRow], result: CycleResult) -> None:
        ready, problems = prepare(ctx, due)
        for p in ready:
            ctx.log.info(
                "dry-run: would send record=%s to=%s (%d characters)",
                p.row.record_id,
                mask_phone(p.to),
                len(p.body),
            )
        for row, exc in problems:
            ctx.log.info("dry-run: would mark record=%s not sent: %s", row.record_id, exc.code)
        result.add("dry_run_would_send", len(ready))
        if problems:
            result.add("dry_run_would_skip", len(problems))


def split_due(
    ctx: Context, rows: Sequence[PipelineRow]
) -> tuple[list[PipelineRow], list[PipelineRow]]:
    """(due now, still inside SMS_DELAY_MINUTES) by ``pipeline_registered_at``."""
    now = ctx.clock.now()
    delay = timedelta(seconds=ctx.settings.sms_delay_seconds)
    due: list[PipelineRow] = []
    waiting: list[PipelineRow] = []
    for row in rows:
        registered = row.time(pipeline.REGISTERED_AT, ctx.settings.timezone)
        (waiting if registered is not None and now < registered + delay else due).append(row)
    return due, waiting


def main(argv: Sequence[str] | None = None) -> int:
    sender = Sender(dry_run=False)
    lock: list[ProcessLock] = []

    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="log what would be sent (masked); send and write nothing",
        )

    def release() -> None:
        for held in lock:
            held.release()

    def prepare_run(ctx: Context, args: argparse.Namespace) -> Callable[[], None]:
        sender.dry_run = bool(args.dry_run or ctx.settings.dry_run)
        if sender.dry_run:
            ctx.log.info("dry run: nothing will be sent or written")
        else:
            lock.append(sender_lock(ctx).acquire())
        return release

    return run_service(
        "sms_sender",
        "Send each registered participant their survey link by SMS.",
        argv,
        sender.run_once,
        needs_twilio=True,
        needs_survey=True,
        add_arguments=add_arguments,
        prepare=prepare_run,
    )


def sender_lock(ctx: Context) -> ProcessLock:
    """The lock every sending process (this service, ``admin force``) takes for the project."""
    return ProcessLock(ctx.settings.lock_dir, f"redcap-relay-sender-{ctx.layout.project_id}")


if __name__ == "__main__":
    raise SystemExit(main())
