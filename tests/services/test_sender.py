"""SMS sender: delay, quiet hours, rate limit, phones, Twilio outcomes, retries, dry run."""

from __future__ import annotations

import threading

import pytest

from sandbox.faults import Fault
from sandbox.httpserver import wait_until
from services import registration_detector
from services.sms_sender import Sender
from tests.services.conftest import Rig

PHONE = "+16175550100"


def registered(rig: Rig, *records: tuple[str, str], **overrides: str) -> None:
    for record_id, phone in records:
        rig.register(record_id, phone)
    registration_detector.run_once(rig.ctx(needs_twilio=False, **overrides))


def send_cycle(rig: Rig, **overrides: str) -> dict[str, int]:
    return dict(Sender(dry_run=False).run_once(rig.ctx(**overrides)).counts)


def test_sends_once_after_the_delay_with_the_personal_survey_link(rig: Rig) -> None:
    """Nothing before SMS_DELAY_MINUTES; then exactly one SMS carrying the record's link."""
    registered(rig, ("1", "(617) 555-0100"))
    assert send_cycle(rig) == {"waiting_delay": 1}
    assert rig.sent_to(PHONE) == []
    rig.clock.advance(61)
    assert send_cycle(rig)["sent"] == 1
    values = rig.values("1")
    assert values["pipeline_status"] == "sms_sent"
    assert values["pipeline_sms_to"] == PHONE
    assert values["pipeline_sms_attempts"] == "1"
    [message] = rig.sent_to(PHONE)
    assert message["sid"] == values["pipeline_sms_sid"]
    link = rig.redcap_link("1")
    assert link in str(message["body"]) and "Ada" in str(message["body"])
    assert send_cycle(rig) == {}  # nothing left to do, nothing sent twice
    assert len(rig.sent_to(PHONE)) == 1


def test_quiet_hours_hold_messages_until_they_end(rig: Rig) -> None:
    """During QUIET_HOURS due messages wait; after, they go out."""
    registered(rig, ("1", "6175550100"))
    rig.clock.advance(61)
    assert send_cycle(rig, QUIET_HOURS="11:00-13:00") == {"waiting_quiet_hours": 1}
    rig.clock.advance(3600)
    assert send_cycle(rig, QUIET_HOURS="11:00-13:00")["sent"] == 1


def test_rate_limit_spaces_sends(rig: Rig) -> None:
    """At SMS_MAX_PER_SECOND=0.5, three sends take at least four (simulated) seconds."""
    registered(rig, ("1", "6175550101"), ("2", "6175550102"), ("3", "6175550103"))
    rig.clock.advance(61)
    before = rig.clock.now()
    assert send_cycle(rig, SMS_MAX_PER_SECOND="0.5")["sent"] == 3
    assert (rig.clock.now() - before).total_seconds() >= 4


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("", "no_phone"),
        ("call me", "invalid_phone"),
        ("555-01", "invalid_phone"),
        ("+1 555 123 4567", "invalid_phone"),
        ("07700 900123", "invalid_phone"),
    ],
)
def test_unusable_phone_is_skipped_with_reason_and_others_still_sent(
    rig: Rig, raw: str, code: str
) -> None:
    """A bad phone is recorded on its record (skipped + reason); the next record is sent."""
    registered(rig, ("1", raw), ("2", "617.555.0102"))
    rig.clock.advance(61)
    send_cycle(rig)
    assert rig.status("1") == "skipped"
    assert rig.values("1")["pipeline_error_code"] == code
    assert rig.status("2") == "sms_sent"


@pytest.mark.parametrize(
    "raw",
    [
        "(617) 555-0104",
        "617-555-0104",
        "+1 617 555 0104",
        "617.555.0104",
        "1-617-555-0104",
        "+16175550104",
    ],
)
def test_phone_formats_normalize_to_e164(rig: Rig, raw: str) -> None:
    """Numbers typed in the usual ways all reach Twilio as E.164."""
    registered(rig, ("1", raw))
    rig.clock.advance(61)
    send_cycle(rig)
    assert rig.values("1")["pipeline_sms_to"] == "+16175550104"
    assert len(rig.sent_to("+16175550104")) == 1


