"""The whole pipeline under kill -9 and outside faults (``bench/soak.py``, small): no participant
messaged twice, none lost, no service stopping by itself."""

from __future__ import annotations

from bench.soak import soak


def test_a_small_soak_of_all_four_services_with_faults_doubles_and_loses_no_one() -> None:
    """Eight random kill -9s across the four services, faults at random, both channels: every
    participant texted, mailed and answered once, their YES recorded."""
    result = soak(kills=8, participants=6, seed=16, settle_timeout=120)
    assert (result.duplicates, result.lost, dict(result.exits)) == ([], [], {})
    assert result.kills == 8


def test_an_email_kill_storm_with_sent_items_a_minute_late_mails_no_one_twice() -> None:
    """Sent Items saves each copy 60 s late, the claim timeout is 5 s, the sender is killed six
    times while mailing six participants: each mailed once and recorded ``sent_email`` (the
    copy shows within the grace), or left ``needs_review``; none mailed twice."""
    result = soak(
        kills=6,
        participants=6,
        seed=7,
        lag=60.0,
        victims=("sms_sender",),
        faults=False,
        settle_timeout=120,
        SMS_CLAIM_TIMEOUT_SECONDS="5",
        EMAIL_SENT_ITEMS_GRACE_MINUTES="2",
    )
    assert (result.duplicates, result.lost, dict(result.exits)) == ([], [], {})
    assert result.kills == 6
