"""Staff alert digests end to end: what a digest lists and never shows, the interval, restarts,
requeues, Graph trouble that never stops the participants' messages, kill -9 between the claim
and the mail, and an idle cycle that stays one REDCap request."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.graph_client import MESSAGE_ID_HEADER
from messaging.alerts import MAX_LINES, digest
from messaging.records import RuleRow
from messaging.rules_file import load_rules
from sandbox.microsoft.mailbox import SentMail
from sandbox.redcap.demo import build_demo_project
from sandbox.rehearsal import add_rule_fields
from services import delivery_checker, registration_detector
from services.admin.records import command_requeue
from services.sms_sender import Sender
from tests.services.conftest import Rig, start_rig
from tests.services.killing import kill_at

RULES = """
[[rule]]
name = "welcome"
when = "[registration_complete] = '2'"
delay_minutes = 0
survey = "interest_form"
template = "Welcome! Your survey: {survey_link}"

[[rule]]
name = "nudge"
when = "[registration_complete] = '2'"
delay_minutes = 0
template = "Thank you for joining the study."
"""
STAFF = ("coordinator@example.org", "pi@example.org")


def alert_rig(tmp: Path, **overrides: str) -> Iterator[Rig]:
    """The demo project with both rules' fields, alerted_at included; alerts to STAFF."""
    path = tmp / "rules.toml"
    path.write_text(RULES, encoding="utf-8")
    rules = load_rules(path, default_event="", alerts=True)
    project = add_rule_fields(build_demo_project(), rules)
    yield from start_rig(
        project, tmp, RULES_FILE=str(path), ALERT_EMAIL_TO=", ".join(STAFF), **overrides
    )


@pytest.fixture
def alerts(tmp_path: Path) -> Iterator[Rig]:
    yield from alert_rig(tmp_path)


def join(rig: Rig, record_id: str, phone: str, **overrides: str) -> None:
    rig.register(record_id, phone)
    registration_detector.run_once(rig.ctx(needs_twilio=False, **overrides))


def two_cycles(rig: Rig, sender: Sender | None = None, **overrides: str) -> dict[str, int]:
    """A sender's cycle that records problems, then the one whose export sees them."""
    sender = sender or Sender(dry_run=False)
    first = cycle(rig, sender, **overrides)
    second = cycle(rig, sender, **overrides)
    return {key: first.get(key, 0) + second.get(key, 0) for key in {*first, *second}}


def cycle(rig: Rig, sender: Sender | None = None, **overrides: str) -> dict[str, int]:
    return dict((sender or Sender(dry_run=False)).run_once(rig.ctx(**overrides)).counts)


def digests(rig: Rig) -> list[SentMail]:
    return rig.microsoft.sent(to=STAFF[0])


def advance(rig: Rig, minutes: float) -> None:
    rig.clock.advance(minutes * 60)
    rig.sim_clock.advance(minutes * 60)


def listed(mail: SentMail) -> list[str]:
    return [line.strip() for line in mail.content.splitlines() if line.startswith("  record ")]


