"""The simulated Graph mail endpoints, called directly with a token from the simulator."""

from __future__ import annotations

import threading

import pytest
import requests

from sandbox.clock import SimClock
from sandbox.microsoft.server import MicrosoftSim
from tests.sandbox.microsoft.helpers import graph, mail, raw_token

SEND = "/v1.0/users/{}/sendMail"
SENT = "/v1.0/users/{}/mailFolders/sentitems/messages"


@pytest.fixture
def token(ms: MicrosoftSim) -> str:
    return raw_token(ms)


def test_sendmail_is_202_with_an_empty_body_and_lands_in_the_mailbox_log(
    ms: MicrosoftSim, token: str
) -> None:
    """Graph's documented answer; the log keeps recipient, subject, body and our x- header."""
    answer = graph(ms, "POST", SEND.format(ms.sender), token, json=mail())
    assert answer.status_code == 202 and answer.content == b""
    [sent] = ms.sent()
    assert sent.to == ("participant@example.org",) and sent.subject == "Your next survey"
    assert sent.headers == {"x-redcap-relay-id": "r1"} and sent.saved
    assert ms.sent(to="someone@else.org") == []


@pytest.mark.parametrize(
    ("token_value", "message"),
    [(None, "Access token is empty."), ("forged", "IDX14100")],
)
def test_graph_needs_a_token_this_simulator_issued(
    ms: MicrosoftSim, token_value: str | None, message: str
) -> None:
    """401 InvalidAuthenticationToken in Graph's error shape; nothing is sent."""
    answer = graph(ms, "POST", SEND.format(ms.sender), token_value, json=mail())
    error = answer.json()["error"]
    assert answer.status_code == 401 and error["code"] == "InvalidAuthenticationToken"
    assert message in error["message"] and "request-id" in error["innerError"]
    assert ms.sent() == []


def test_a_token_expires_after_an_hour_of_simulated_time(
    ms: MicrosoftSim, ms_clock: SimClock, token: str
) -> None:
    """expires_in 3599 is kept: an hour later the same token is refused."""
    ms_clock.advance(3600)
    answer = graph(ms, "POST", SEND.format(ms.sender), token, json=mail())
    assert answer.status_code == 401 and "expired" in answer.json()["error"]["message"]


def test_an_unknown_mailbox_is_404_error_invalid_user(ms: MicrosoftSim, token: str) -> None:
    """Sending as a mailbox the tenant lacks."""
    answer = graph(ms, "POST", SEND.format("nobody@sandbox.example.org"), token, json=mail())
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "ErrorInvalidUser"


@pytest.mark.parametrize(
    "body",
    [mail(to="not an address"), mail(toRecipients=[])],
    ids=["malformed address", "no recipient"],
)
def test_a_bad_or_missing_recipient_is_400_error_invalid_recipients(
    ms: MicrosoftSim, token: str, body: dict[str, object]
) -> None:
    """Graph refuses before accepting: nothing in the log."""
    answer = graph(ms, "POST", SEND.format(ms.sender), token, json=body)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "ErrorInvalidRecipients"
    assert ms.sent() == []


def test_a_custom_header_must_start_with_x(ms: MicrosoftSim, token: str) -> None:
    """Graph's message resource: custom internet message headers are named x-..."""
    body = mail(internetMessageHeaders=[{"name": "Relay-Id", "value": "r1"}])
    answer = graph(ms, "POST", SEND.format(ms.sender), token, json=body)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "InvalidInternetMessageHeader"


def test_save_to_sent_items_defaults_to_true_and_accepts_the_docs_string_form(
    ms: MicrosoftSim, token: str
) -> None:
    """Graph's docs: default true; their own example sends ``"false"`` as a string."""
    without = mail()
    del without["saveToSentItems"]
    graph(ms, "POST", SEND.format(ms.sender), token, json=without)
    graph(ms, "POST", SEND.format(ms.sender), token, json={**mail(), "saveToSentItems": "false"})
    assert [m.saved for m in ms.sent()] == [True, False]


