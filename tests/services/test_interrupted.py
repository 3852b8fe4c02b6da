"""A stopped sender never uses up a participant's attempts; a record that crashes it every time
is given up on after SMS_MAX_INTERRUPTED, with its own reason, shown by admin status.

A "stopped sender" here is a claim written and never followed up (what kill -9 between the
claim and the send leaves); test_crash.py does the same with real kills.
"""

from __future__ import annotations

from messaging.context import Context
from sandbox.faults import Fault
from services import registration_detector
from services.sms_sender import Sender
from tests.services.conftest import Rig
from tests.services.killing import claim_and_die

PHONES = {str(n): f"+1617555010{n}" for n in range(1, 5)}


def due(rig: Rig, *records: str) -> Context:
    for rid in records:
        rig.register(rid, PHONES[rid])
    registration_detector.run_once(rig.ctx(needs_twilio=False))
    rig.clock.advance(61)
    return rig.ctx(SMS_MAX_PER_SECOND="100")


def cycle(rig: Rig, ctx: Context) -> dict[str, int]:
    rig.clock.advance(121)  # past SMS_CLAIM_TIMEOUT_SECONDS: the claim is stale
    return dict(Sender(dry_run=False).run_once(ctx).counts)


def test_an_interrupted_claim_gives_its_attempt_back(rig: Rig) -> None:
    """Proved unsent after a stopped sender: registered again, attempts as before, counted as
    an interruption; then sent once, with one attempt used."""
    ctx = due(rig, "1")
    claim_and_die(ctx, "1")
    assert rig.values("1")["pipeline_sms_attempts"] == "1"
    assert cycle(rig, ctx) == {"reconcile_interrupted": 1}
    values = rig.values("1")
    assert values["pipeline_status"] == "registered"
    assert values["pipeline_sms_attempts"] == "0"
    assert values["pipeline_sms_interrupted"] == "1"
    assert cycle(rig, ctx)["sent"] == 1
    assert rig.values("1")["pipeline_sms_attempts"] == "1"
    assert len(rig.sent_to(PHONES["1"])) == 1


def test_more_interruptions_than_attempts_still_send(rig: Rig) -> None:
    """Four stopped senders in a row (more than SMS_MAX_ATTEMPTS=3) and the message still goes."""
    ctx = due(rig, "1")
    for _ in range(4):
        claim_and_die(ctx, "1")
        assert cycle(rig, ctx) == {"reconcile_interrupted": 1}
    assert cycle(rig, ctx)["sent"] == 1
    values = rig.values("1")
    assert (values["pipeline_status"], values["pipeline_sms_interrupted"]) == ("sms_sent", "4")


def test_a_record_that_keeps_crashing_the_sender_is_given_up_on(rig: Rig) -> None:
    """At SMS_MAX_INTERRUPTED the record is failed with reason interrupted; admin status says so."""
    ctx = due(rig, "1")
    for _ in range(4):
        claim_and_die(ctx, "1")
        cycle(rig, ctx)
    claim_and_die(ctx, "1")
    assert cycle(rig, ctx) == {"reconcile_failed_interrupted": 1}
    values = rig.values("1")
    assert (values["pipeline_status"], values["pipeline_error_code"]) == ("failed", "interrupted")
    assert "stopped 5 times" in values["pipeline_error_message"]
    assert rig.sent_to(PHONES["1"]) == []
    status = rig.run("services.admin", "status")
    assert "failed:interrupted" in status.stdout
    assert "sends interrupted by a stopped sender: 1 record(s)" in status.stdout


def test_a_suspect_is_claimed_alone_so_it_takes_no_one_down(rig: Rig) -> None:
    """After an interruption the suspect is claimed on its own, after the others: a crash on
    it can no longer interrupt anyone else."""
    ctx = due(rig, "1", "2", "3")
    claim_and_die(ctx, "2")
    cycle(rig, ctx)  # reconciles 2 back to registered
    rig.twilio.server.faults.add(Fault(kind="hang", seconds=10, match={"To": PHONES["2"]}))
    Sender(dry_run=False).run_once(rig.ctx(SMS_MAX_PER_SECOND="100", HTTP_TIMEOUT_SECONDS="1"))
    order = [str(m["to"]) for m in rig.twilio.sent()]
    assert order[:2] == [PHONES["1"], PHONES["3"]]
    assert rig.status("1") == rig.status("3") == "sms_sent"


def test_a_lost_twilio_answer_uses_an_attempt(rig: Rig) -> None:
    """Twilio's trouble, not ours: a create that got no answer and created nothing counts."""
    ctx = due(rig, "1")
    rig.twilio.server.faults.add(Fault(kind="status", status=500, match={"op": "create"}))
    assert Sender(dry_run=False).run_once(ctx).counts["unknown"] == 1
    assert rig.values("1")["pipeline_error_code"] == "outcome_unknown"
    assert cycle(rig, ctx) == {"reconcile_requeued": 1}
    values = rig.values("1")
    assert (values["pipeline_status"], values["pipeline_sms_attempts"]) == ("registered", "1")
    assert values.get("pipeline_sms_interrupted", "") == ""