def test_digest_lists_each_rules_problems_in_plain_words_and_no_phi(
    alerts: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    """failed, skipped, undelivered and needs_review, per rule, with plain reasons; no phone
    number, address, link or message text in the mail or the log."""
    off = {"ALERT_EMAIL_TO": ""}  # the problems arise first; then one sender with alerts
    join(alerts, "1", "+15005550001", **off)  # Twilio: 21211 invalid To
    join(alerts, "2", "", **off)  # no phone
    join(alerts, "3", "+15005553003", **off)  # undelivered, 30003
    cycle(alerts, **off)
    alerts.sim_clock.advance(30)
    delivery_checker.run_once(alerts.ctx(**off))
    alerts.register("4", "(617) 555-0104")
    alerts.set(
        "4",
        welcome_status="needs_review",
        welcome_error_code="unresolved_send",
        nudge_status="failed",
        nudge_error_code="carrier_said",
        nudge_error_message="no route to +1 (617) 555-0104, ada@example.org, see "
        "https://redcap.example.org/surveys/?s=ABC or redcap.example.org/x",
    )
    with caplog.at_level(logging.INFO):
        counts = cycle(alerts)
    assert counts["alerted"] == 8
    [mail] = digests(alerts)
    project = alerts.env["REDCAP_PROJECT_ID"]
    assert mail.subject == f"redcap-relay: 8 records need attention (project {project})"
    assert mail.to == STAFF and mail.content_type == "text"
    assert mail.headers[MESSAGE_ID_HEADER].startswith(f"digest-{project}-")
    welcome, nudge = mail.content.split("Rule nudge")
    assert "Rule welcome (4):" in welcome and nudge.startswith(" (4):")
    assert listed(mail) == [
        "record 1: failed: invalid 'To' phone number",
        "record 2: skipped: no phone number on the record",
        "record 3: undelivered: handset unreachable (off or no signal)",
        "record 4: needs_review: whether the message went out could not be established; "
        "check by hand",
        "record 1: failed: invalid 'To' phone number",
        "record 2: skipped: no phone number on the record",
        "record 3: undelivered: handset unreachable (off or no signal)",
        "record 4: failed: no route to [removed], [removed], see [removed] or [removed]",
    ]
    alert_log = "\n".join(r.getMessage() for r in caplog.records if "digest" in r.getMessage())
    for text in (mail.content, alert_log):
        for secret in ("5550001", "555-0104", "5553003", "617", "@", "http", "example.org"):
            assert secret not in text
        assert "Welcome!" not in text and "Thank you" not in text
    for rid in ("1", "2", "3"):
        assert alerts.values(rid)["welcome_alerted_at"]


def test_at_most_one_digest_per_interval_and_a_restart_never_re_alerts(alerts: Rig) -> None:
    """A problem within the interval waits for the next digest; new senders (restarts, past
    the claim timeout, Sent Items readable) send nothing again."""
    join(alerts, "1", "")
    assert two_cycles(alerts)["alerted"] == 2
    advance(alerts, 10)
    join(alerts, "2", "")
    sender = Sender(dry_run=False)
    assert "alerted" not in two_cycles(alerts, sender)
    assert cycle(alerts, sender) == {}
    for _ in range(2):  # restarts
        advance(alerts, 5)
        assert cycle(alerts) == {}
    assert len(digests(alerts)) == 1
    assert not alerts.values("2").get("welcome_alerted_at")
    advance(alerts, 41)  # 61 minutes after the first digest
    assert cycle(alerts)["alerted"] == 2
    later = digests(alerts)
    assert len(later) == 2
    assert [line.split(":")[0] for line in listed(later[1])] == ["record 2", "record 2"]
    advance(alerts, 30)
    assert cycle(alerts) == {} and cycle(alerts) == {}
    assert len(digests(alerts)) == 2


def test_requeued_record_that_fails_again_is_alerted_again(alerts: Rig) -> None:
    """admin requeue blanks alerted_at: the next failure is a new problem, in a new digest."""
    join(alerts, "1", "+15005550001")
    assert two_cycles(alerts)["alerted"] == 2
    advance(alerts, 61)
    ctx = alerts.ctx()
    assert command_requeue(ctx, ctx.rules.named("welcome"), "1") == 0
    assert not alerts.values("1").get("welcome_alerted_at")
    counts = two_cycles(alerts)
    assert counts["failed"] == 1 and counts["alerted"] == 1
    first, second = digests(alerts)
    assert first.headers[MESSAGE_ID_HEADER] != second.headers[MESSAGE_ID_HEADER]
    assert listed(second) == ["record 1: failed: invalid 'To' phone number"]
    assert "Rule nudge" not in second.content  # nudge's failure was alerted already


@pytest.mark.parametrize(
    ("trouble", "settings"),
    [
        ("throttled", {}),
        ("unreachable", {"GRAPH_AUTHORITY_URL": "http://127.0.0.1:9"}),
        ("bad secret", {"GRAPH_CLIENT_SECRET": "not-the-secret"}),
    ],
)
def test_graph_trouble_during_the_digest_never_stops_the_sms_and_it_goes_later(
    alerts: Rig, trouble: str, settings: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    """Graph throttling, unreachable or refusing the secret: the cycle's SMS still go, one
    warning is logged, the claims are blanked, and the next good cycle sends the digest."""
    join(alerts, "1", "")
    cycle(alerts)  # 1 is skipped
    if trouble == "throttled":
        alerts.microsoft.throttle_next(1, retry_after=120)  # longer than the mailer will wait
    join(alerts, "2", "(617) 555-0100")
    with caplog.at_level(logging.WARNING):
        counts = cycle(alerts, **settings)
    assert counts["sent"] == 2 and counts["alert_failed"] == 1
    assert len(alerts.sent_to("+16175550100")) == 2
    warnings = [r.getMessage() for r in caplog.records if "alert" in r.getMessage()]
    assert len(warnings) == 1 and "@" not in warnings[0]
    assert digests(alerts) == []
    assert not alerts.values("1").get("welcome_alerted_at")
    assert cycle(alerts)["alerted"] == 2
    [mail] = digests(alerts)
    assert [line.split(":")[0] for line in listed(mail)] == ["record 1", "record 1"]


@pytest.mark.parametrize("after_apply", [True, False], ids=["mail sent", "mail lost"])
def test_lost_answer_keeps_the_claims_and_sent_items_settles_it(
    alerts: Rig, after_apply: bool
) -> None:
    """Graph's answer to the digest was lost: the records stay alerted; a sender past the claim
    timeout looks in Sent Items and sends the same digest again only if it is not there."""
    join(alerts, "1", "")
    cycle(alerts)
    alerts.microsoft.hang_next(after_apply=after_apply, seconds=10)
    assert cycle(alerts, HTTP_TIMEOUT_SECONDS="1")["alerted"] == 2
    assert alerts.values("1")["welcome_alerted_at"]
    advance(alerts, 5)
    assert cycle(alerts) == ({} if after_apply else {"alert_resent": 1})
    assert cycle(alerts) == {}
    [mail] = digests(alerts)
    assert listed(mail) == ["record 1: skipped: no phone number on the record"] * 2


@pytest.mark.parametrize("after_apply", [False, True], ids=["mail lost", "mail sent"])
def test_kill_9_between_claim_and_digest_then_restarts_send_exactly_one(
    alerts: Rig, after_apply: bool
) -> None:
    """A real sender killed while its digest's sendMail hangs (claims written): fresh senders
    look the digest up in Sent Items and send it only if it is not there. Exactly one."""
    alerts.register("1", "(617) 555-0100")
    alerts.set("1", welcome_status="failed", welcome_error_code="21211")
    step = ("digest sendMail", "microsoft", {"service": "graph", "op": "sendMail"}, after_apply, 0)
    assert kill_at(alerts, step), "the sender never sent the digest"
    claimed = alerts.values("1")["welcome_alerted_at"]
    assert claimed
    assert len(digests(alerts)) == (1 if after_apply else 0)
    for _ in range(3):  # fresh senders, as systemd would restart them
        done = alerts.run("services.sms_sender", "--once", SMS_CLAIM_TIMEOUT_SECONDS="0")
        assert done.returncode == 0, done.stderr
    [mail] = digests(alerts)
    assert listed(mail) == ["record 1: failed: invalid 'To' phone number"]
    assert alerts.values("1")["welcome_alerted_at"] == claimed


def test_idle_sender_cycle_with_alerts_on_is_one_request(alerts: Rig) -> None:
    """Alerted records, a new problem held by the interval, a verified digest: the idle
    cycle is still one REDCap export and no mail."""
    join(alerts, "1", "")
    sender = Sender(dry_run=False)
    assert two_cycles(alerts, sender)["alerted"] == 2
    advance(alerts, 5)
    join(alerts, "2", "")
    join(alerts, "3", "(617) 555-0100")
    cycle(alerts, sender)  # 2 is skipped (held by the interval), 3 gets its messages
    ctx = alerts.ctx()
    alerts.redcap.server.reset_stats()
    mails = alerts.microsoft.requests("sendMail")
    assert sender.run_once(ctx).counts == {}
    assert dict(alerts.redcap.server.stats.requests) == {"record/export": 1}
    assert alerts.microsoft.requests("sendMail") == mails


def test_a_long_digest_is_capped_and_counts_the_rest(alerts: Rig) -> None:
    """Past MAX_LINES records the digest says how many more and where to see them."""
    ctx = alerts.ctx()
    welcome = ctx.rules.named("welcome")
    values = {"welcome_status": "skipped", "welcome_error_code": "no_phone"}
    rows = [RuleRow(welcome, str(n), values) for n in range(MAX_LINES + 7)]
    subject, text = digest(ctx, rows)
    assert subject.startswith(f"redcap-relay: {MAX_LINES + 7} records need attention")
    assert text.count("\n  record ") == MAX_LINES
    assert "and 7 more; see admin status." in text
    subject, _ = digest(ctx, rows[:1])
    assert subject.startswith("redcap-relay: 1 record needs attention (project ")
