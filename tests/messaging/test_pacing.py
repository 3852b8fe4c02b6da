"""SendPacer on a ManualClock: the window promise whatever the request durations, the rate it
costs, even spacing, fractional rates, failures and clocks that go back. Nothing sleeps."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from common.clock import ManualClock
from messaging.pacing import SendPacer
from sandbox.twilio.arrivals import busiest_window

START = datetime(2026, 3, 2, 12, 0, 0, tzinfo=UTC)
US = 1_000_000  # times are kept in whole microseconds, ManualClock's resolution: exact sums


class Run:
    """Drives a pacer like send_batch does; each "request" takes ``latency`` clock seconds.
    ``starts`` and ``ends`` are microseconds since START."""

    def __init__(self, per_second: float) -> None:
        self.clock = ManualClock(START)
        self.pacer = SendPacer(per_second, self.clock)
        self.starts: list[int] = []
        self.ends: list[int] = []

    def now(self) -> int:
        return (self.clock.now() - START) // timedelta(microseconds=1)

    def send(self, latency: float = 0.0) -> None:
        with self.pacer.paced():
            self.starts.append(self.now())
            self.clock.advance(latency)
            self.ends.append(self.now())


@pytest.mark.parametrize("per_second", [1, 4, 10, 30])
@pytest.mark.parametrize("seed", range(5))
def test_no_window_exceeds_the_rate_whatever_the_request_durations(
    per_second: int, seed: int
) -> None:
    """With random durations (0-800 ms, some long stalls) and each create reaching Twilio at any
    point of its request, no 1-second window holds more than N creates."""
    rng = random.Random(seed)
    run = Run(per_second)
    arrivals = []
    for _ in range(300):
        latency = rng.choice([0.0, 0.001, 0.05, rng.uniform(0, 0.8), rng.uniform(0, 3)])
        run.send(latency)
        # Worst cases included: the arrival at the very start or the very end of the request.
        start, end = run.starts[-1], run.ends[-1]
        arrivals.append(start + round((end - start) * rng.choice([0.0, 1.0, rng.random()])))
    assert busiest_window(arrivals, 1 * US) <= per_second


def test_arrival_at_end_then_at_start_is_still_a_second_apart() -> None:
    """The worst case start-spacing cannot handle: a slow create arriving at its end, then N
    fast ones arriving at their start, stay in separate 1-second windows."""
    run = Run(2)
    run.send(latency=0.9)  # arrives at 0.9
    run.send()
    run.send()  # the third create must not arrive before 0.9 + 1
    assert run.starts[2] >= run.ends[0] + 1 * US


@pytest.mark.parametrize(("per_second", "latency"), [(1, 0.2), (4, 0.1), (10, 0.05), (10, 0.0)])
def test_rate_is_n_per_one_second_plus_a_latency(per_second: int, latency: float) -> None:
    """With a steady latency L, each N sends take exactly 1 s + L: the promise costs one round
    trip per window, no more."""
    run = Run(per_second)
    for _ in range(per_second * 10 + 1):
        run.send(latency)
    assert run.starts[-1] - run.starts[0] == round(10 * (1.0 + latency) * US)


def test_sends_are_spread_evenly_not_burst() -> None:
    """At N=4 with instant requests the starts are 0.25 s apart, not four at once then a wait."""
    run = Run(4)
    for _ in range(9):
        run.send()
    gaps = [b - a for a, b in zip(run.starts, run.starts[1:], strict=False)]
    assert gaps == [US // 4] * 8


def test_first_send_and_a_send_after_a_pause_go_at_once() -> None:
    """Nothing waits without a reason: the first send, and the first after an idle pause longer
    than the window (the next cycle's), start immediately."""
    run = Run(4)
    run.send()
    assert run.starts == [0]
    run.clock.advance(5)
    run.send()
    assert run.starts[1] == 5 * US


def test_pacing_spans_calls_like_chunks_and_cycles() -> None:
    """The pacer remembers the last N sends: a send right after the previous batch still waits
    for its turn."""
    run = Run(2)
    run.send(0.3)
    run.send(0.3)
    run.clock.advance(0.1)  # the next chunk's claim import
    run.send()
    assert run.starts[2] == run.ends[0] + 1 * US


def test_a_create_that_raised_still_counts() -> None:
    """A rejected or timed-out create may have reached Twilio: its end is noted all the same."""
    run = Run(1)

    def timed_out() -> None:
        with run.pacer.paced():
            run.clock.advance(0.4)
            raise TimeoutError

    with pytest.raises(TimeoutError):
        timed_out()
    run.send()
    assert run.starts == [round(1.4 * US)]


@pytest.mark.parametrize(
    ("per_second", "most", "window"),
    [(2.5, 2, 1.0), (0.5, 1, 2.0), (1.5, 1, 1.0), (0.01, 1, 100.0)],
)
def test_fractional_rates_keep_the_cap(per_second: float, most: int, window: float) -> None:
    """A fraction above 1 is rounded down (2.5 sends at most 2 a second); below 1 it spaces
    single sends (0.5: one every 2 s)."""
    run = Run(per_second)
    for _ in range(20):
        run.send(0.01)
    assert (run.pacer.burst, run.pacer.window) == (most, pytest.approx(window))
    assert busiest_window(run.starts, 1 * US) <= most
    assert busiest_window(run.ends, round(window * US)) <= most


def test_a_clock_that_goes_back_waits_at_most_one_window() -> None:
    """If the injected clock is set back an hour, the next send waits one window, not an hour."""
    run = Run(1)
    run.send()
    run.clock.advance(-3600)
    before = run.now()
    run.send()
    assert run.starts[1] - before == 1 * US


def test_rejects_a_rate_of_zero() -> None:
    """A pacer needs a positive rate (Settings already refuses less than 0.01)."""
    with pytest.raises(ValueError, match="positive"):
        SendPacer(0, ManualClock(START))
