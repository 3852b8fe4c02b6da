"""The REDCap simulator over raw HTTP: transport, check order, error shapes, rate limiter.

Tokens, methods and paths, the order REDCap checks them in, error bodies in the returnFormat
shape, PHP-style array parameters, several projects on one server, request stats and the
IP ban, compared byte for byte with REDCap 15.7.6 (``helpers_http.py``). The methods' answers
are in ``test_redcap_methods.py``.
"""

from __future__ import annotations

import pytest
import requests

from sandbox.redcap.model import Project
from sandbox.redcap.params import php_form
from sandbox.redcap.server import RedcapSim
from tests.sandbox.conftest import SimFactory, build_classic_project
from tests.sandbox.helpers_http import TIMEOUT, XML_HEAD, post

NO_RIGHTS = "You do not have permissions to use the API"


# -- transport and check order (§1.1, §1.3, §1.4) ------------------------------------------
@pytest.mark.parametrize(
    ("fmt", "body", "ctype"),
    [
        ("json", '{"error":"You do not have permissions to use the API"}', "application/json"),
        ("csv", f"ERROR: {NO_RIGHTS}", "text/csv"),
        ("xml", f"{XML_HEAD}<hash><error>{NO_RIGHTS}</error></hash>", "text/xml"),
    ],
)
def test_unknown_token_gets_403_in_return_format(
    sim: RedcapSim, fmt: str, body: str, ctype: str
) -> None:
    """Unknown token: 403, default message, in returnFormat shape (REDCAP_API.md §1.3, §1.4)."""
    reply = post(sim, token="BAD00000000000000000000000000000", content="record", format=fmt)
    assert reply.status_code == 403
    assert reply.text == body
    assert reply.headers["Content-Type"] == f"{ctype}; charset=utf-8"


@pytest.mark.parametrize("token", [None, "", "0123-4567", "abc def"])
def test_missing_or_malformed_token_gets_403(sim: RedcapSim, token: str | None) -> None:
    """A missing token, or one outside [A-Za-z0-9]+, gets the same 403 (REDCAP_API.md §1.3)."""
    data = {"content": "version", "format": "json"}
    if token is not None:
        data["token"] = token
    reply = requests.post(sim.url, data=data, timeout=TIMEOUT)
    assert (reply.status_code, reply.json()) == (403, {"error": NO_RIGHTS})


def test_token_is_checked_before_content(sim: RedcapSim) -> None:
    """Bad token and bad content gets 403: the token is checked first (REDCAP_API.md §1.3)."""
    reply = post(sim, token="NOPE", content="nonsense", format="json")
    assert reply.status_code == 403


def test_bad_content_gets_400_with_json_encode_escaping(sim: RedcapSim) -> None:
    """Unknown content: 400, json_encode escaping, no spaces (REDCAP_API.md §1.2, §1.4)."""
    reply = post(sim, content="records", format="json")
    assert reply.status_code == 400
    assert reply.text == '{"error":"The value of the parameter \\"content\\" is not valid"}'


def test_json_errors_escape_slashes_like_php(sim: RedcapSim) -> None:
    """PHP json_encode writes "/" as "\\/" in error bodies (REDCAP_API.md §1.4, §7.2)."""
    reply = post(sim, content="formEventMapping", format="json")
    assert reply.status_code == 400
    assert reply.text == (
        '{"error":"You cannot export form\\/event mappings for classic projects"}'
    )


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"format": "csv"}, "ERROR: "),  # returnFormat defaults to format
        ({"format": "bogus"}, XML_HEAD),  # an unknown format means xml
        ({"format": "json", "returnFormat": "csv"}, "ERROR: "),
        ({"format": "csv", "returnFormat": "JSON"}, '{"error"'),  # compared lower-cased
    ],
)
def test_error_shape_follows_return_format_then_format(
    sim: RedcapSim, data: dict[str, str], expected: str
) -> None:
    """returnFormat decides error bodies; if absent, format; else xml (REDCAP_API.md §1.2)."""
    reply = post(sim, content="arm", **data)
    assert reply.status_code == 400
    assert reply.text.startswith(expected)


def test_get_gets_501_in_xml(sim: RedcapSim) -> None:
    """Any method but POST gets 501 and the default message, as XML (REDCAP_API.md §1.1)."""
    reply = requests.get(sim.url, params={"token": sim.token, "format": "json"}, timeout=TIMEOUT)
    assert reply.status_code == 501
    assert reply.text == (
        f"{XML_HEAD}<hash><error>The requested method is not implemented.</error></hash>"
    )
    assert reply.headers["Content-Type"] == "text/xml; charset=utf-8"


def test_wrong_path_gets_html_404(sim: RedcapSim) -> None:
    """A path other than /api/ gets the web server's HTML 404 page (REDCAP_API.md §1.1)."""
    reply = requests.post(sim.url.replace("/api/", "/apiFFFF/"), data={}, timeout=TIMEOUT)
    assert reply.status_code == 404
    assert reply.headers["Content-Type"].startswith("text/html")
    assert "<title>404 Not Found</title>" in reply.text


