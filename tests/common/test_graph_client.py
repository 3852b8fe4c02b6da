"""The Graph mail adapter against the Microsoft simulator, through msal's real code path.

Every test builds a fresh adapter (a fresh msal app with ``http_cache={}``): msal's throttling
cache would otherwise replay one test's 429 into the next (TWILIO_API.md §6.4).
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from common.errors import (
    ConfigError,
    GraphOutcomeUnknown,
    GraphRejected,
    GraphUnavailable,
)
from common.graph_client import MESSAGE_ID_PROPERTY, CertificateCredential, GraphMailer
from common.settings import Settings
from sandbox.clock import SimClock
from sandbox.microsoft.identity import thumbprint
from sandbox.microsoft.server import MicrosoftSim
from tests.conftest import START
from tests.sandbox.microsoft.helpers import make_certificate

TO = "participant@example.org"


class Sleeps:
    """Records the adapter's waits instead of sleeping (retries switchable off in tests)."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def mailer(ms: MicrosoftSim, sleeps: Sleeps | None = None, **kwargs: Any) -> GraphMailer:
    options: dict[str, Any] = {
        "sender": ms.sender,
        "client_secret": ms.client_secret,
        "authority_url": ms.base_url,
        "api_base_url": ms.base_url,
        "can_read_sent": True,
        "timeout": 5.0,
        "sleep": sleeps or Sleeps(),
        "http_cache": {},
    }
    options.update(kwargs)
    return GraphMailer(ms.tenant_id, ms.client_id, **options)


def test_a_token_is_acquired_once_and_reused_for_every_send(ms: MicrosoftSim) -> None:
    """msal's cache serves the second send: one token request, two mails, our header on each."""
    graph = mailer(ms)
    graph.send(TO, "Survey", "Hello", message_id="r1-1")
    graph.send(TO, "Survey", "Hello again", message_id="r1-2")
    assert ms.requests("token") == 1 and ms.requests("sendMail") == 2
    assert [m.headers for m in ms.sent()] == [
        {"x-redcap-relay-id": "r1-1"},
        {"x-redcap-relay-id": "r1-2"},
    ]
    assert ms.sent()[0].content_type == "text" and ms.sent()[0].saved


def test_html_is_sent_as_the_html_body_and_sent_items_can_be_skipped(ms: MicrosoftSim) -> None:
    """html= makes an HTML body; save_to_sent_items=False reaches Graph as saveToSentItems."""
    mailer(ms, save_to_sent_items=False).send(TO, "S", "plain", "<p>rich</p>", message_id="r")
    [sent] = ms.sent()
    assert sent.content_type == "html" and sent.content == "<p>rich</p>" and not sent.saved


def test_a_bad_secret_is_a_one_line_config_error(ms: MicrosoftSim) -> None:
    """AADSTS7000215 names GRAPH_CLIENT_SECRET and the fix; nothing is sent. msal's own path
    ran: OpenID configuration, the token request, then instance discovery on the error."""
    with pytest.raises(ConfigError) as caught:
        mailer(ms, client_secret="wrong").send(TO, "S", "T", message_id="r")
    message = str(caught.value)
    assert "GRAPH_CLIENT_SECRET" in message and "AADSTS7000215" in message and "\n" not in message
    assert ms.sent() == [] and ms.requests("sendMail") == 0
    assert [ms.requests(op) for op in ("openid", "token", "discovery")] == [1, 1, 1]


def test_an_unknown_client_id_is_a_config_error(ms: MicrosoftSim) -> None:
    """AADSTS700016: the message points at GRAPH_CLIENT_ID."""
    graph = GraphMailer(
        ms.tenant_id,
        "00000000-0000-0000-0000-000000000000",
        sender=ms.sender,
        client_secret=ms.client_secret,
        authority_url=ms.base_url,
        api_base_url=ms.base_url,
        http_cache={},
    )
    with pytest.raises(ConfigError, match="GRAPH_CLIENT_ID"):
        graph.check()


