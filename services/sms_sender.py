"""SMS sender: sends each rule's message to each record it is due for, once.

One cycle: one filtered export of every rule's work (:mod:`messaging.work`); per rule, reconcile
stale ``sending`` claims, mark ``expired`` what is too late, then, outside quiet hours, ask REDCap
whose ``stop_when`` holds (``cancelled``) and claim -> send -> record the rest in chunks, paced.
Last, with ALERT_EMAIL_TO set, the staff alert digest (:mod:`messaging.alerts`), read from the
same export. Only one sender may run per project (an OS lock). ``--dry-run`` (or ``DRY_RUN=1``)
logs what it would send, masked, and changes nothing.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from datetime import datetime

from common.lock import ProcessLock
from common.logs import mask_contact
from common.runner import Context, CycleResult, run_service
from messaging.alerts import Digests
from messaging.answers import expanded
from messaging.pacing import Pacers
from messaging.prepare import prepare, record_problems
from messaging.reconcile import reconcile
from messaging.records import export_fields, rows_for
from messaging.rows import RuleRow
from messaging.rules import Rule
from messaging.send import batches, claim, claim_groups, pacers_for, send_batch
from messaging.triggers import export_events
from messaging.work import RuleWork, cancel_stopped, record_expired, sort_rows, work_logic


class Sender:
    """Per-process state that is not pipeline state: the send pacers, the digests verified in
    Sent Items, and the dry-run flag."""

    def __init__(self, dry_run: bool) -> None:
        self.dry_run = dry_run
        self.pacers: Pacers | None = None
        self.digests = Digests()

    def run_once(self, ctx: Context) -> CycleResult:
        result = CycleResult()
        if self.pacers is None:
            self.pacers = pacers_for(ctx)
        now = ctx.clock.now()
        rules = expanded(ctx.rules)
        raw = ctx.redcap.export(
            export_fields(ctx, rules), work_logic(ctx, now, rules), events=export_events(ctx, rules)
        )
        self._messages(ctx, rules, raw, now, result)
        if not self.dry_run and not ctx.stop.is_set():
            for key, n in self.digests.run(ctx, raw, now).items():
                result.add(key, n)
        return result

    def _messages(
        self,
        ctx: Context,
        rules: Sequence[Rule],
        raw: list[dict[str, str]],
        now: datetime,
        result: CycleResult,
    ) -> None:
        """Every rule's participant messages this cycle (see the module docstring)."""
        work: list[RuleWork] = []
        for rule in rules:
            rows = rows_for(ctx, rule, raw)
            if rows:
                work.append(sort_rows(ctx, rows, now))
        for item in work:
            if item.sending and not self.dry_run:
                for outcome, n in reconcile(ctx, item.sending).items():
                    result.add(f"reconcile_{outcome}", n)
            if item.waiting:
                result.add("waiting_delay", len(item.waiting))
            if item.expired:
                result.add("expired", len(item.expired))
                if not self.dry_run:
                    record_expired(ctx, item.expired)
        due = [item for item in work if item.due]
        if not due:
            return
        quiet = ctx.settings.quiet_hours
        if quiet and quiet.contains(now.astimezone(ctx.settings.timezone).time()):
            # Quiet hours hold what we start; an auto-answer answers the participant's own text.
            held = [item for item in due if not item.rule.answer_of]
            if held:
                result.add("waiting_quiet_hours", sum(len(item.due) for item in held))
            due = [item for item in due if item.rule.answer_of]
        for item in due:
            if ctx.stop.is_set():
                break
            if self.dry_run:
                self._dry_run(ctx, item.due, result)
                continue
            going = cancel_stopped(ctx, item.due)
            if len(going) < len(item.due):
                result.add("cancelled", len(item.due) - len(going))
            if not self.send(ctx, going, result, ctx.stop.is_set):
                break  # Twilio is struggling: leave the rest for the next cycle

    def send(
        self,
        ctx: Context,
        due: Sequence[RuleRow],
        result: CycleResult,
        should_stop: Callable[[], bool],
    ) -> bool:
        """One rule's due rows, chunk by chunk: prepare, record problems, claim, send, record.
        False when Twilio is struggling and the cycle should end."""
        assert self.pacers is not None
        for group in batches(due):
            if should_stop():
                return False
            ready, problems = prepare(ctx, group)
            if problems:
                record_problems(ctx, problems)
                for _, exc in problems:
                    result.add(f"not_sent_{exc.code}")
            for part in claim_groups(ctx, ready):
                if should_stop():
                    return False
                counts = send_batch(ctx, claim(ctx, part), self.pacers, should_stop)
                for key, n in counts.items():
                    result.add(key, n)
                if counts.get("deferred") or counts.get("unknown"):
                    return False
        return True

    def _dry_run(self, ctx: Context, due: Sequence[RuleRow], result: CycleResult) -> None:
        ready, problems = prepare(ctx, due)
        for p in ready:
            ctx.log.info(
                "dry-run: would send record=%s rule=%s %s to=%s (%d characters)",
                p.row.record_id,
                p.row.rule.name,
                p.channel,
                mask_contact(p.to),
                len(p.body),
            )
        for row, exc in problems:
            ctx.log.info(
                "dry-run: would mark record=%s rule=%s not sent: %s",
                row.record_id,
                row.rule.name,
                exc.code,
            )
        result.add("dry_run_would_send", len(ready))
        if problems:
            result.add("dry_run_would_skip", len(problems))


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
        "Send each rule's messages (SMS or e-mail) to the records they are due for.",
        argv,
        sender.run_once,
        needs_twilio=True,
        needs_survey=True,
        needs_mail=True,
        add_arguments=add_arguments,
        prepare=prepare_run,
    )


def sender_lock(ctx: Context) -> ProcessLock:
    """The lock every sending process (this service, ``admin force``) takes for the project."""
    return ProcessLock(ctx.settings.lock_dir, f"redcap-relay-sender-{ctx.layout.project_id}")


if __name__ == "__main__":
    raise SystemExit(main())