def test_missing_trailing_slash_redirects_and_ends_as_501(sim: RedcapSim) -> None:
    """POST to .../api is redirected, repeated as GET, and gets 501 (REDCAP_API.md §1.1)."""
    reply = requests.post(
        sim.url.rstrip("/"), data={"token": sim.token, "content": "version"}, timeout=TIMEOUT
    )
    assert [r.status_code for r in reply.history] == [301]
    assert reply.status_code == 501


def test_undecodable_json_data_gets_400_before_content(sim: RedcapSim) -> None:
    """Undecodable JSON data: 400 with the decoder's message (REDCAP_API.md §1.6)."""
    reply = post(sim, content="whatever", format="json", data="[{oops")
    assert reply.status_code == 400
    assert reply.json() == {
        "error": "The data being imported is not formatted correctly. PHP error from JSON "
        "decoder: Syntax error. The JSON must be in an array, as in [{ ... }]."
    }


# -- array parameters (§1.2) ------------------------------------------------------------------
def test_php_form_folds_arrays_like_php() -> None:
    """fields[0]=, fields[]= become lists; a plain fields= stays a string (REDCAP_API.md §1.2)."""
    form = php_form(
        {"fields[0]": ["a"], "fields[1]": ["b"], "forms[]": ["x", "y"], "records": ["1,2"]}
    )
    assert form == {"fields": ["a", "b"], "forms": ["x", "y"], "records": "1,2"}


@pytest.mark.parametrize(
    "fields",
    [
        {"fields[0]": "age", "fields[1]": "email"},
        {"fields[]": ["age", "email"]},
        {"fields": "age,email"},
    ],
)
def test_array_params_in_all_three_forms(sim: RedcapSim, fields: dict[str, object]) -> None:
    """fields[i]=, fields[]= and fields=a,b select the same fields (REDCAP_API.md §1.2)."""
    data = {"token": sim.token, "content": "metadata", "format": "json", **fields}
    reply = requests.post(sim.url, data=data, timeout=TIMEOUT)
    assert [row["field_name"] for row in reply.json()] == ["email", "age"]


def test_records_as_comma_string_are_trimmed(sim: RedcapSim) -> None:
    """records=1, 10 is split on commas and trimmed (REDCAP_API.md §1.2 REDCapR form)."""
    reply = post(sim, content="record", format="json", records="1, 10", fields="record_id")
    assert [row["record_id"] for row in reply.json()] == ["1", "10"]


# -- several projects, stats, faults ---------------------------------------------------------
def test_second_project_on_same_server(sim: RedcapSim) -> None:
    """Each token reaches its own project (REDCAP_API.md §1.3: the token names the project)."""
    other = build_classic_project()
    other.title = "Second"
    sim.add_project(other, "FEEDFACE" * 4)
    info = post(sim, token="FEEDFACE" * 4, content="project", format="json").json()
    assert info["project_title"] == "Second"
    assert post(sim, content="project", format="json").json()["project_title"] != "Second"


def test_stats_count_per_content_and_action(sim: RedcapSim) -> None:
    """Stats split record imports from exports by content/action (REDCAP_API.md §9.10)."""
    post(sim, content="record", format="json")
    post(sim, content="record", format="json", data='[{"record_id":"1"}]')
    stats = sim.server.stats
    assert stats.requests["record/export"] == 1
    assert stats.requests["record/import"] == 1


# -- rate limiter (§6) ------------------------------------------------------------------------
BAN = "Your IP address (127.0.0.1) has been banned due to suspected abuse."


def test_rate_limit_serves_crossing_request_then_bans_for_good(
    redcap_sim: SimFactory, classic_project: Project
) -> None:
    """Over the limit: that request is served, then plain 429s for good (REDCAP_API.md §6)."""
    sim = redcap_sim(classic_project, rate_limit_per_minute=3)
    assert [post(sim, content="version").status_code for _ in range(4)] == [200] * 4
    banned = post(sim, content="version", format="json")
    assert (banned.status_code, banned.text) == (429, BAN)
    assert not banned.headers["Content-Type"].startswith("application/json")
    sim.clock.advance(3600)
    assert post(sim, content="version").status_code == 429  # the ban does not expire
    assert requests.get(sim.url, timeout=TIMEOUT).status_code == 429  # before the 501 check
    sim.unban()
    assert post(sim, content="version").status_code == 200


def test_rate_limit_window_slides_with_the_clock(
    redcap_sim: SimFactory, classic_project: Project
) -> None:
    """Only hits within the last 60 s count (REDCAP_API.md §6 sliding window)."""
    sim = redcap_sim(classic_project, rate_limit_per_minute=3)
    for _ in range(3):
        post(sim, content="version")
    sim.clock.advance(61)
    assert [post(sim, content="version").status_code for _ in range(3)] == [200] * 3
    assert not sim.limiter.is_banned("127.0.0.1")
    post(sim, content="version")
    assert sim.limiter.is_banned("127.0.0.1")


def test_rate_limit_zero_is_off(redcap_sim: SimFactory, classic_project: Project) -> None:
    """A threshold of 0 disables the limiter (REDCAP_API.md §6)."""
    sim = redcap_sim(classic_project, rate_limit_per_minute=0)
    assert {post(sim, content="version").status_code for _ in range(20)} == {200}