def test_an_unknown_tenant_is_a_config_error(ms: MicrosoftSim) -> None:
    """msal's constructor fails the OpenID discovery (AADSTS90002): GRAPH_TENANT_ID."""
    graph = GraphMailer(
        "11111111-1111-1111-1111-111111111111",
        ms.client_id,
        sender=ms.sender,
        client_secret=ms.client_secret,
        authority_url=ms.base_url,
        api_base_url=ms.base_url,
        http_cache={},
    )
    with pytest.raises(ConfigError, match="GRAPH_TENANT_ID"):
        graph.check()


def test_a_certificate_credential_gets_a_token_and_sends(ms: MicrosoftSim) -> None:
    """Private key PEM + thumbprint: msal signs an assertion the simulator verifies."""
    key, cert = make_certificate()
    thumbprint = ms.register_certificate(cert)
    graph = mailer(ms, client_secret="", certificate=CertificateCredential(key, thumbprint))
    graph.send(TO, "S", "T", message_id="cert-1")
    assert len(ms.sent()) == 1 and ms.requests("token") == 1


def test_a_certificate_the_app_does_not_know_is_a_config_error(ms: MicrosoftSim) -> None:
    """AADSTS700027: the message names GRAPH_CERT_THUMBPRINT and GRAPH_CERT_PATH."""
    key, cert = make_certificate()
    credential = CertificateCredential(key, thumbprint(cert))
    with pytest.raises(ConfigError, match="GRAPH_CERT_THUMBPRINT"):
        mailer(ms, client_secret="", certificate=credential).check()


def test_throttling_waits_retry_after_then_sends_once(ms: MicrosoftSim, sleeps: Sleeps) -> None:
    """429 was not applied: wait the Retry-After Graph gave, send again, one mail."""
    ms.throttle_next(retry_after=2)
    mailer(ms, sleeps).send(TO, "S", "T", message_id="r")
    assert sleeps.waits == [2.0]
    assert ms.requests("sendMail") == 2 and len(ms.sent()) == 1


def test_throttling_is_bounded_in_attempts(ms: MicrosoftSim, sleeps: Sleeps) -> None:
    """Three 429s with max_attempts=3: GraphUnavailable with Retry-After, nothing sent."""
    ms.throttle_next(5, retry_after=1)
    with pytest.raises(GraphUnavailable) as caught:
        mailer(ms, sleeps, max_attempts=3).send(TO, "S", "T", message_id="r")
    assert not isinstance(caught.value, GraphOutcomeUnknown)
    assert caught.value.retry_after == 1 and sleeps.waits == [1.0, 1.0]
    assert ms.requests("sendMail") == 3 and ms.sent() == []


def test_throttling_is_bounded_in_time(ms: MicrosoftSim, sleeps: Sleeps) -> None:
    """A Retry-After beyond the time budget is not waited out: GraphUnavailable at once."""
    ms.throttle_next(retry_after=120)
    with pytest.raises(GraphUnavailable) as caught:
        mailer(ms, sleeps, max_wait_seconds=30).send(TO, "S", "T", message_id="r")
    assert caught.value.retry_after == 120 and sleeps.waits == []
    assert ms.requests("sendMail") == 1


def test_a_real_wait_of_retry_after_seconds(ms: MicrosoftSim) -> None:
    """With the default sleep the adapter really waits (one second here) and then sends."""
    ms.throttle_next(retry_after=1)
    graph = mailer(ms, sleep=time.sleep)
    began = time.monotonic()
    graph.send(TO, "S", "T", message_id="r")
    assert 1.0 <= time.monotonic() - began < 5 and len(ms.sent()) == 1


def test_a_503_to_sendmail_is_outcome_unknown_and_not_resent(
    ms: MicrosoftSim, sleeps: Sleeps
) -> None:
    """A 5xx may follow a send that happened: never re-POSTed, whatever its Retry-After."""
    ms.throttle_next(status=503, retry_after=1)
    with pytest.raises(GraphOutcomeUnknown) as caught:
        mailer(ms, sleeps).send(TO, "S", "T", message_id="r")
    assert caught.value.retry_after == 1
    assert ms.requests("sendMail") == 1 and sleeps.waits == []


def test_a_503_to_a_read_is_retried_after_retry_after(ms: MicrosoftSim, sleeps: Sleeps) -> None:
    """Reads are idempotent: 503 + Retry-After is waited out."""
    ms.throttle_next(op="listSent", status=503, retry_after=3)
    assert mailer(ms, sleeps).find_sent("r", START) is None
    assert sleeps.waits == [3.0] and ms.requests("listSent") == 2