def test_sent_items_lists_saved_mail_without_internet_headers(
    ms: MicrosoftSim, token: str, ms_clock: SimClock
) -> None:
    """Newest first; unsaved mail absent; the sentDateTime filter bounds the window; the copy in
    Sent Items carries no internetMessageHeaders even when $select names them (Microsoft's
    Graph team, microsoft-graph-docs#2716), though the mail itself had one."""
    graph(ms, "POST", SEND.format(ms.sender), token, json=mail())
    ms_clock.advance(60)
    later = ms_clock.now()
    graph(ms, "POST", SEND.format(ms.sender), token, json={**mail(), "saveToSentItems": False})
    second = mail()
    second["message"]["internetMessageHeaders"] = [{"name": "x-redcap-relay-id", "value": "r2"}]
    graph(ms, "POST", SEND.format(ms.sender), token, json=second)
    plain = graph(ms, "GET", SENT.format(ms.sender), token).json()["value"]
    assert len(plain) == 2 and "internetMessageHeaders" not in plain[0]
    stamp = later.strftime("%Y-%m-%dT%H:%M:%SZ")
    query = {"$filter": f"sentDateTime ge {stamp}", "$select": "id,internetMessageHeaders"}
    found = graph(ms, "GET", SENT.format(ms.sender), token, params=query).json()["value"]
    assert len(found) == 1 and "internetMessageHeaders" not in found[0]
    assert ms.sent()[-1].headers == {"x-redcap-relay-id": "r2"}


PROPERTY = "String {6b0c2f5e-9d7a-4c1e-8f3b-2a4d5e6f7a81} Name RedcapRelayId"


def test_an_extended_property_is_kept_and_filtered_on_with_mail_read(
    ms: MicrosoftSim, token: str
) -> None:
    """A singleValueExtendedProperty set at sendMail is found again with
    singleValueExtendedProperties/Any(...): the name case-sensitive, the value not; with only
    Mail.ReadBasic.All the filter is refused (extended properties need Mail.Read)."""
    for value in ("ab12", "cd34"):
        tagged = mail()
        tagged["message"]["singleValueExtendedProperties"] = [{"id": PROPERTY, "value": value}]
        graph(ms, "POST", SEND.format(ms.sender), token, json=tagged)

    def search(prop: str, value: str, bearer: str = token) -> list[dict[str, object]]:
        query = {"$filter": f"singleValueExtendedProperties/Any(ep: ep/id eq '{prop}' and "
                 f"ep/value eq '{value}')"}  # fmt: skip
        answer = graph(ms, "GET", SENT.format(ms.sender), bearer, params=query)
        assert answer.status_code == 200, answer.text
        return list(answer.json()["value"])

    assert len(search(PROPERTY, "AB12")) == 1
    assert search(PROPERTY.replace("RedcapRelayId", "redcaprelayid"), "ab12") == []
    assert search(PROPERTY.upper().replace("NAME REDCAPRELAYID", "Name RedcapRelayId"), "cd34")
    ms.set_roles("Mail.Send", "Mail.ReadBasic.All")
    basic = raw_token(ms)
    query = {"$filter": f"singleValueExtendedProperties/Any(ep: ep/id eq '{PROPERTY}' and "
             "ep/value eq 'ab12')"}  # fmt: skip
    denied = graph(ms, "GET", SENT.format(ms.sender), basic, params=query)
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "ErrorAccessDenied"


def test_sent_items_pages_with_an_odata_next_link_on_graphs_host(
    ms: MicrosoftSim, token: str
) -> None:
    """$top bounds a page; the nextLink is an absolute https://graph.microsoft.com URL."""
    for _ in range(3):
        graph(ms, "POST", SEND.format(ms.sender), token, json=mail())
    page = graph(ms, "GET", SENT.format(ms.sender), token, params={"$top": "2"}).json()
    assert len(page["value"]) == 2
    link = page["@odata.nextLink"]
    assert link.startswith("https://graph.microsoft.com/v1.0/users/")
    rest = graph(ms, "GET", link.removeprefix("https://graph.microsoft.com"), token).json()
    assert len(rest["value"]) == 1 and "@odata.nextLink" not in rest


