"""Inbound messages in the Twilio simulator as the Messages list shows them, and the control
endpoint another process uses to make a participant text us (``/sandbox/inbound.json``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests
from twilio.rest import Client

from sandbox.clock import SimClock
from sandbox.twilio.control import CONTROL_PATH
from sandbox.twilio.server import TwilioSim
from tests.sandbox.twilio.helpers import PARTICIPANT, START, send

OTHER = "+15550100002"


def control(sim: TwilioSim, auth: tuple[str, str] | None = None, **form: str) -> requests.Response:
    return requests.post(
        sim.base_url + CONTROL_PATH,
        data=form,
        auth=auth or (sim.account_sid, sim.auth_token),
        timeout=5,
    )


def test_inbound_lists_as_twilio_shows_a_received_sms(client: Client, sim: TwilioSim) -> None:
    """Direction inbound, status received, date_sent = receipt time, num_media "0", billed,
    From the participant and To our number (TWILIO_API.md §1.4, §2.1)."""
    sim.clock.advance(30)
    sid = sim.inject_inbound(PARTICIPANT, sim.from_number, "YES")
    [found] = client.messages.list(to=sim.from_number)
    assert found.sid == sid and sid.startswith("SM")
    assert (found.direction, found.status, found.from_, found.to, found.body) == (
        "inbound",
        "received",
        PARTICIPANT,
        sim.from_number,
        "YES",
    )
    assert found.date_sent == found.date_created == START + timedelta(seconds=30)
    assert (found.num_media, found.num_segments) == ("0", "1")
    assert found.price is not None and found.price.startswith("-")


def test_inbound_list_is_newest_first_and_filters_by_from(client: Client, sim: TwilioSim) -> None:
    """Replies list newest first; From picks one participant's; To excludes our own sends."""
    send(client, sim)
    sids = []
    for sender in (PARTICIPANT, OTHER, PARTICIPANT):
        sim.clock.advance(1)
        sids.append(sim.inject_inbound(sender, sim.from_number, "hi"))
    assert [m.sid for m in client.messages.list(to=sim.from_number)] == sids[::-1]
    from_one = client.messages.list(from_=PARTICIPANT)
    assert [m.sid for m in from_one] == [sids[2], sids[0]]


def test_inbound_date_sent_filters_by_gmt_day(
    client: Client, sim: TwilioSim, clock: SimClock
) -> None:
    """DateSent> / DateSent< keep whole GMT days, even when the SDK sends a time (§1.5)."""
    clock.set(datetime(2026, 3, 2, 23, 59, 50, tzinfo=UTC))
    late = sim.inject_inbound(PARTICIPANT, sim.from_number, "late")
    clock.set(datetime(2026, 3, 3, 0, 0, 10, tzinfo=UTC))
    early = sim.inject_inbound(PARTICIPANT, sim.from_number, "early")
    after = datetime(2026, 3, 2, 23, 59, 59, tzinfo=UTC)  # only its day counts
    assert [m.sid for m in client.messages.list(date_sent_after=after)] == [early, late]
    next_day = datetime(2026, 3, 3, 0, 0, 0, tzinfo=UTC)
    assert [m.sid for m in client.messages.list(date_sent_after=next_day)] == [early]
    assert [m.sid for m in client.messages.list(date_sent_before=after)] == [late]


def test_mms_without_text_has_media_and_an_empty_body(client: Client, sim: TwilioSim) -> None:
    """A photo with no words: an MM SID, num_media, an empty body, one segment."""
    sid = sim.inject_inbound(PARTICIPANT, sim.from_number, "", media=3)
    found = client.messages(sid).fetch()
    assert sid.startswith("MM")
    assert (found.body, found.num_media, found.num_segments) == ("", "3", "1")


def test_media_count_is_bounded(sim: TwilioSim) -> None:
    """Twilio delivers at most 10 media per MMS."""
    with pytest.raises(ValueError, match="0-10"):
        sim.inject_inbound(PARTICIPANT, sim.from_number, "", media=11)


def test_short_codes_and_sender_ids_are_delivered(client: Client, sim: TwilioSim) -> None:
    """A short code is answered like a number; an alphanumeric sender ID is one-way, so a
    keyword from it gets no automatic reply."""
    sim.inject_inbound("72345", sim.from_number, "HELP")
    sim.inject_inbound("MyClinic", sim.from_number, "HELP")
    senders = {m.from_ for m in client.messages.list(to=sim.from_number)}
    assert senders == {"72345", "MyClinic"}
    replies = [m.to for m in client.messages.list() if m.direction == "outbound-reply"]
    assert replies == ["72345"]


def test_control_endpoint_stores_an_inbound_message(client: Client, sim: TwilioSim) -> None:
    """POST /sandbox/inbound.json with the account's credentials: 201 and the message JSON,
    To defaulting to our number; it then lists like any inbound message."""
    answer = control(sim, From=PARTICIPANT, Body="Sí 👍")
    assert answer.status_code == 201
    payload = answer.json()
    assert (payload["direction"], payload["to"], payload["body"]) == (
        "inbound",
        sim.from_number,
        "Sí 👍",
    )
    [found] = client.messages.list(to=sim.from_number)
    assert found.sid == payload["sid"]


def test_control_endpoint_takes_media_keywords_and_another_to(
    client: Client, sim: TwilioSim
) -> None:
    """NumMedia makes an MMS; STOP through it blocks as a real STOP does; To can be set."""
    mms = control(sim, From=PARTICIPANT, Body="", NumMedia="1").json()
    assert (mms["num_media"], mms["body"]) == ("1", "")
    assert control(sim, From=PARTICIPANT, Body="STOP").status_code == 201
    assert sim.is_opted_out(PARTICIPANT)
    elsewhere = control(sim, From=OTHER, To="+15550008888", Body="yes").json()
    assert elsewhere["to"] == "+15550008888"


def test_control_endpoint_needs_the_credentials(sim: TwilioSim) -> None:
    """Without the simulator's auth token: 401 (20003), and nothing is stored."""
    answer = control(sim, auth=(sim.account_sid, "0" * 32), From=PARTICIPANT, Body="YES")
    assert (answer.status_code, answer.json()["code"]) == (401, 20003)
    assert sim.store.visible() == []


@pytest.mark.parametrize(
    ("form", "status"),
    [
        ({"Body": "YES"}, 400),
        ({"From": PARTICIPANT, "Body": "x" * 1601}, 400),
        ({"From": PARTICIPANT, "Body": "", "NumMedia": "eleven"}, 400),
        ({"From": PARTICIPANT, "Body": "", "NumMedia": "11"}, 400),
    ],
)
def test_control_endpoint_refuses_bad_requests(
    sim: TwilioSim, form: dict[str, str], status: int
) -> None:
    """No From, over 1,600 characters or a bad NumMedia: 400, nothing stored."""
    assert control(sim, **form).status_code == status
    assert sim.store.visible() == []


def test_control_endpoint_is_not_a_messages_request(sim: TwilioSim) -> None:
    """It is counted apart from the Messages API, so request counts of a service stay exact,
    and a GET is refused (405)."""
    sim.server.reset_stats()
    control(sim, From=PARTICIPANT, Body="YES")
    assert dict(sim.server.stats.requests) == {"control/POST/inbound": 1}
    answer = requests.get(
        sim.base_url + CONTROL_PATH, auth=(sim.account_sid, sim.auth_token), timeout=5
    )
    assert answer.status_code == 405
