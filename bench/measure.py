"""What the benches share: one measured piece of work against the sandbox, and how it is shown.

``timed`` counts what the REDCap simulator saw (requests, bytes it sent back and bytes it was
sent) and the wall time; ``idle_cost`` is the median of a few idle cycles after a warm-up;
``budget`` bounds a whole run; ``size_options`` are the options of a bench by project size.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import signal
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from types import FrameType
from typing import Protocol, TypeVar

from common.runner import CycleResult
from messaging.context import Context
from sandbox.session import Sandbox

IDLE_RUNS = 3
T = TypeVar("T")


class BudgetExceeded(Exception):
    """The run took longer than ``--budget`` seconds."""


@dataclass(frozen=True)
class Cost:
    """What REDCap saw for one measured piece of work."""

    requests: int
    bytes_out: int  # REDCap's answers
    seconds: float
    bytes_in: int = 0  # the requests' bodies


def timed(box: Sandbox, work: Callable[[], object]) -> tuple[Cost, object]:
    box.redcap.server.reset_stats()
    started = time.perf_counter()
    result = work()
    seconds = time.perf_counter() - started
    stats = box.redcap.server.stats
    sent = sum(stats.bytes_in.values())
    return Cost(stats.total_requests(), sum(stats.bytes_out.values()), seconds, sent), result


def median_run(runs: list[tuple[Cost, T]]) -> tuple[Cost, T]:
    """The run of median wall time (``runs`` is odd in length)."""
    middle = statistics.median(cost.seconds for cost, _ in runs)
    return next(run for run in runs if run[0].seconds == middle)


def idle_cost(box: Sandbox, ctx: Context, cycle: Callable[[Context], CycleResult]) -> Cost:
    cycle(ctx)  # warm-up: the first request of a client also opens its connection
    return median_run([timed(box, lambda: cycle(ctx)) for _ in range(IDLE_RUNS)])[0]


def describe(cost: Cost) -> str:
    return f"{cost.requests} req, {cost.bytes_out:,} B out, {cost.seconds * 1000:,.0f} ms"


def size_text(n: float) -> str:
    """Bytes as the table shows them: B, KB or MB (decimal, as network tools count)."""
    if n < 1000:
        return f"{n:.0f} B"
    if n < 1_000_000:
        return f"{n / 1000:.1f} KB"
    return f"{n / 1_000_000:.1f} MB"


def duration(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def machine() -> str:
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return (
        f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}, "
        f"{date.today().isoformat()}; peak memory of the run {peak_mb:,.0f} MB"
    )


class Filled(Protocol):
    @property
    def fill_seconds(self) -> float:
        """How long filling the project took."""
        ...


R = TypeVar("R", bound=Filled)


def run_cases(
    script: str,
    seconds: float,
    cases: Sequence[tuple[str, Callable[[Callable[[str], None]], R]]],
    table: Callable[[list[R]], str],
) -> int:
    """Measure each case (title, measure) within ``seconds`` (``--budget``), printing as it
    goes, then the machine and ``table`` of the results; 1 if the budget ran out first."""
    results: list[R] = []
    try:
        with budget(seconds):
            for title, measure in cases:
                print(title, flush=True)
                result = measure(lambda line: print(line, flush=True))
                print(f"  (filled in {result.fill_seconds:.1f} s)", flush=True)
                results.append(result)
    except BudgetExceeded as exc:
        print(f"{script}: {exc}; the sandbox was stopped", file=sys.stderr)
        return 1
    return report(table(results))


def size_options(doc: str, default: str, option: str = "--sizes") -> argparse.ArgumentParser:
    """The options of a bench measured by project size: the sizes (``option``, comma-separated
    records) and ``--budget``; :func:`sizes_of` reads the sizes."""
    parser = argparse.ArgumentParser(description=doc)
    parser.add_argument(option, default=default, help="project sizes, in records")
    parser.add_argument("--budget", type=float, default=1500, help="seconds before giving up")
    return parser


def sizes_of(text: str) -> list[int]:
    return [int(size) for size in text.split(",")]


def markdown(header: str, rows: Iterable[Sequence[object]]) -> str:
    """A Markdown table, as docs/PERFORMANCE.md holds them; ``header`` names the columns
    between " | "."""
    columns = header.split(" | ")
    lines = ["| " + header + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def report(table: str) -> int:
    """Print the machine the figures were taken on, then the results' table; exit code 0."""
    print()
    print(machine())
    print()
    print(table)
    return 0


@contextmanager
def budget(seconds: float) -> Iterator[None]:
    """Raise :class:`BudgetExceeded` in the block after ``seconds`` (SIGALRM; main thread)."""

    def give_up(signum: int, frame: FrameType | None) -> None:
        raise BudgetExceeded(f"gave up after --budget {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, give_up)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
