"""SmsGateway.inbound_since against the Twilio simulator, through the twilio SDK."""

from __future__ import annotations

import logging
import socket
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from common.errors import ConfigError, TwilioUnavailable
from common.twilio_client import INBOUND_PAGE_SIZE, SmsGateway
from sandbox.clock import SimClock
from sandbox.faults import Fault
from sandbox.twilio.server import TwilioSim
from tests.conftest import TWILIO_NUMBER as OURS
from tests.conftest import TWILIO_START as START

ALICE, BOB = "+16175550101", "+16175550102"
LIST = "messages/GET/list"


def gateway(twilio_sim: TwilioSim, *, service: bool = False, token: str = "") -> SmsGateway:
    return SmsGateway(
        twilio_sim.account_sid,
        token or twilio_sim.auth_token,
        from_number="" if service else twilio_sim.from_number,
        messaging_service_sid=twilio_sim.messaging_service_sid if service else "",
        base_url=twilio_sim.base_url,
        timeout=2,
    )


def text(twilio_sim: TwilioSim, sender: str, body: str, *, media: int = 0, to: str = OURS) -> str:
    """``sender`` texts us, one simulated second after the previous message."""
    twilio_sim.clock.advance(1)
    return twilio_sim.inject_inbound(sender, to, body, media)


def list_requests(twilio_sim: TwilioSim) -> int:
    return twilio_sim.server.stats.requests[LIST]


def test_oldest_first_and_only_inbound_to_our_number(twilio_sim: TwilioSim) -> None:
    """Replies to our number come back oldest first; our sends, Twilio's keyword replies and
    texts to other numbers of the account are left out."""
    sms = gateway(twilio_sim)
    sms.send(ALICE, "Reply YES to confirm")
    first = text(twilio_sim, ALICE, "YES")
    second = text(twilio_sim, BOB, "STOP")  # Twilio answers it itself (outbound-reply)
    text(twilio_sim, BOB, "hello", to="+15550008888")
    third = text(twilio_sim, ALICE, "no")
    found = sms.inbound_since(START)
    assert [m.sid for m in found] == [first, second, third]
    assert [(m.from_, m.to, m.body, m.direction) for m in found] == [
        (ALICE, OURS, "YES", "inbound"),
        (BOB, OURS, "STOP", "inbound"),
        (ALICE, OURS, "no", "inbound"),
    ]
    assert all(m.status == "received" and m.date_sent is not None for m in found)


def test_exact_time_filter_across_a_gmt_day_boundary(
    twilio_sim: TwilioSim, twilio_clock: SimClock
) -> None:
    """Twilio filters by GMT day; the adapter cuts at the exact time, whatever zone ``since``
    is in, and a ``since`` just after midnight drops the whole previous day."""
    twilio_clock.set(datetime(2026, 3, 2, 23, 58, 0, tzinfo=UTC))
    text(twilio_sim, ALICE, "before")  # 23:58:01
    text(twilio_sim, ALICE, "just before")  # 23:58:02
    late = text(twilio_sim, ALICE, "late")  # 23:58:03
    twilio_clock.set(datetime(2026, 3, 3, 0, 0, 5, tzinfo=UTC))
    early = text(twilio_sim, ALICE, "early")  # 00:00:06 next day
    sms = gateway(twilio_sim)
    since = datetime(2026, 3, 2, 23, 58, 3, tzinfo=UTC)
    assert [m.sid for m in sms.inbound_since(since)] == [late, early]
    # The same instant in Boston (18:58:03 EST, still 2 March there and in GMT).
    boston = since.astimezone(ZoneInfo("America/New_York"))
    assert [m.sid for m in sms.inbound_since(boston)] == [late, early]
    # 19:00:01 EST on 2 March is 00:00:01 GMT on 3 March: only the GMT day of 3 March is asked.
    after_midnight = datetime(2026, 3, 2, 19, 0, 1, tzinfo=ZoneInfo("America/New_York"))
    assert [m.sid for m in sms.inbound_since(after_midnight)] == [early]
    assert [m.sid for m in sms.inbound_since(twilio_clock.now() + timedelta(seconds=1))] == []


def test_one_request_when_the_replies_fit_one_page(twilio_sim: TwilioSim) -> None:
    """Idle or light traffic costs one list request."""
    sms = gateway(twilio_sim)
    twilio_sim.server.reset_stats()
    assert sms.inbound_since(START) == []
    assert list_requests(twilio_sim) == 1
    for n in range(INBOUND_PAGE_SIZE):
        text(twilio_sim, ALICE, f"reply {n}")
    twilio_sim.server.reset_stats()
    assert len(sms.inbound_since(START)) == INBOUND_PAGE_SIZE
    assert twilio_sim.server.stats.total_requests() == 1


def test_pages_past_the_first_page_in_order(twilio_sim: TwilioSim) -> None:
    """120 replies take three pages (50, 50, 20) and come back complete, oldest first."""
    sids = [text(twilio_sim, ALICE if n % 2 else BOB, f"reply {n}") for n in range(120)]
    sms = gateway(twilio_sim)
    twilio_sim.server.reset_stats()
    found = sms.inbound_since(START)
    assert [m.sid for m in found] == sids
    assert list_requests(twilio_sim) == 3


