"""Where a message goes after it is created, over simulated time (TWILIO_API.md §2.1).

A message gets its whole future at creation: an initial status and a list of :class:`Step` s,
each due a number of simulated seconds after creation. The store applies the steps that are due
whenever someone looks, so the status always reads "as of the clock now" and nothing sleeps.
"""

from __future__ import annotations

from dataclasses import dataclass

from sandbox.twilio.numbers import VALIDITY_EXPIRED, Outcome

FINAL_STATUSES = frozenset(
    {"delivered", "undelivered", "failed", "received", "read", "canceled", "partially_delivered"}
)

Timings = tuple[float, float, float]


@dataclass(frozen=True)
class Step:
    """One status change, due ``after`` simulated seconds from the message's creation."""

    after: float
    status: str
    error_code: int | None = None


def check_timings(timings: Timings) -> Timings:
    """``timings`` (offsets of sending, sent, final) if they make sense, else ValueError."""
    sending, sent, final = timings
    if not 0 <= sending <= sent <= final:
        raise ValueError(f"timings must be 0 <= sending <= sent <= final, got {timings}")
    return timings


def plan(
    outcome: Outcome, timings: Timings, validity_period: int, via_service: bool
) -> tuple[str, list[Step]]:
    """The initial status and the later steps of a new outbound message.

    With a Messaging Service the message starts ``accepted`` and is ``queued`` once a sender is
    chosen. A message still queued when its ValidityPeriod ends fails with 30036 instead of
    being sent; the ``+15005553036`` outcome keeps it queued until that happens.
    """
    sending, sent, final = timings
    initial = "accepted" if via_service else "queued"
    steps: list[Step] = []
    if via_service:
        steps.append(Step(sending / 2, "queued"))
    if outcome == VALIDITY_EXPIRED or validity_period < sending:
        kept = [step for step in steps if step.after < validity_period]
        return initial, [*kept, Step(float(validity_period), "failed", 30036)]
    if outcome.status == "failed":
        return initial, [*steps, Step(sending, "failed", outcome.error_code)]
    steps += [Step(sending, "sending"), Step(sent, "sent")]
    if outcome.status != "sent":
        steps.append(Step(final, outcome.status, outcome.error_code))
    return initial, steps
