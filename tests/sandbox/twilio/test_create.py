"""The Twilio simulator's message create: JSON shape, fetch, auth, validation and magic numbers.

Create and fetch answers field by field, 401/404 errors, the order of the parameter checks,
Twilio's magic To/From numbers, E.164, body length and segment counting, ValidityPeriod and
StatusCallback validation. Driven through the real twilio SDK as production drives it (plus raw
HTTP where the exact bytes matter); each test that pins a Twilio behaviour cites the section of
the team's Twilio notes (TWILIO_API.md) it follows.
"""

from __future__ import annotations

import re

import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from sandbox.twilio.client import make_client
from sandbox.twilio.server import TwilioSim
from tests.sandbox.twilio.helpers import (
    PARTICIPANT,
    START,
    raw,
    refused,
    send,
)

RFC2822 = re.compile(r"^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000$")
MESSAGE_KEYS = {
    "account_sid", "api_version", "body", "date_created", "date_sent", "date_updated",
    "direction", "error_code", "error_message", "from", "messaging_service_sid", "num_media",
    "num_segments", "price", "price_unit", "sid", "status", "subresource_uris", "to", "uri",
}  # fmt: skip


# -- create, fetch, JSON shape ---------------------------------------------------------------


def test_create_returns_201_with_documented_json(sim: TwilioSim) -> None:
    """Create answers 201 with exactly the §1.4 fields and types (TWILIO_API.md §1.4)."""
    response = raw(sim, "POST", data={"To": PARTICIPANT, "From": sim.from_number, "Body": "hi"})
    assert response.status_code == 201
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == MESSAGE_KEYS
    assert re.fullmatch(r"SM[0-9a-f]{32}", body["sid"])
    assert body["status"] == "queued"
    assert body["direction"] == "outbound-api"
    assert (body["num_segments"], body["num_media"]) == ("1", "0")
    assert (body["error_code"], body["price"], body["date_sent"]) == (None, None, None)
    assert RFC2822.match(body["date_created"])
    assert body["date_created"] == "Mon, 02 Mar 2026 10:00:00 +0000"
    assert body["uri"] == f"/2010-04-01/Accounts/{sim.account_sid}/Messages/{body['sid']}.json"
    assert body["subresource_uris"]["media"].endswith(f"/Messages/{body['sid']}/Media.json")


def test_sdk_create_and_fetch_round_trip(client: Client, sim: TwilioSim) -> None:
    """The SDK parses create and fetch answers into typed fields (TWILIO_API.md §4.2)."""
    created = send(client, sim, body="Hello")
    fetched = client.messages(created.sid).fetch()
    assert fetched.sid == created.sid
    assert (fetched.to, fetched.from_, fetched.body) == (PARTICIPANT, sim.from_number, "Hello")
    assert fetched.date_created == START
    assert sim.sent()[0]["sid"] == created.sid
    assert sim.sent(to="+15550100002") == []


def test_fetch_unknown_sid_is_404_20404(client: Client) -> None:
    """An unknown message is 404 with code 20404 (TWILIO_API.md §1.6)."""
    with pytest.raises(TwilioRestException) as caught:
        client.messages("SM" + "0" * 32).fetch()
    assert (caught.value.status, caught.value.code) == (404, 20404)
    assert caught.value.msg.startswith("Unable to fetch record: The requested resource")


def test_wrong_credentials_get_401_20003_legacy_body(sim: TwilioSim) -> None:
    """Bad Basic credentials get 401/20003 in the legacy shape, never type+title (§1.6, §8.3)."""
    client = make_client(sim.base_url, sim.account_sid, "0" * 32, timeout=5)
    with pytest.raises(TwilioRestException) as caught:
        client.messages.create(to=PARTICIPANT, from_=sim.from_number, body="x")
    assert (caught.value.status, caught.value.code) == (401, 20003)
    body = raw(sim, "GET", auth=None).json()
    assert set(body) == {"code", "detail", "message", "more_info", "status"}
    assert body["more_info"] == "https://www.twilio.com/docs/errors/20003"
    assert sim.sent() == []


def test_unknown_path_is_404_20404(sim: TwilioSim) -> None:
    """Routes other than Messages answer 404 with code 20404 (TWILIO_API.md §8.2)."""
    url = f"{sim.base_url}/2010-04-01/Accounts/{sim.account_sid}/Calls.json"
    response = requests.get(url, auth=(sim.account_sid, sim.auth_token), timeout=5)
    assert response.status_code == 404
    assert response.json()["code"] == 20404