def test_a_timeout_after_the_mail_was_accepted_is_outcome_unknown_and_not_resent(
    ms: MicrosoftSim,
) -> None:
    """Graph took the mail but the answer never came: GraphOutcomeUnknown, one mail, one POST."""
    graph = mailer(ms, timeout=0.5)
    graph.check()  # token first: the hang is on sendMail
    ms.hang_next(seconds=5)
    with pytest.raises(GraphOutcomeUnknown):
        graph.send(TO, "S", "T", message_id="r-hang")
    assert len(ms.sent()) == 1 and ms.requests("sendMail") == 1
    assert ms.sent()[0].headers == {"x-redcap-relay-id": "r-hang"}


def test_a_reset_connection_is_outcome_unknown(ms: MicrosoftSim) -> None:
    """No status line at all: the adapter cannot know; it does not resend."""
    ms.reset_next()
    with pytest.raises(GraphOutcomeUnknown):
        mailer(ms).send(TO, "S", "T", message_id="r")
    assert ms.requests("sendMail") == 1


def test_an_unreachable_microsoft_is_unavailable_not_unknown(ms: MicrosoftSim) -> None:
    """Connection refused: nothing can have been sent."""
    graph = mailer(ms)
    ms.stop()
    with pytest.raises(GraphUnavailable) as caught:
        graph.send(TO, "S", "T", message_id="r")
    assert not isinstance(caught.value, GraphOutcomeUnknown)


def test_an_unknown_sender_mailbox_is_a_config_error(ms: MicrosoftSim) -> None:
    """ErrorInvalidUser names GRAPH_SENDER, never the participant's address."""
    with pytest.raises(ConfigError) as caught:
        mailer(ms, sender="nobody@sandbox.example.org").send(TO, "S", "T", message_id="r")
    assert "GRAPH_SENDER" in str(caught.value) and TO not in str(caught.value)


def test_a_bad_recipient_is_rejected_permanently_without_the_address(ms: MicrosoftSim) -> None:
    """ErrorInvalidRecipients: GraphRejected (recorded on the record, not retried)."""
    with pytest.raises(GraphRejected) as caught:
        mailer(ms).send("not an address", "S", "T", message_id="r")
    assert caught.value.code == "ErrorInvalidRecipients"
    assert "not an address" not in str(caught.value)


def test_a_token_graph_no_longer_accepts_is_renewed_once(
    ms: MicrosoftSim, ms_clock: SimClock
) -> None:
    """msal still holds the token but Graph says 401 (expired early): one fresh token, sent."""
    graph = mailer(ms)
    graph.send(TO, "S", "T", message_id="r1")
    ms_clock.advance(3600)  # the simulator's clock only: msal's cache still trusts the token
    graph.send(TO, "S", "T", message_id="r2")
    assert ms.requests("token") == 2 and len(ms.sent()) == 2


def test_missing_mail_send_permission_is_a_config_error(ms: MicrosoftSim) -> None:
    """403 ErrorAccessDenied: the message says which permission to grant."""
    ms.set_roles()
    with pytest.raises(ConfigError, match=r"Mail\.Send"):
        mailer(ms).send(TO, "S", "T", message_id="r")


def test_find_sent_finds_a_sent_mail_by_our_header_and_not_an_unsent_one(
    ms: MicrosoftSim, ms_clock: SimClock
) -> None:
    """Reconciliation: the header identifies the mail; an id never sent is None."""
    graph = mailer(ms)
    since = ms_clock.now() - timedelta(minutes=1)
    graph.send(TO, "Survey", "T", message_id="r1-sent")
    found = graph.find_sent("r1-sent", since)
    assert found is not None and found.to == (TO,) and found.subject == "Survey"
    assert found.sent_at == ms_clock.now().replace(microsecond=0)
    assert graph.find_sent("r1-never", since) is None
    assert graph.find_sent("r1-sent", ms_clock.now() + timedelta(minutes=1)) is None