def test_allowed_numbers_skip_everyone_else(rig: Rig) -> None:
    """With SMS_ALLOWED_NUMBERS set, other numbers are skipped with the reason."""
    registered(rig, ("1", "6175550101"), ("2", "6175550102"))
    rig.clock.advance(61)
    send_cycle(rig, SMS_ALLOWED_NUMBERS="617-555-0102")
    assert rig.status("1") == "skipped"
    assert rig.values("1")["pipeline_error_code"] == "not_allowed"
    assert rig.status("2") == "sms_sent"


@pytest.mark.parametrize(
    ("number", "code"),
    [
        ("+15005550001", "21211"),
        ("+15005550002", "21612"),
        ("+15005550003", "21408"),
        ("+15005550004", "21610"),
        ("+15005550009", "21614"),
    ],
)
def test_twilio_permanent_rejections_fail_with_code(rig: Rig, number: str, code: str) -> None:
    """Twilio's synchronous rejections mark the record failed with Twilio's code."""
    registered(rig, ("1", number))
    rig.clock.advance(61)
    send_cycle(rig)
    values = rig.values("1")
    assert (values["pipeline_status"], values["pipeline_error_code"]) == ("failed", code)
    assert number not in values["pipeline_error_message"]


def test_twilio_429_gives_the_record_back_and_sends_next_cycle(rig: Rig) -> None:
    """A 429 means nothing was created: the record is as it was (no attempt spent, the reason
    on it), and it is sent on the next cycle."""
    registered(rig, ("1", "6175550100"))
    rig.clock.advance(61)
    rig.twilio.rate_limit_next(1, op="create")
    assert send_cycle(rig)["deferred"] == 1
    values = rig.values("1")
    assert (values["pipeline_status"], values["pipeline_error_code"]) == (
        "registered",
        "unavailable",
    )
    assert values["pipeline_sms_attempts"] == "0"
    assert send_cycle(rig)["sent"] == 1
    assert rig.values("1")["pipeline_sms_attempts"] == "1"
    assert len(rig.sent_to(PHONE)) == 1


def test_429s_never_use_up_sms_max_attempts(rig: Rig) -> None:
    """More 429s than SMS_MAX_ATTEMPTS: the record still waits (``registered``), then goes."""
    registered(rig, ("1", "6175550100"))
    rig.clock.advance(61)
    rig.twilio.rate_limit_next(5, op="create")
    for _ in range(5):
        assert send_cycle(rig)["deferred"] == 1
    assert rig.status("1") == "registered"
    assert send_cycle(rig)["sent"] == 1
    assert len(rig.sent_to(PHONE)) == 1


def test_unknown_outcome_is_reconciled_not_resent(rig: Rig) -> None:
    """Twilio created the message but the answer was lost: the SID is adopted, no resend."""
    registered(rig, ("1", "6175550100"))
    rig.clock.advance(61)
    rig.twilio.server.faults.add(
        Fault(kind="hang", after_apply=True, seconds=10, match={"op": "create"})
    )
    assert send_cycle(rig, HTTP_TIMEOUT_SECONDS="1")["unknown"] == 1
    assert rig.status("1") == "sending"
    rig.clock.advance(121)
    counts = send_cycle(rig)
    assert counts["reconcile_adopted"] == 1
    [message] = rig.sent_to(PHONE)
    assert rig.values("1")["pipeline_sms_sid"] == message["sid"]
    assert rig.status("1") == "sms_sent"


def test_5xx_on_create_without_a_message_is_requeued_after_reconcile(rig: Rig) -> None:
    """A 500 that created nothing: reconciliation finds no message and the record is resent."""
    registered(rig, ("1", "6175550100"))
    rig.clock.advance(61)
    rig.twilio.server.faults.add(Fault(kind="status", status=500, match={"op": "create"}))
    send_cycle(rig)
    assert rig.status("1") == "sending"
    rig.clock.advance(121)
    assert send_cycle(rig)["reconcile_requeued"] == 1
    assert send_cycle(rig)["sent"] == 1
    assert len(rig.sent_to(PHONE)) == 1


