"""Lookup v2 as the simulator serves it, read through the SDK as production reads it, and
compared with the answers Twilio's own OpenAPI description gives as examples (twilio-oai,
twilio_lookups_v2.json)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from common.errors import ConfigError
from common.twilio_client import SmsGateway
from sandbox.twilio.server import TwilioSim
from tests.reference import TWILIO_LOOKUPS_OPENAPI

PATH = "/v2/PhoneNumbers/{PhoneNumber}"


def example(name: str) -> dict[str, Any]:
    spec = json.loads(TWILIO_LOOKUPS_OPENAPI.read_text(encoding="utf-8"))
    answers = spec["paths"][PATH]["get"]["responses"]["200"]["content"]["application/json"]
    return dict(answers["examples"][name]["value"])


def fetch(sim: TwilioSim, number: str, **params: str) -> requests.Response:
    return requests.get(
        f"{sim.base_url}/v2/PhoneNumbers/{number}",
        params=params,
        auth=(sim.account_sid, sim.auth_token),
        timeout=5,
    )


def test_a_line_type_answer_has_the_shape_of_twilios_example(twilio_sim: TwilioSim) -> None:
    """Twilio's example number, typed as in the example: every field the example has, the same
    values but the carrier's (the simulator's own carrier), and one charged lookup."""
    want = example("fetchLineTypeIntelligence")
    twilio_sim.line_types.set(want["phone_number"], "nonFixedVoip")
    got = fetch(twilio_sim, want["phone_number"], Fields="line_type_intelligence").json()
    assert list(got) == list(want)
    ours, theirs = got.pop("line_type_intelligence"), want.pop("line_type_intelligence")
    assert got == want
    assert set(ours) == set(theirs) and ours["type"] == theirs["type"] == "nonFixedVoip"
    assert ours["error_code"] is None and twilio_sim.line_types.charged == 1


def test_without_the_package_the_basic_lookup_is_free(twilio_sim: TwilioSim) -> None:
    want = example("fetch")
    assert fetch(twilio_sim, want["phone_number"]).json() == want
    assert twilio_sim.line_types.charged == 0


def test_an_invalid_number_is_twilios_invalid_answer(twilio_sim: TwilioSim) -> None:
    """Too long: valid false, TOO_LONG, every package null, nothing charged."""
    want = example("fetchInvalid")
    got = fetch(twilio_sim, want["phone_number"], Fields="line_type_intelligence").json()
    assert got == want and twilio_sim.line_types.charged == 0


@pytest.mark.parametrize(
    ("number", "kind"),
    [
        ("+16175550100", "mobile"),  # the US: "fixed line or mobile" reads mobile here
        ("+15005550009", "landline"),  # Twilio's test number that is "not a mobile number"
        ("+442079460000", "landline"),
        ("+18005550100", "tollFree"),
        ("+1617555012", "invalid"),  # a digit short
    ],
)
def test_the_gateway_reads_the_line_type(twilio_sim: TwilioSim, number: str, kind: str) -> None:
    gateway = SmsGateway(
        twilio_sim.account_sid,
        twilio_sim.auth_token,
        from_number=twilio_sim.from_number,
        base_url=twilio_sim.base_url,
    )
    assert gateway.line_type(number) == kind


def test_wrong_credentials_name_the_settings(twilio_sim: TwilioSim) -> None:
    gateway = SmsGateway(
        twilio_sim.account_sid, "wrong", from_number=twilio_sim.from_number,
        base_url=twilio_sim.base_url,
    )  # fmt: skip
    with pytest.raises(ConfigError, match="TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN"):
        gateway.line_type("+16175550100")
    assert fetch(twilio_sim, "+16175550100").status_code == 200  # the right ones pass