def test_find_sent_is_one_request_however_full_sent_items_is(
    ms: MicrosoftSim, ms_clock: SimClock
) -> None:
    """The oldest of 56 mails is found by one filtered request on our extended property (the
    copy in Sent Items has no internet headers to match)."""
    graph = mailer(ms)
    graph.send(TO, "S", "T", message_id="oldest")
    for n in range(55):
        graph.send(TO, "S", "T", message_id=f"n{n}")
    assert graph.find_sent("oldest", START - timedelta(minutes=1)) is not None
    assert ms.requests("listSent") == 1
    assert ms.sent()[0].properties == {MESSAGE_ID_PROPERTY: "oldest"}


def test_find_sent_needs_read_permission_and_the_setting(ms: MicrosoftSim) -> None:
    """GRAPH_CAN_READ_SENT=0 is a ConfigError at once; without Mail.Read (Mail.ReadBasic.All
    does not cover extended properties) Graph's 403 is, naming Mail.Read."""
    with pytest.raises(ConfigError, match="GRAPH_CAN_READ_SENT"):
        mailer(ms, can_read_sent=False).find_sent("r", START)
    assert ms.requests("listSent") == 0
    for roles in (("Mail.Send",), ("Mail.Send", "Mail.ReadBasic.All")):
        ms.set_roles(*roles)
        with pytest.raises(ConfigError, match=r"Mail\.Read "):
            mailer(ms).find_sent("r", START)


def test_check_acquires_a_token_and_finds_the_mailbox(ms: MicrosoftSim) -> None:
    """With User.Read.All the mailbox is looked up in the directory."""
    result = mailer(ms).check()
    assert result.mailbox_verified and ms.requests("token") == 1 and ms.requests("getUser") == 1


def test_check_falls_back_to_sent_items_or_says_what_it_could_not_verify(
    ms: MicrosoftSim,
) -> None:
    """Without directory access: Sent Items when readable, else an honest 'unverified'."""
    ms.set_roles("Mail.Send", "Mail.ReadBasic")
    assert mailer(ms).check().mailbox_verified
    ms.set_roles("Mail.Send")
    result = mailer(ms, can_read_sent=False).check()
    assert not result.mailbox_verified and "User.Read.All" in result.detail


def test_check_reports_an_unknown_mailbox(ms: MicrosoftSim) -> None:
    """A GRAPH_SENDER the directory does not know is a ConfigError naming it."""
    with pytest.raises(ConfigError, match="GRAPH_SENDER"):
        mailer(ms, sender="nobody@sandbox.example.org").check()


def test_built_from_the_sandboxs_settings_it_sends(ms: MicrosoftSim, tmp_path: Path) -> None:
    """from_settings: require_graph first, then the same adapter as production builds."""
    env = {
        "REDCAP_API_URL": "https://redcap.example.org/api/",
        "REDCAP_API_TOKEN": "0123456789ABCDEF0123456789ABCDEF",
        "REDCAP_PROJECT_ID": "12",
        "TIMEZONE": "UTC",
        "GRAPH_TENANT_ID": ms.tenant_id,
        "GRAPH_CLIENT_ID": ms.client_id,
        "GRAPH_CLIENT_SECRET": ms.client_secret,
        "GRAPH_SENDER": ms.sender,
        "GRAPH_AUTHORITY_URL": ms.base_url,
        "GRAPH_API_BASE_URL": ms.base_url,
        "GRAPH_CAN_READ_SENT": "1",
        "HTTP_TIMEOUT_SECONDS": "5",
    }
    graph = GraphMailer.from_settings(Settings.from_env(env), http_cache={})
    graph.send(TO, "S", "T", message_id="from-settings")
    assert graph.find_sent("from-settings", START) is not None
    key, cert = make_certificate()
    key_file = tmp_path / "key.pem"
    key_file.write_text(key)
    key_file.chmod(0o600)  # a private key others can read is refused
    env.pop("GRAPH_CLIENT_SECRET")
    env["GRAPH_CERT_PATH"] = str(key_file)
    env["GRAPH_CERT_THUMBPRINT"] = ms.register_certificate(cert)
    GraphMailer.from_settings(Settings.from_env(env), http_cache={}).check()
    with pytest.raises(ConfigError, match="GRAPH_TENANT_ID"):
        GraphMailer.from_settings(Settings.from_env({**env, "GRAPH_TENANT_ID": ""}))
