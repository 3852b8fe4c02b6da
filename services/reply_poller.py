"""Reply poller: records participants' texts back (YES / NO / STOP ...) in REDCap, without a
public webhook.

One cycle lists the inbound messages of the last REPLY_LOOKBACK_HOURS from Twilio and records
each new one on the record and rule it answers (:mod:`messaging.inbound`); auto-answers are
queued for the sender. Idle, a cycle is one Twilio request, plus one REDCap request when the
window holds messages. One poller runs per project (an OS lock).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

from common.errors import ConfigError
from common.lock import ProcessLock
from common.runner import Context, CycleResult, run_service
from messaging.inbound import poll, reply_rules


def run_once(ctx: Context) -> CycleResult:
    result = CycleResult()
    for key, n in poll(ctx, ctx.clock.now()).items():
        result.add(key, n)
    return result


def poller_lock(ctx: Context) -> ProcessLock:
    name = f"redcap-relay-replies-{ctx.layout.project_id}"
    return ProcessLock(ctx.settings.lock_dir, name, holder="reply poller")


def main(argv: Sequence[str] | None = None) -> int:
    held: list[ProcessLock] = []

    def release() -> None:
        for lock in held:
            lock.release()

    def prepare(ctx: Context, args: argparse.Namespace) -> Callable[[], None]:
        if not reply_rules(ctx):
            raise ConfigError(
                "no rule takes replies; add replies.<answer> = [...] to a rule in RULES_FILE "
                "(README: Replies and opt-out)"
            )
        held.append(poller_lock(ctx).acquire())
        return release

    return run_service(
        "reply_poller",
        "Record participants' replies (YES / NO / STOP) in REDCap.",
        argv,
        run_once,
        needs_twilio=True,
        prepare=prepare,
    )


if __name__ == "__main__":
    raise SystemExit(main())