def test_dry_run_changes_nothing(rig: Rig) -> None:
    """--dry-run: no Twilio call and no REDCap write."""
    registered(rig, ("1", "6175550100"))
    rig.clock.advance(61)
    rig.redcap.server.reset_stats()
    counts = Sender(dry_run=True).run_once(rig.ctx()).counts
    assert counts["dry_run_would_send"] == 1
    assert rig.status("1") == "registered"
    assert rig.twilio.server.stats.total_requests() == 0
    assert not any("import" in key for key in rig.redcap.server.stats.requests)


def test_longitudinal_end_to_end(long_rig: Rig) -> None:
    """On a longitudinal project the link and the status use REDCAP_EVENT."""
    registered(long_rig, ("1", "6175550100"))
    long_rig.clock.advance(61)
    assert send_cycle(long_rig)["sent"] == 1
    assert long_rig.status("1") == "sms_sent"


def test_idle_sender_cycle_is_one_filtered_export(rig: Rig) -> None:
    """With nobody due, a sender cycle costs one REDCap request and no Twilio request."""
    registered(rig, ("1", "6175550100"))
    ctx = rig.ctx()
    sender = Sender(dry_run=False)
    sender.run_once(ctx)  # still inside the delay
    rig.redcap.server.reset_stats()
    rig.twilio.server.reset_stats()
    assert sender.run_once(ctx).counts == {"waiting_delay": 1}
    assert rig.redcap.server.stats.total_requests() == 1
    assert rig.twilio.server.stats.total_requests() == 0


def test_busy_cycle_is_one_export_one_link_per_message_and_batched_imports(rig: Rig) -> None:
    """Twelve due: one export, one surveyLink per record, per chunk of ten a claim and a result
    import and the claim's two reads (before and after it settles); never the whole-project
    participant list."""
    registered(rig, *[(str(n), f"61755501{n:02d}") for n in range(1, 13)])
    rig.clock.advance(61)
    ctx = rig.ctx(SMS_MAX_PER_SECOND="100")
    rig.redcap.server.reset_stats()
    assert Sender(dry_run=False).run_once(ctx).counts["sent"] == 12
    assert dict(rig.redcap.server.stats.requests) == {
        "record/export": 1 + 2 * 2,
        "surveyLink/export": 12,
        "record/import": 4,
    }


def test_links_need_no_email_or_identifier(rig: Rig) -> None:
    """Records without an e-mail (which REDCap's participant list would not name) still get
    their own survey link, one surveyLink request each."""
    for n in range(1, 5):
        rig.register(str(n), f"61755501{n:02d}")
        with rig.project.lock:
            for values in rig.project.records[str(n)].slots.values():
                values.pop("email", None)
    registration_detector.run_once(rig.ctx(needs_twilio=False))
    rig.clock.advance(61)
    ctx = rig.ctx(SMS_MAX_PER_SECOND="100")
    rig.redcap.server.reset_stats()
    assert Sender(dry_run=False).run_once(ctx).counts["sent"] == 4
    assert rig.redcap.server.stats.requests["surveyLink/export"] == 4
    for n in range(1, 5):
        assert rig.redcap_link(str(n)) in str(rig.sent_to(f"+161755501{n:02d}")[0]["body"])


def test_a_backlog_asks_redcap_for_links_one_chunk_at_a_time(rig: Rig) -> None:
    """25 due: when the first message goes out, REDCap has been asked for ten links, not 25, so
    a backlog's link requests keep the send pace instead of bursting at REDCap's rate limit."""
    registered(rig, *[(str(n), f"61755501{n:02d}") for n in range(1, 26)])
    rig.clock.advance(61)
    ctx = rig.ctx(SMS_MAX_PER_SECOND="100")
    rig.redcap.server.reset_stats()
    first = rig.twilio.server.faults.add(Fault(kind="latency", seconds=0.5, match={"op": "create"}))
    done: list[int] = []
    worker = threading.Thread(
        target=lambda: done.append(Sender(dry_run=False).run_once(ctx).counts["sent"])
    )
    worker.start()
    try:
        assert wait_until(lambda: first.times == 0, timeout=10)
        assert rig.redcap.server.stats.requests["surveyLink/export"] == 10
    finally:
        worker.join(timeout=30)
    assert done == [25]
    assert rig.redcap.server.stats.requests["surveyLink/export"] == 25
