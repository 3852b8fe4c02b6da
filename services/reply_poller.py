"""Reply poller: records participants' texts back (YES / NO / STOP ...) in REDCap, without a
public webhook.

One cycle lists the inbound messages of the last REPLY_LOOKBACK_HOURS from Twilio and records
each new one on the record and rule it answers (:mod:`messaging.inbound`); auto-answers are
queued for the sender. Idle, a cycle is one Twilio request, plus one REDCap request when the
window holds messages. One poller runs per project (an OS lock).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from common.errors import ConfigError
from common.lock import REPLIES
from common.runner import CycleResult
from messaging.context import Context, serve
from messaging.inbound import Poller


class ReplyPoller:
    """Per-process memory (not pipeline state): :class:`messaging.inbound.Poller`'s."""

    def __init__(self) -> None:
        self.poller = Poller()

    def run_once(self, ctx: Context) -> CycleResult:
        result = CycleResult()
        for key, n in self.poller.poll(ctx, ctx.clock.now()).items():
            result.add(key, n)
        return result


def run_once(ctx: Context) -> CycleResult:
    """One cycle of a fresh poller (what ``--once`` and the tests run)."""
    return ReplyPoller().run_once(ctx)


def start(ctx: Context, args: argparse.Namespace) -> str:
    """Refuse to poll for a study whose rules take no replies; hold the project's replies lock."""
    if not ctx.rules.replying:
        raise ConfigError(
            "no rule takes replies; add replies.<answer> = [...] to a rule in RULES_FILE "
            "(docs/replies.md)"
        )
    return REPLIES


def main(argv: Sequence[str] | None = None) -> int:
    poller = ReplyPoller()
    return serve("reply_poller", __doc__, argv, poller.run_once, needs_twilio=True, start=start)


if __name__ == "__main__":
    raise SystemExit(main())
