"""Bad answers and slow servers at the services: an HTML page (200 or 403) from REDCap, Twilio,
Graph's sendMail and Sent Items or the token endpoint, and a trickling server, end one cycle as a
transient problem; the participant is not failed, nothing is sent twice, and the next cycles
finish the work. Run as processes, ``--once`` never exits 2 (the code systemd does not restart),
and stderr holds no traceback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from common.errors import RedcapUnavailable
from sandbox.faults import Fault
from services import registration_detector
from services.sms_sender import Sender
from tests.services.conftest import Rig, start_rules_rig
from tests.services.test_email import ADA, rules

PHONE = "+16175550100"
FAST = {"HTTP_TIMEOUT_SECONDS": "1"}  # the least the setting allows: a 2 s answer deadline


@pytest.fixture
def mail_rig(tmp_path: Path) -> Iterator[Rig]:
    yield from start_rules_rig(tmp_path, rules("email"), EMAIL_MAX_PER_MINUTE="6000", **FAST)


def registered(rig: Rig, record_id: str = "1", phone: str = PHONE) -> None:
    rig.register(record_id, phone)
    registration_detector.run_once(rig.ctx(needs_twilio=False))
    rig.clock.advance(61)


def mail_registered(rig: Rig) -> None:
    rig.register("1", "")
    rig.set("1", email=ADA)
    registration_detector.run_once(rig.ctx(needs_twilio=False))


def cycle(sender: Sender, rig: Rig) -> dict[str, int]:
    return dict(sender.run_once(rig.ctx(**FAST)).counts)


@pytest.mark.parametrize("status", [200, 403])
def test_redcap_answering_a_page_ends_the_cycle_and_the_next_sends_once(
    rig: Rig, status: int
) -> None:
    """The sender's export answered by a proxy's page: RedcapUnavailable for this cycle, the
    record still registered; the next cycle texts it once."""
    registered(rig)
    ctx = rig.ctx(**FAST)
    rig.redcap.server.faults.add(
        Fault(kind="html", status=status, match={"content": "record", "action": "export"})
    )
    sender = Sender(dry_run=False)
    with pytest.raises(RedcapUnavailable):
        sender.run_once(ctx)
    assert rig.status("1") == "registered" and rig.sent_to(PHONE) == []
    assert sender.run_once(ctx).counts["sent"] == 1
    assert rig.status("1") == "sms_sent" and len(rig.sent_to(PHONE)) == 1


def test_a_trickling_redcap_ends_the_cycle_within_the_deadline_and_the_next_sends(
    rig: Rig,
) -> None:
    """REDCap sends its export a byte every 0.2 s (each read within the 1 s timeout, minutes
    for the whole): the cycle ends as RedcapUnavailable, the next one texts once."""
    registered(rig)
    ctx = rig.ctx(**FAST)
    rig.redcap.server.faults.add(
        Fault(kind="trickle", chunk=1, seconds=0.2, match={"content": "record", "action": "export"})
    )
    sender = Sender(dry_run=False)
    with pytest.raises(RedcapUnavailable):
        sender.run_once(ctx)
    assert sender.run_once(ctx).counts["sent"] == 1
    assert len(rig.sent_to(PHONE)) == 1


@pytest.mark.parametrize("status", [200, 403])
def test_twilio_answering_a_page_to_a_create_is_reconciled_then_sent_once(
    rig: Rig, status: int
) -> None:
    """A create answered by a page (not Twilio's) has an unknown outcome: the claim waits,
    reconciliation finds no message, the record is texted once, never failed."""
    registered(rig)
    rig.twilio.server.faults.add(Fault(kind="html", status=status, match={"op": "create"}))
    sender = Sender(dry_run=False)
    assert cycle(sender, rig)["unknown"] == 1
    assert rig.status("1") == "sending"
    rig.clock.advance(121)
    assert cycle(sender, rig)["reconcile_requeued"] == 1
    assert cycle(sender, rig)["sent"] == 1
    assert rig.status("1") == "sms_sent" and len(rig.sent_to(PHONE)) == 1


def test_a_twilio_201_without_a_sid_is_adopted_by_reconciliation_not_resent(rig: Rig) -> None:
    """Twilio created the message but its answer carried no SID: outcome unknown; the
    reconciler finds the message and adopts its SID; one SMS."""
    registered(rig)
    rig.twilio.server.faults.add(
        Fault(kind="status", status=201, body="{}", after_apply=True, match={"op": "create"})
    )
    sender = Sender(dry_run=False)
    assert cycle(sender, rig)["unknown"] == 1
    rig.clock.advance(121)
    assert cycle(sender, rig)["reconcile_adopted"] == 1
    [message] = rig.sent_to(PHONE)
    assert rig.values("1")["pipeline_sms_sid"] == message["sid"]
    assert rig.status("1") == "sms_sent"


@pytest.mark.parametrize("status", [200, 403])
def test_a_token_endpoint_answering_a_page_holds_mail_back_and_then_sends_once(
    mail_rig: Rig, status: int
) -> None:
    """The token request answered by a page: nothing sent, the participant waits (not failed,
    no "GRAPH_CERT_PATH" error); once the endpoint answers, one mail."""
    mail_registered(mail_rig)
    ctx = mail_rig.ctx(**FAST)
    mail_rig.microsoft.server.faults.add(
        Fault(kind="html", status=status, match={"service": "identity", "op": "token"})
    )
    sender = Sender(dry_run=False)
    sender.run_once(ctx)
    assert mail_rig.values("1")["invite_status"] in ("", "registered")
    assert mail_rig.mailed_to(ADA) == []
    for _ in range(5):
        mail_rig.clock.advance(120)
        sender.run_once(ctx)
    assert mail_rig.values("1")["invite_status"] == "sent_email"
    assert len(mail_rig.mailed_to(ADA)) == 1


@pytest.mark.parametrize("status", [200, 403])
def test_sendmail_and_sent_items_answering_pages_are_reconciled_to_one_mail(
    mail_rig: Rig, status: int
) -> None:
    """sendMail went through but a page came back (outcome unknown); the first Sent Items
    search is answered by a page too (transient, no JSON traceback): the claim waits, the next
    search adopts the copy; one mail, sent_email."""
    mail_registered(mail_rig)
    mail_rig.microsoft.server.faults.add(
        Fault(kind="html", status=status, after_apply=True, match={"op": "sendMail"})
    )
    sender = Sender(dry_run=False)
    assert cycle(sender, mail_rig)["unknown"] == 1
    mail_rig.microsoft.server.faults.add(
        Fault(kind="html", status=status, match={"op": "listSent"})
    )
    mail_rig.clock.advance(300)
    assert cycle(sender, mail_rig) == {"reconcile_waiting": 1}
    assert mail_rig.values("1")["invite_status"] == "sending"
    mail_rig.clock.advance(120)
    assert cycle(sender, mail_rig)["reconcile_adopted"] == 1
    assert mail_rig.values("1")["invite_status"] == "sent_email"
    assert len(mail_rig.mailed_to(ADA)) == 1


def test_once_runs_meeting_pages_never_exit_2_nor_print_a_traceback(mail_rig: Rig) -> None:
    """As processes: the detector with REDCap answering pages exits 1 naming the web page
    (systemd's Restart= brings it back; 2 would keep it down); the sender with the token
    endpoint answering pages holds the mail back and exits 0; no traceback in either."""
    mail_registered(mail_rig)
    pages = mail_rig.redcap.server.faults.add(Fault(kind="html", status=200, times=1000))
    detector = mail_rig.run("services.registration_detector", "--once", timeout=30)
    pages.times = 0
    mail_rig.microsoft.server.faults.add(
        Fault(kind="html", status=403, times=1000, match={"service": "identity"})
    )
    sender = mail_rig.run("services.sms_sender", "--once", timeout=30)
    assert detector.returncode == 1, detector.stderr
    assert "web page" in detector.stderr
    # The sender holds the mail back (the claim goes back, reason=unavailable) and ends well.
    assert sender.returncode == 0, sender.stderr
    assert "reason=unavailable" in sender.stderr
    for done in (detector, sender):
        assert "Traceback" not in done.stderr and "GRAPH_CERT_PATH" not in done.stderr
    assert mail_rig.values("1")["invite_status"] == "registered"
    assert mail_rig.mailed_to(ADA) == []
