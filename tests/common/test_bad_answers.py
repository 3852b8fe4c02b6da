"""Bad answers at the adapters: an HTML page (200 or 403, a proxy or firewall in front), a body
cut short, or one trickled past the deadline, from REDCap (PyCap), Twilio (the SDK), Graph and
the token endpoint (msal), is one of our transient errors, never a configuration error, never a
third-party exception. Real HTTP to the simulators; a timeout of 0.25 s (so a 0.5 s deadline)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from common.errors import (
    ConfigError,
    GraphOutcomeUnknown,
    GraphUnavailable,
    RedcapUnavailable,
    TwilioOutcomeUnknown,
    TwilioUnavailable,
)
from common.graph_client import GraphMailer, check_private_key
from common.redcap_client import RedcapClient
from common.twilio_client import SmsGateway
from sandbox.faults import Fault
from sandbox.microsoft.server import MicrosoftSim
from sandbox.redcap.demo import build_demo_project
from sandbox.redcap.server import RedcapSim
from sandbox.twilio.server import TwilioSim
from tests.conftest import TWILIO_START
from tests.sandbox.microsoft.helpers import make_certificate

TO = "+16175550100"
MAIL_TO = "participant@example.org"


def bad(kind: str) -> Fault:
    """One bad answer of ``kind``: html-200, html-403, truncate, or trickle (a byte every
    0.1 s: minutes for any answer, each read far within the timeout)."""
    if kind.startswith("html"):
        return Fault(kind="html", status=int(kind.split("-")[1]))
    if kind == "trickle":
        return Fault(kind="trickle", chunk=1, seconds=0.1)
    return Fault(kind="truncate")


KINDS = ["html-200", "html-403", "truncate", "trickle"]
TIMEOUT = 0.25


@pytest.fixture
def redcap() -> Iterator[RedcapSim]:
    with RedcapSim(build_demo_project()) as sim:
        yield sim


def twilio(sim: TwilioSim) -> SmsGateway:
    return SmsGateway(
        sim.account_sid,
        sim.auth_token,
        from_number=sim.from_number,
        base_url=sim.base_url,
        timeout=TIMEOUT,
    )


def graph(ms: MicrosoftSim) -> GraphMailer:
    return GraphMailer(
        ms.tenant_id,
        ms.client_id,
        sender=ms.sender,
        client_secret=ms.client_secret,
        authority_url=ms.base_url,
        api_base_url=ms.base_url,
        can_read_sent=True,
        timeout=TIMEOUT,
        max_attempts=1,
        http_cache={},
    )


@pytest.mark.parametrize("kind", KINDS)
def test_redcap_bad_answers_are_redcap_unavailable(redcap: RedcapSim, kind: str) -> None:
    """The data dictionary answered badly is RedcapUnavailable (next cycle), then is read."""
    client = RedcapClient(redcap.url, redcap.token, timeout=TIMEOUT)
    fault = bad(kind)
    fault.match = {"content": "metadata"}
    redcap.server.faults.add(fault)
    with pytest.raises(RedcapUnavailable):
        client.metadata()
    assert client.metadata()[0]["field_name"] == "record_id"


def test_a_web_page_for_a_survey_link_is_redcap_unavailable_not_the_records_fault(
    redcap: RedcapSim,
) -> None:
    """surveyLink answers a bare value as text/html; a whole HTML document is not a link
    REDCap made but a page in front of it: transient, the participant's row untouched."""
    client = RedcapClient(redcap.url, redcap.token, timeout=TIMEOUT)
    redcap.server.faults.add(Fault(kind="html", status=200, match={"content": "surveyLink"}))
    with pytest.raises(RedcapUnavailable, match="web page"):
        client.survey_link("1", "interest_form", None)


@pytest.mark.parametrize("kind", KINDS)
def test_a_twilio_create_answered_badly_has_an_unknown_outcome(
    twilio_sim: TwilioSim, kind: str
) -> None:
    """Whatever a bad answer to a create looks like, the message may exist: outcome unknown
    (reconcile, never post again), not a credentials error."""
    fault = bad(kind)
    fault.match = {"op": "create"}
    twilio_sim.server.faults.add(fault)
    with pytest.raises(TwilioOutcomeUnknown):
        twilio(twilio_sim).send(TO, "hello")


