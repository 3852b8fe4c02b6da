"""Two senders on one project, on different hosts (separate locks): the claim protocol
(:mod:`messaging.claims`) lets only one send each message. Deterministic cases drive one sender
on the manual clock and play the other sender's writes at the exact moment that matters; then
real processes race; ``admin check`` says when another host has been claiming."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta

from common.clock import ManualClock
from messaging.claims import CLAIM_SLOW, take
from messaging.records import export_fields, rows_for
from sandbox.envfile import write_env
from services import registration_detector
from services.sms_sender import Sender
from tests.services.conftest import ROOT, Rig, clean_env

PHONES = [f"+1617555{n:04d}" for n in range(100, 131)]
FAST = {"SMS_DELAY_MINUTES": "0", "SMS_MAX_PER_SECOND": "50"}


def join(rig: Rig, ids: range) -> None:
    for n in ids:
        rig.register(str(n), PHONES[n])
    registration_detector.run_once(rig.ctx(needs_twilio=False))


class _OtherSenderDuringSettle(ManualClock):
    """The manual clock, but while our claim settles another host's claim of ``record`` lands
    (what Fischer's wait is there to see)."""

    def __init__(self, rig: Rig, record: str) -> None:
        super().__init__(rig.clock.now())
        self.rig, self.record, self.done = rig, record, False

    def sleep(self, seconds: float, stop: object = None) -> None:
        if not self.done:
            self.done = True
            self.rig.set(self.record, pipeline_status="sending", pipeline_sms_claim="0f@vm-2")
        super().sleep(seconds)


def test_a_claim_another_host_overwrote_while_it_settled_is_left_to_that_host(rig: Rig) -> None:
    """Our claim of records 1-3 settles; meanwhile another host's claim of record 2 lands: we
    text 1 and 3 only, and leave 2 as that host wrote it."""
    join(rig, range(1, 4))
    rig.advance(61)
    ctx = rig.ctx()
    ctx.clock = _OtherSenderDuringSettle(rig, "2")
    counts = Sender(dry_run=False).run_once(ctx).counts
    assert (counts["sent"], counts["claimed_elsewhere"]) == (2, 1)
    assert [len(rig.sent_to(PHONES[n])) for n in (1, 2, 3)] == [1, 0, 1]
    assert rig.values("2")["pipeline_sms_claim"] == "0f@vm-2"
    assert rig.status("2") == "sending"


def test_a_record_moved_after_the_cycle_read_it_is_not_claimed(rig: Rig) -> None:
    """Between the cycle's export and our claim another host claimed record 1: the read right
    before the claim sees it, and we write nothing to it."""
    join(rig, range(1, 3))
    rig.advance(61)
    ctx = rig.ctx()
    rule = ctx.rules.written[0]
    rows = rows_for(ctx, rule, ctx.redcap.export(export_fields(ctx, [rule])))
    rig.set("1", pipeline_status="sending", pipeline_sms_claim="0f@vm-2")
    claim = {rule.fields.status: "sending"}
    held = take(ctx, rule, [(row, claim) for row in rows])
    assert (held.mine, held.taken) == (["2"], ["1"])
    assert rig.values("1")["pipeline_sms_claim"] == "0f@vm-2"


class _SlowRedcap(ManualClock):
    """A manual clock on which every REDCap round trip seems to take 4 s: more than the
    rig's CLAIM_SETTLE_SECONDS of 0.5 s."""

    def monotonic(self) -> float:
        self.advance(4)
        return super().monotonic()


def test_a_claim_too_slow_to_trust_sends_nothing_then_is_sent_once(rig: Rig) -> None:
    """REDCap took longer than CLAIM_SETTLE_SECONDS to take the claim: nothing is sent, the
    record says why (claim_slow); after the claim timeout it is requeued without an attempt or
    an interruption counted, and sent once."""
    join(rig, range(1, 2))
    rig.advance(61)
    ctx = rig.ctx()
    ctx.clock = _SlowRedcap(rig.clock.now())
    assert Sender(dry_run=False).run_once(ctx).counts[CLAIM_SLOW] == 1
    values = rig.values("1")
    assert (values["pipeline_status"], values["pipeline_error_code"]) == ("sending", CLAIM_SLOW)
    assert "CLAIM_SETTLE_SECONDS" in values["pipeline_error_message"]
    assert rig.sent_to(PHONES[1]) == []
    rig.advance(121)
    assert Sender(dry_run=False).run_once(rig.ctx()).counts["reconcile_requeued"] == 1
    assert Sender(dry_run=False).run_once(rig.ctx()).counts["sent"] == 1
    values = rig.values("1")
    assert values["pipeline_status"] == "sms_sent"
    assert values["pipeline_sms_attempts"] == "1"
    assert values.get("pipeline_sms_interrupted", "0") in ("", "0")
    assert len(rig.sent_to(PHONES[1])) == 1


def test_two_sender_processes_with_separate_locks_never_text_anyone_twice(rig: Rig) -> None:
    """Two real senders, separate LOCK_DIRs (as on two hosts), started together on the same
    due records, three rounds: every participant texted exactly once. (Whether they meet on a
    record in a given round is up to the scheduler; the tests above pin each way they can.)"""
    for round_ in range(3):
        ids = range(1 + 10 * round_, 11 + 10 * round_)
        join(rig, ids)
        procs = []
        for side in ("a", "b"):
            lock = rig.tmp / f"lock-{side}"
            lock.mkdir(exist_ok=True)
            env = rig.tmp / f".env.{side}"
            write_env(env, {**rig.env, **FAST, "LOCK_DIR": str(lock)})
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "services.sms_sender", "--once", "--env-file", str(env)],
                    cwd=ROOT,
                    env=clean_env(),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        for proc in procs:
            _, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
        texts = Counter(str(m["to"]) for m in rig.twilio.sent())
        assert [texts[PHONES[n]] for n in ids] == [1] * 10, f"round {round_}"
        assert {rig.status(str(n)) for n in ids} == {"sms_sent"}


def test_admin_check_warns_of_a_sender_on_another_host(rig: Rig) -> None:
    """A claim within the hour whose token names another host: a [warn] naming that host and
    the record; claims of this host's own, or older, say nothing."""
    join(rig, range(1, 3))
    now = datetime.now(UTC)
    rig.set(
        "1", pipeline_sms_claim="0f@lab-vm-2", pipeline_sms_claimed_at=f"{now:%Y-%m-%d %H:%M:%S}"
    )
    old = now - timedelta(hours=3)
    rig.set(
        "2", pipeline_sms_claim="0e@lab-vm-3", pipeline_sms_claimed_at=f"{old:%Y-%m-%d %H:%M:%S}"
    )
    done = rig.run("services.admin", "check")
    assert done.returncode == 0, done.stdout
    [warning] = [line for line in done.stdout.splitlines() if line.startswith("[warn] senders")]
    assert "host lab-vm-2 claimed record 1" in warning and "lab-vm-3" not in done.stdout