# -- validation and magic numbers ------------------------------------------------------------


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"Body": "x"}, 21604),
        ({"To": PARTICIPANT}, 21603),
        ({"To": PARTICIPANT, "From": "+15550009999"}, 21602),
        ({"To": PARTICIPANT, "From": "+15550009999", "Body": ""}, 21602),
    ],
)
def test_missing_parameters_in_documented_order(
    sim: TwilioSim, form: dict[str, str], code: int
) -> None:
    """To (21604), then From (21603), then Body (21602) are checked first (TWILIO_API.md §8.4)."""
    response = raw(sim, "POST", data=form)
    assert response.status_code == 400
    assert response.json()["code"] == code


@pytest.mark.parametrize(
    ("to", "code"),
    [
        ("+15005550001", 21211),
        ("+15005550002", 21612),
        ("+15005550003", 21408),
        ("+15005550004", 21610),
        ("+15005550009", 21614),
    ],
)
def test_magic_to_numbers_are_refused(client: Client, sim: TwilioSim, to: str, code: int) -> None:
    """Twilio's magic To numbers fail the create with their codes (TWILIO_API.md §2.3)."""
    error = refused(client, sim, to=to)
    assert (error.status, error.code) == (400, code)
    assert sim.sent() == []


@pytest.mark.parametrize(
    ("from_", "code"),
    [
        ("+15005550001", 21212),
        ("+15005550007", 21606),
        ("+15005550008", 21611),
        ("+15557770000", 21606),
    ],
)
def test_magic_and_unowned_from_numbers_are_refused(client: Client, from_: str, code: int) -> None:
    """Magic From numbers and numbers the account does not own are refused (§2.3)."""
    with pytest.raises(TwilioRestException) as caught:
        client.messages.create(to=PARTICIPANT, from_=from_, body="x")
    assert (caught.value.status, caught.value.code) == (400, code)


def test_magic_from_that_passes(client: Client) -> None:
    """From +15005550006 is accepted like an owned number (TWILIO_API.md §2.3)."""
    message = client.messages.create(to=PARTICIPANT, from_="+15005550006", body="x")
    assert message.status == "queued"


@pytest.mark.parametrize("to", ["5550100001", "+1 555 010 0001", "+0123456789", "+1555"])
def test_non_e164_to_is_21211(client: Client, sim: TwilioSim, to: str) -> None:
    """A To that is not E.164 is refused with 21211 (TWILIO_API.md §8.4)."""
    error = refused(client, sim, to=to)
    assert error.code == 21211
    assert "Unable to create record" in error.msg


def test_body_limit_is_1600_characters(client: Client, sim: TwilioSim) -> None:
    """Bodies over 1,600 characters get 21617; 1,600 is accepted (TWILIO_API.md §3.3)."""
    assert refused(client, sim, body="a" * 1601).code == 21617
    assert send(client, sim, body="a" * 1600).num_segments == "11"


@pytest.mark.parametrize(
    ("body", "segments"),
    [
        ("a" * 160, "1"),
        ("a" * 161, "2"),
        ("a" * 306, "2"),
        ("a" * 307, "3"),
        ("€" * 80, "1"),  # extension characters take two septets
        ("€" * 81, "2"),
        ("a" * 152 + "€" + "a" * 152, "3"),  # 306 septets, but an escape pair is never split
        ("ł" * 70, "1"),  # outside GSM-7: UCS-2
        ("ł" * 71, "2"),
        ("ł" * 134, "2"),
        ("ł" * 135, "3"),
        ("👍" * 35, "1"),  # surrogate pairs: two UTF-16 units each
        ("👍" * 36, "2"),
        ("ł" * 66 + "👍" + "ł" * 66, "3"),  # 134 units, but a surrogate pair is never split
    ],
)
def test_num_segments_follow_gsm7_and_ucs2_rules(
    client: Client, sim: TwilioSim, body: str, segments: str
) -> None:
    """num_segments is a string computed by GSM-7 / UCS-2 rules (TWILIO_API.md §3.3)."""
    assert send(client, sim, body=body).num_segments == segments


def test_validity_period_out_of_range(client: Client, sim: TwilioSim) -> None:
    """ValidityPeriod outside 1-36000 is refused with 90007 (TWILIO_API.md §3.1)."""
    assert refused(client, sim, validity_period=36001).code == 90007
    assert refused(client, sim, validity_period=0).code == 90007


def test_invalid_status_callback_is_21609(client: Client, sim: TwilioSim) -> None:
    """A StatusCallback that is not an http(s) URL is refused with 21609 (TWILIO_API.md §1.3)."""
    assert refused(client, sim, status_callback="ftp://example.org/cb").code == 21609
