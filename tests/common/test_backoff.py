"""Backing off: the waits a failing service earns, and the runner's use of them between cycles."""

from __future__ import annotations

import itertools
import random
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

from common.backoff import CAP, JITTER, RETRY_AFTER_CAP, Backoff
from common.clock import ManualClock
from common.errors import RedcapUnavailable, TwilioUnavailable
from common.runner import CycleResult, run_service
from common.settings import Settings

START = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def test_waits_double_from_the_base_up_to_the_cap_with_upward_jitter_only() -> None:
    backoff = Backoff(10, random.Random(7))
    waits = [backoff.failed() for _ in range(8)]
    for n, wait in enumerate(waits):
        floor = min(CAP, 10 * 2**n)
        assert floor <= wait <= floor * (1 + JITTER)
    backoff.succeeded()
    assert 10 <= backoff.failed() <= 10 * (1 + JITTER)


def test_a_longer_retry_after_is_honoured_and_an_absurd_one_capped() -> None:
    backoff = Backoff(10, random.Random(1))
    assert 600 <= backoff.failed(retry_after=600) <= 600 * (1 + JITTER)
    assert 20 <= backoff.failed(retry_after=1) <= 20 * (1 + JITTER)  # shorter: our own wait
    wait = backoff.failed(retry_after=86_400)
    assert RETRY_AFTER_CAP <= wait <= RETRY_AFTER_CAP * (1 + JITTER)


@dataclass
class _Ctx:
    settings: Settings
    clock: ManualClock
    layout: SimpleNamespace = field(
        default_factory=lambda: SimpleNamespace(project_id="12", event=None)
    )
    stop: threading.Event = field(default_factory=threading.Event)


def test_the_runner_waits_longer_after_each_failed_cycle_and_resets_after_one_that_worked(
    tmp_path: Path,
) -> None:
    """Four cycles cut short by REDCap (then one by Twilio asking for 300 s), one that works,
    one more failure: the gaps double from POLL_INTERVAL_SECONDS, honour the Retry-After, and
    start again from the poll interval after the success."""
    env = tmp_path / ".env"
    env.write_text(
        "REDCAP_API_URL=https://redcap.example.org/api\n"
        "REDCAP_API_TOKEN=0123456789ABCDEF0123456789ABCDEF\nREDCAP_PROJECT_ID=12\n"
        "POLL_INTERVAL_SECONDS=10\n",
        encoding="utf-8",
    )
    env.chmod(0o600)
    clock = ManualClock(START)
    starts: list[float] = []
    outcomes = [
        RedcapUnavailable("down"), RedcapUnavailable("down"), RedcapUnavailable("down"),
        RedcapUnavailable("down"), TwilioUnavailable("429", retry_after=300), None,
        RedcapUnavailable("down"), None,
    ]  # fmt: skip
    ctx_holder: list[_Ctx] = []

    def build(settings: Settings) -> _Ctx:
        ctx_holder.append(_Ctx(settings, clock))
        return ctx_holder[0]

    def run_once(ctx: _Ctx) -> CycleResult:
        starts.append(clock.monotonic())
        outcome = outcomes[len(starts) - 1]
        if len(starts) == len(outcomes):
            ctx.stop.set()
        if outcome is not None:
            raise outcome
        return CycleResult()

    assert run_service("test", "a test service", ["--env-file", str(env)], run_once, build) == 0
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    floors = [10, 20, 40, 80, 300, 10, 10]
    for gap, floor in zip(gaps, floors, strict=True):
        assert floor <= gap <= floor * (1 + JITTER) + 1e-6
