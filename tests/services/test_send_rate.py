"""SMS_MAX_PER_SECOND as Twilio sees it: the real sender, the real clock, arrival times at the
simulator. The one test in the suite that lets real time pass (about 4 s); its bounds are loose
so a loaded machine cannot make it flaky, and the timing figures live in bench/send_rate.py."""

from __future__ import annotations

from messaging.context import build_context
from sandbox.twilio.arrivals import achieved_rate, busiest_window
from services import registration_detector
from services.sms_sender import Sender
from tests.services.conftest import Rig

RATE = 4


def test_no_second_at_twilio_holds_more_than_the_rate_across_chunks_and_cycles(rig: Rig) -> None:
    """16 sends at SMS_MAX_PER_SECOND=4, over two chunks and two cycles of one sender: no 1-second
    window at Twilio holds more than 4 creates, and the rate is not far below 4."""
    ctx = build_context(
        rig.settings(SMS_MAX_PER_SECOND=str(RATE), SMS_DELAY_MINUTES="0"),
        needs_twilio=True,
        needs_survey=True,
    )  # no clock given: the real one
    sender = Sender(dry_run=False)
    first, second = range(1, 13), range(13, 17)  # 10 + 2 in cycle one, 4 in cycle two
    for batch in (first, second):
        for n in batch:
            rig.register(str(n), f"61755501{n:02d}")
        registration_detector.run_once(ctx)
        assert sender.run_once(ctx).counts["sent"] == len(batch)
    times = [a.monotonic for a in rig.twilio.arrivals()]
    assert len(times) == 16
    assert busiest_window(times) <= RATE
    assert achieved_rate(times) >= RATE / 2  # a sanity floor, not a benchmark