def test_a_twilio_201_without_a_sid_has_an_unknown_outcome(twilio_sim: TwilioSim) -> None:
    """A 201 whose JSON carries no message SID: created, but which? Outcome unknown."""
    twilio_sim.server.faults.add(
        Fault(kind="status", status=201, body="{}", after_apply=True, match={"op": "create"})
    )
    with pytest.raises(TwilioOutcomeUnknown, match="SID"):
        twilio(twilio_sim).send(TO, "hello")
    assert len(twilio_sim.sent(to=TO)) == 1


@pytest.mark.parametrize("kind", KINDS)
def test_twilio_reads_answered_badly_are_twilio_unavailable(
    twilio_sim: TwilioSim, kind: str
) -> None:
    """A fetch or a list answered badly is TwilioUnavailable, never ConfigError."""
    gateway = twilio(twilio_sim)
    sid = gateway.send(TO, "hello").sid
    for op in ("fetch", "list"):
        fault = bad(kind)
        fault.match = {"op": op}
        twilio_sim.server.faults.add(fault)
    with pytest.raises(TwilioUnavailable) as fetched:
        gateway.fetch(sid)
    with pytest.raises(TwilioUnavailable) as listed:
        gateway.messages_to(TO, TWILIO_START - timedelta(days=1))
    assert not isinstance(fetched.value, TwilioOutcomeUnknown)
    assert not isinstance(listed.value, TwilioOutcomeUnknown)
    assert gateway.fetch(sid).sid == sid


@pytest.mark.parametrize("kind", KINDS)
def test_a_token_endpoint_answering_badly_is_graph_unavailable(ms: MicrosoftSim, kind: str) -> None:
    """The token request answered by a page, cut short or trickled: GraphUnavailable (nothing
    sent), not "GRAPH_CERT_PATH does not hold a usable PEM" (ConfigError, exit 2)."""
    fault = bad(kind)
    fault.match = {"service": "identity", "op": "token"}
    ms.server.faults.add(fault)
    mailer = graph(ms)
    with pytest.raises(GraphUnavailable) as caught:
        mailer.send(MAIL_TO, "S", "hello", message_id="r1")
    assert not isinstance(caught.value, GraphOutcomeUnknown)
    assert ms.sent() == []
    mailer.send(MAIL_TO, "S", "hello", message_id="r1")
    assert len(ms.sent()) == 1


def test_the_openid_configuration_as_a_page_is_graph_unavailable(ms: MicrosoftSim) -> None:
    """msal's first request (the tenant's OpenID configuration) answered by a page: transient."""
    ms.server.faults.add(Fault(kind="html", status=200, match={"service": "identity"}))
    with pytest.raises(GraphUnavailable):
        graph(ms).send(MAIL_TO, "S", "hello", message_id="r1")


@pytest.mark.parametrize("kind", ["html-200", "html-403"])  # a 202 has no body to cut or trickle
def test_a_sendmail_answered_badly_has_an_unknown_outcome(ms: MicrosoftSim, kind: str) -> None:
    """The mail may have gone: GraphOutcomeUnknown (look in Sent Items, never resend)."""
    fault = bad(kind)
    fault.match = {"service": "graph", "op": "sendMail"}
    ms.server.faults.add(fault)
    with pytest.raises(GraphOutcomeUnknown):
        graph(ms).send(MAIL_TO, "S", "hello", message_id="r1")


@pytest.mark.parametrize("kind", KINDS)
def test_a_sent_items_search_answered_badly_is_graph_unavailable(
    ms: MicrosoftSim, kind: str
) -> None:
    """A Sent Items search answered by a page (or cut, or trickled) is GraphUnavailable, not a
    JSON decoding traceback; the next search finds the mail."""
    mailer = graph(ms)
    mailer.send(MAIL_TO, "S", "hello", message_id="r1")
    fault = bad(kind)
    fault.match = {"service": "graph", "op": "listSent"}
    ms.server.faults.add(fault)
    since = ms.clock.now() - timedelta(minutes=1)
    with pytest.raises(GraphUnavailable):
        mailer.find_sent("r1", since)
    assert mailer.find_sent("r1", since) is not None


def test_the_private_key_is_checked_on_its_own_at_startup(tmp_path: Path) -> None:
    """A file that is no PEM private key is ConfigError naming GRAPH_CERT_PATH; a real key
    passes (token trouble later can no longer pass for a bad key)."""
    key_pem, _certificate = make_certificate()
    check_private_key(key_pem)
    with pytest.raises(ConfigError, match="GRAPH_CERT_PATH"):
        check_private_key("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
