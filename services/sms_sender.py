"""SMS sender: sends each rule's message to each record it is due for, once.

One cycle: one filtered export of every rule's work (:func:`messaging.due.work`: a sweep, or
between sweeps a change probe, :mod:`messaging.probes`); per rule,
reconcile stale ``sending`` claims, mark ``expired`` what is too late, then, outside quiet hours,
ask REDCap whose ``stop_when`` holds (``cancelled``) and send the rest
(:func:`messaging.send.send_due`); a channel Twilio's or Graph's trouble holds back waits, the
other goes on (:mod:`messaging.outages`). Last, with ALERT_EMAIL_TO set, the staff alert digest
(:mod:`messaging.alerts`), read from the same export. With CONVERSATION_LOG=1 the same export
also finds the messages staff typed in REDCap to send (:mod:`messaging.staff`). Only one sender
may run per project (an OS lock). ``--dry-run`` (or ``DRY_RUN=1``) logs what it would send,
masked, and changes nothing.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import datetime

from common.lock import SENDER
from common.runner import CycleResult
from messaging import conversation
from messaging.alerts import Digests
from messaging.context import Context, serve
from messaging.due import RuleWork, cancel_stopped, record_expired, work
from messaging.outages import Outages
from messaging.pacing import Pacers
from messaging.reconcile import reconcile
from messaging.records import RuleRow
from messaging.send import outages_for, pacers_for, send_due
from messaging.staff import pending, send_staff


class Sender:
    """Per-process state that is not pipeline state: the send pacers, the channels an outage
    holds back (:mod:`messaging.outages`), the digests verified in Sent Items, and the dry-run
    flag."""

    def __init__(self, dry_run: bool) -> None:
        self.dry_run = dry_run
        self.pacers: Pacers | None = None
        self.outages: Outages | None = None
        self.digests = Digests()

    def run_once(self, ctx: Context) -> CycleResult:
        result = CycleResult()
        if self.pacers is None:
            self.pacers = pacers_for(ctx)
        if self.outages is None:
            self.outages = outages_for(ctx)
        now = ctx.clock.now()
        watch = ctx.watch
        swept = watch.swept_at
        raw, found = work(ctx, now, watch)
        sweep = watch.swept_at != swept or watch.mode == "sweep"
        self._messages(ctx, found, now, result)
        if conversation.enabled(ctx) and not ctx.stop.is_set():
            counts = send_staff(
                ctx, pending(ctx, raw), self.pacers, self.outages, quiet=_quiet(ctx, now),
                dry_run=self.dry_run,
            )  # fmt: skip
            for key, n in counts.items():
                result.add(key, n)
        if not self.dry_run and not ctx.stop.is_set():
            for key, n in self.digests.run(ctx, raw, now, complete=sweep).items():
                result.add(key, n)
            for rule, record in self.digests.held:
                watch.note(rule, record, now)  # a new problem the interval holds: ask again
        return result

    def _messages(
        self, ctx: Context, found: Sequence[RuleWork], now: datetime, result: CycleResult
    ) -> None:
        """Every rule's participant messages this cycle (see the module docstring)."""
        assert self.pacers is not None
        assert self.outages is not None
        near = {
            row.record_id
            for item in found
            for row in (*item.sending, *item.due, *item.waiting, *item.expired)
        }
        for item in found:
            if item.sending and not self.dry_run:
                for outcome, n in reconcile(ctx, item.sending).items():
                    result.add(f"reconcile_{outcome}", n)
            # Waiting rows of the records a filter at now names (a sweep's horizon adds others).
            waiting = [*item.waiting, *(row for row in item.later if row.record_id in near)]
            if waiting:
                result.add("waiting_delay", len(waiting))
            if self.dry_run:
                self._again(ctx, item.due, now)  # nothing is written: ask again next cycle
            if item.expired:
                result.add("expired", len(item.expired))
                if not self.dry_run:
                    record_expired(ctx, item.expired)
        due = [item for item in found if item.due]
        if due and _quiet(ctx, now):
            # Quiet hours hold what we start; an auto-answer answers the participant's own text.
            held = [item for item in due if not item.rule.answer_of]
            if held:
                result.add("waiting_quiet_hours", sum(len(item.due) for item in held))
                for item in held:
                    self._again(ctx, item.due, now)
            due = [item for item in due if item.rule.answer_of]
        for item in due:
            if ctx.stop.is_set():
                break
            if not self.dry_run and all(map(self.outages.holding, item.rule.channels)):
                result.add("waiting_unavailable", len(item.due))  # not even a stop check
                self._again(ctx, item.due, now)
                continue
            going = item.due if self.dry_run else cancel_stopped(ctx, item.due)
            if len(going) < len(item.due):
                result.add("cancelled", len(item.due) - len(going))
            sent = send_due(
                ctx, going, self.pacers, ctx.stop.is_set, outages=self.outages,
                dry_run=self.dry_run,
            )  # fmt: skip
            for key, n in sent.counts.items():
                result.add(key, n)
            if sent.counts.get("waiting_unavailable") or ctx.stop.is_set():
                self._again(ctx, going, now)  # some were held back, unwritten

    @staticmethod
    def _again(ctx: Context, rows: Sequence[RuleRow], now: datetime) -> None:
        """Rows due now that this cycle leaves as they are (no logged change): the next probe
        asks about them again (:mod:`messaging.probes`); those written meanwhile drop out."""
        for row in rows:
            ctx.watch.note(row.rule.name, row.record_id, now)


def _quiet(ctx: Context, now: datetime) -> bool:
    """``now`` is inside QUIET_HOURS (local TIMEZONE)."""
    quiet = ctx.settings.quiet_hours
    return bool(quiet and quiet.contains(now.astimezone(ctx.settings.timezone).time()))


def main(argv: Sequence[str] | None = None) -> int:
    sender = Sender(dry_run=False)

    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="log what would be sent (masked); send and write nothing",
        )

    def start(ctx: Context, args: argparse.Namespace) -> str:
        sender.dry_run = bool(args.dry_run or ctx.settings.dry_run)
        if sender.dry_run:
            ctx.log.info("dry run: nothing will be sent or written")
            return ""  # it writes nothing, so it holds no lock and may run beside the sender
        return SENDER

    return serve(
        "sms_sender",
        __doc__,
        argv,
        sender.run_once,
        needs_twilio=True,
        needs_survey=True,
        needs_mail=True,
        add_arguments=add_arguments,
        start=start,
        probes=True,
    )


if __name__ == "__main__":
    raise SystemExit(main())
