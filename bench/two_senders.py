"""Two senders on one project (two hosts): what the claim protocol costs, and that it holds.

Run: ``.venv/bin/python -m bench.two_senders [--rounds 20] [--due 25]``.

1. **Cost per chunk.** One sender, the sandbox, ``--due`` SMS due in one chunk, for
   ``CLAIM_SETTLE_SECONDS`` = 0.5 and = 3 (the default): the wall time of the whole busy cycle,
   of the claim itself (:func:`messaging.claims.take`: read, write, settle, read again) and the
   REDCap requests the claim makes. Before the protocol, a claim was the one import.
2. **It holds.** ``--rounds`` times, ``--due`` participants fall due and two real sender
   processes with separate lock directories (as on two hosts) start together with ``--once``:
   every participant must be texted exactly once. Counts how often they met on a record (one
   found a record the other had claimed, ``claimed_elsewhere``), which is the race the protocol
   is there for.

Prints the Markdown tables of ``docs/PERFORMANCE.md``. Every server and process it starts is
stopped on the way out.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import messaging.send
from bench.measure import budget, machine
from common.settings import Settings
from messaging.context import build_context
from messaging.rules_file import load_study
from sandbox.envfile import write_env
from sandbox.redcap.demo import build_demo_project
from sandbox.redcap.importer import import_rows
from sandbox.rehearsal import add_rule_fields
from sandbox.session import Sandbox
from services import registration_detector
from services.sms_sender import Sender

ROOT = Path(__file__).resolve().parents[1]
RULES = """
[[rule]]
name = "text"
when = "[registration_complete] = '2'"
delay_minutes = 0
template = "Thanks for registering."
"""
SETTINGS = {"SMS_MAX_PER_SECOND": "100", "REDCAP_MAX_PER_MINUTE": "100000", "LOG_LEVEL": "INFO"}


@dataclass
class ChunkCost:
    settle: float
    cycle: float = 0.0
    claim: float = 0.0
    claim_requests: int = 0
    sent: int = 0


@contextmanager
def sandbox() -> Iterator[tuple[Sandbox, Path, Path]]:
    with tempfile.TemporaryDirectory() as tmp:
        rules = Path(tmp) / "rules.toml"
        rules.write_text(RULES, encoding="utf-8")
        project = add_rule_fields(build_demo_project(), load_study(rules, default_event=""))
        with Sandbox(project) as box:
            box.redcap.limiter.per_minute = 0
            yield box, Path(tmp), rules


def arrive(box: Sandbox, env: dict[str, str], first: int, count: int) -> None:
    """``count`` participants register and the detector sees them."""
    rows: list[dict[str, object]] = [
        {
            "record_id": str(n),
            "registration_complete": "2",
            "first_name": "Ada",
            "phone_number": f"+1617555{n:04d}",
        }
        for n in range(first, first + count)
    ]
    import_rows(box.project, rows, overwrite=False, date_format="YMD", now=box.clock.local_naive())
    ctx = build_context(Settings.from_env(env), needs_twilio=False)
    registration_detector.run_once(ctx)


def chunk_cost(settle: float, due: int) -> ChunkCost:
    """One busy cycle of ``due`` SMS with CLAIM_SETTLE_SECONDS = ``settle`` (real clock)."""
    cost = ChunkCost(settle)
    with sandbox() as (box, tmp, rules):
        env = box.settings(
            **SETTINGS, LOCK_DIR=str(tmp), RULES_FILE=str(rules), CLAIM_SETTLE_SECONDS=str(settle)
        )
        arrive(box, env, 1, due)
        ctx = build_context(Settings.from_env(env), needs_twilio=True, needs_survey=True)
        # The claim is a private stage of the send path: timed by wrapping it where the path
        # calls it (a benchmark's probe, never the project's code).
        names = vars(messaging.send)
        real_take = names["take"]

        def take(*args: object, **kwargs: object) -> object:
            before = box.redcap.server.stats.total_requests()
            started = time.perf_counter()
            try:
                return real_take(*args, **kwargs)
            finally:
                cost.claim += time.perf_counter() - started
                cost.claim_requests += box.redcap.server.stats.total_requests() - before

        names["take"] = take
        try:
            started = time.perf_counter()
            result = Sender(dry_run=False).run_once(ctx)
            cost.cycle = time.perf_counter() - started
        finally:
            names["take"] = real_take
        cost.sent = result.counts.get("sent", 0)
    return cost


def race(rounds: int, due: int, say: Callable[[str], None]) -> tuple[int, int, int, int]:
    """Texted participants, duplicates, rounds in which the senders met on a record (both
    read it due before either claimed it) and rounds in which both texted someone."""
    texted = duplicates = met = split = 0
    with sandbox() as (box, tmp, rules):
        env = box.settings(**SETTINGS, LOCK_DIR=str(tmp), RULES_FILE=str(rules))
        envs = []
        for side in ("a", "b"):
            lock = tmp / f"lock-{side}"
            lock.mkdir()
            path = tmp / f".env.{side}"
            write_env(path, {**env, "LOCK_DIR": str(lock)})
            envs.append(path)
        for n in range(rounds):
            arrive(box, env, 1 + n * due, due)
            procs = [
                subprocess.Popen(
                    [sys.executable, "-m", "services.sms_sender", "--once", "--env-file", str(p)],
                    cwd=ROOT,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                for p in envs
            ]
            errs = [proc.communicate(timeout=120)[1] for proc in procs]
            if any(re.search(r"claimed_elsewhere=[1-9]", err) for err in errs):
                met += 1
            if all(re.search(r" sent=[1-9]", err) for err in errs):
                split += 1
            counts = Counter(str(m["to"]) for m in box.twilio.sent())
            texted = len(counts)
            duplicates = sum(1 for c in counts.values() if c > 1)
            say(f"  round {n + 1}: {texted} texted, {duplicates} twice, met in {met} rounds")
    return texted, duplicates, met, split


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.two_senders", description=__doc__)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--due", type=int, default=25)
    parser.add_argument("--budget", type=float, default=900)
    args = parser.parse_args(argv)
    with budget(args.budget):
        costs = [chunk_cost(settle, args.due) for settle in (0.5, 3.0)]
        print(f"two senders, {args.rounds} rounds of {args.due}:")
        texted, duplicates, met, split = race(args.rounds, args.due, print)
    print(f"\n{machine()}\n")
    print(
        f"| CLAIM_SETTLE_SECONDS | busy cycle, {args.due} SMS | the claim | its REDCap requests |"
    )
    print("|---|---|---|---|")
    for c in costs:
        assert c.sent == args.due, c
        print(f"| {c.settle:g} | {c.cycle:.2f} s | {c.claim:.2f} s | {c.claim_requests} |")
    print()
    print(
        "| rounds | participants | texted | texted twice "
        "| rounds they met on a record | rounds both texted |"
    )
    print("|---|---|---|---|---|---|")
    print(
        f"| {args.rounds} | {args.rounds * args.due} | {texted} | {duplicates} | {met} | {split} |"
    )
    return 1 if duplicates or texted != args.rounds * args.due else 0


if __name__ == "__main__":
    sys.exit(main())