def test_the_page_bound_keeps_the_newest_and_warns(
    twilio_sim: TwilioSim, caplog: pytest.LogCaptureFixture
) -> None:
    """Past ``max_pages`` the oldest replies are not read; a warning without numbers or bodies
    says so."""
    sids = [text(twilio_sim, ALICE, f"secret answer {n}") for n in range(120)]
    sms = gateway(twilio_sim)
    twilio_sim.server.reset_stats()
    with caplog.at_level(logging.DEBUG):
        found = sms.inbound_since(START, max_pages=2)
    assert [m.sid for m in found] == sids[20:]
    assert list_requests(twilio_sim) == 2
    assert "stopped after 2 pages" in caplog.text
    assert "secret" not in caplog.text and "0101" not in caplog.text


def test_mms_without_text(twilio_sim: TwilioSim) -> None:
    """A photo with no words: an MM message with num_media and an empty body."""
    sid = text(twilio_sim, ALICE, "", media=2)
    [found] = gateway(twilio_sim).inbound_since(START)
    assert (found.sid, found.body, found.num_media) == (sid, "", 2)
    assert sid.startswith("MM")


def test_long_and_emoji_bodies_arrive_intact(twilio_sim: TwilioSim) -> None:
    """A 1,600-character reply and emoji (including a surrogate pair) are returned exactly."""
    long_body = ("Yes I can come but " * 100)[:1600]
    emoji = "Sí 👍🏽 ok ❤️"
    text(twilio_sim, ALICE, long_body)
    text(twilio_sim, BOB, emoji)
    found = gateway(twilio_sim).inbound_since(START)
    assert [m.body for m in found] == [long_body, emoji]
    assert len(found[0].body) == 1600


def test_odd_sender_formats_are_listed(twilio_sim: TwilioSim) -> None:
    """Short codes and alphanumeric sender IDs come back as Twilio shows them."""
    text(twilio_sim, "72345", "STOP")
    text(twilio_sim, "MyClinic", "Hi")
    found = gateway(twilio_sim).inbound_since(START)
    assert [m.from_ for m in found] == ["72345", "MyClinic"]


def test_messaging_service_mode_reads_every_number(twilio_sim: TwilioSim) -> None:
    """With a Messaging Service and no From number, replies to any of the account's numbers
    count, and outbound messages of the account are filtered out here."""
    sms = gateway(twilio_sim, service=True)
    sms.send(ALICE, "Reply YES to confirm")
    first = text(twilio_sim, ALICE, "yes")
    second = text(twilio_sim, BOB, "YES", to="+15550008888")
    third = text(twilio_sim, BOB, "STOP")  # Twilio's outbound-reply is not an inbound message
    twilio_sim.server.reset_stats()
    found = sms.inbound_since(START)
    assert [m.sid for m in found] == [first, second, third]
    assert {m.direction for m in found} == {"inbound"}
    assert list_requests(twilio_sim) == 1


def test_naive_since_is_refused(twilio_sim: TwilioSim) -> None:
    """A naive datetime would be read in an unknown zone: refused."""
    with pytest.raises(ValueError, match="timezone-aware"):
        gateway(twilio_sim).inbound_since(datetime(2026, 3, 2, 10, 0))


@pytest.mark.parametrize("status", [429, 500, 503])
def test_twilio_errors_are_twilio_unavailable(twilio_sim: TwilioSim, status: int) -> None:
    """A 429 or 5xx on the list is TwilioUnavailable: try again next cycle."""
    twilio_sim.server.faults.add(Fault(kind="status", status=status, match={"op": "list"}))
    with pytest.raises(TwilioUnavailable, match=str(status)):
        gateway(twilio_sim).inbound_since(START)


def test_an_error_on_a_later_page_is_twilio_unavailable(twilio_sim: TwilioSim) -> None:
    """A failure on the second page loses nothing silently: the whole call fails."""
    for n in range(60):
        text(twilio_sim, ALICE, f"reply {n}")
    twilio_sim.server.faults.add(Fault(kind="status", status=503, skip=1, match={"op": "list"}))
    with pytest.raises(TwilioUnavailable):
        gateway(twilio_sim).inbound_since(START)


def test_dropped_connection_and_timeout_are_twilio_unavailable(twilio_sim: TwilioSim) -> None:
    """A reset and a hang (past the adapter's timeout) never leak a requests exception."""
    twilio_sim.server.faults.add(Fault(kind="reset", match={"op": "list"}))
    with pytest.raises(TwilioUnavailable):
        gateway(twilio_sim).inbound_since(START)
    twilio_sim.server.faults.add(Fault(kind="hang", seconds=5, match={"op": "list"}))
    with pytest.raises(TwilioUnavailable):
        gateway(twilio_sim).inbound_since(START)


def test_nothing_listening_is_twilio_unavailable(twilio_sim: TwilioSim) -> None:
    """Twilio unreachable (connection refused) is TwilioUnavailable."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sms = SmsGateway(
        twilio_sim.account_sid,
        twilio_sim.auth_token,
        from_number=OURS,
        base_url=f"http://127.0.0.1:{port}",
    )
    with pytest.raises(TwilioUnavailable):
        sms.inbound_since(START)


def test_a_non_json_page_is_twilio_unavailable(twilio_sim: TwilioSim) -> None:
    """A 200 that is not JSON (a proxy's page) is TwilioUnavailable, not a crash."""
    twilio_sim.server.faults.add(
        Fault(kind="status", status=200, body="<html>portal</html>", match={"op": "list"})
    )
    with pytest.raises(TwilioUnavailable):
        gateway(twilio_sim).inbound_since(START)


def test_wrong_credentials_are_a_config_error(twilio_sim: TwilioSim) -> None:
    """401 on the list names the settings to fix."""
    with pytest.raises(ConfigError, match="TWILIO_AUTH_TOKEN"):
        gateway(twilio_sim, token="0" * 32).inbound_since(START)