def test_an_unsupported_filter_is_400(ms: MicrosoftSim, token: str) -> None:
    """Graph does not filter on internetMessageHeaders; neither does the simulator."""
    query = {"$filter": "internetMessageHeaders/any(h:h/value eq 'r1')"}
    answer = graph(ms, "GET", SENT.format(ms.sender), token, params=query)
    assert answer.status_code == 400


def test_reading_sent_items_and_users_needs_the_permissions(ms: MicrosoftSim) -> None:
    """Mail.Send alone: Sent Items 403 ErrorAccessDenied, the user 403
    Authorization_RequestDenied; with the roles, the user is found (or 404)."""
    ms.set_roles("Mail.Send")
    token = raw_token(ms)
    assert graph(ms, "GET", SENT.format(ms.sender), token).json()["error"]["code"] == (
        "ErrorAccessDenied"
    )
    user = graph(ms, "GET", f"/v1.0/users/{ms.sender}", token)
    assert user.status_code == 403 and user.json()["error"]["code"] == "Authorization_RequestDenied"
    ms.set_roles("Mail.Send", "User.Read.All")
    token = raw_token(ms)
    assert graph(ms, "GET", f"/v1.0/users/{ms.sender}", token).json()["mail"] == ms.sender
    missing = graph(ms, "GET", "/v1.0/users/nobody@sandbox.example.org", token)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "Request_ResourceNotFound"


@pytest.mark.parametrize("status", [429, 503])
def test_injected_throttling_has_graphs_shape_and_retry_after(
    ms: MicrosoftSim, token: str, status: int
) -> None:
    """429 ApplicationThrottled / 503 ServiceUnavailable with Retry-After; not applied."""
    ms.throttle_next(status=status, retry_after=7)
    answer = graph(ms, "POST", SEND.format(ms.sender), token, json=mail())
    assert answer.status_code == status and answer.headers["Retry-After"] == "7"
    assert answer.json()["error"]["code"] in ("ApplicationThrottled", "ServiceUnavailable")
    assert ms.sent() == [] and ms.requests("sendMail") == 1
    assert graph(ms, "POST", SEND.format(ms.sender), token, json=mail()).status_code == 202


def test_a_hang_after_apply_keeps_the_mail_but_withholds_the_answer(
    ms: MicrosoftSim, token: str
) -> None:
    """The "Graph sent it, we never heard" case the adapter must treat as outcome unknown."""
    ms.hang_next(seconds=5)
    with pytest.raises(requests.ReadTimeout):
        requests.post(
            f"{ms.base_url}{SEND.format(ms.sender)}",
            json=mail(),
            headers={"Authorization": f"Bearer {token}"},
            timeout=0.5,
        )
    assert len(ms.sent()) == 1


def test_a_reset_answers_nothing_and_sends_nothing(ms: MicrosoftSim, token: str) -> None:
    """The connection closes without a status line."""
    ms.reset_next()
    with pytest.raises(requests.ConnectionError):
        graph(ms, "POST", SEND.format(ms.sender), token, json=mail())
    assert ms.sent() == []


def test_the_simulator_stops_promptly_with_a_request_hanging(ms: MicrosoftSim) -> None:
    """stop() releases hangs: bounded."""
    token = raw_token(ms)
    ms.hang_next(seconds=30, after_apply=False)
    worker = threading.Thread(
        target=lambda: _swallow(
            lambda: graph(ms, "POST", SEND.format(ms.sender), token, json=mail())
        )
    )
    worker.start()
    ms.stop()
    worker.join(timeout=10)
    assert not worker.is_alive()


def _swallow(call: object) -> None:
    try:
        if callable(call):
            call()
    except requests.RequestException:
        pass
