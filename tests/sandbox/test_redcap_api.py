"""The REDCap simulator over raw HTTP: exact statuses, bodies and content types.

PyCap hides most of these details (it never looks at the status code, §7.4), so these tests
post with ``requests`` directly and compare bytes with what REDCap 15.7.6 sends.
"""

from __future__ import annotations

import json
import re
from datetime import datetime

import pytest
import requests

from sandbox.redcap.methods_record import parse_range_bound
from sandbox.redcap.model import Project
from sandbox.redcap.params import php_form
from sandbox.redcap.server import RedcapSim
from tests.sandbox.conftest import SimFactory, build_classic_project

TIMEOUT = 5
XML_HEAD = '<?xml version="1.0" encoding="UTF-8" ?>'
NO_RIGHTS = "You do not have permissions to use the API"


def post(sim: RedcapSim, **data: str) -> requests.Response:
    """POST a form to the simulator with its token (unless the test overrides it)."""
    data.setdefault("token", sim.token)
    return requests.post(sim.url, data=data, timeout=TIMEOUT)


@pytest.fixture
def sim(redcap_sim: SimFactory, classic_project: Project) -> RedcapSim:
    return redcap_sim(classic_project)


@pytest.fixture
def long_sim(redcap_sim: SimFactory, longitudinal_project: Project) -> RedcapSim:
    return redcap_sim(longitudinal_project)


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


# -- simple methods (§5) ----------------------------------------------------------------------
def test_version_is_plain_text_csv(sim: RedcapSim) -> None:
    """version is a bare string as text/csv, whatever the format (REDCAP_API.md §1.5)."""
    reply = post(sim, content="version", format="json")
    assert (reply.status_code, reply.text) == (200, "15.7.6")
    assert reply.headers["Content-Type"] == "text/csv; charset=utf-8"


def test_project_info_is_one_object_with_ints(sim: RedcapSim) -> None:
    """project is a single JSON object; integer-looking values are JSON ints (REDCAP_API.md §5)."""
    info = post(sim, content="project", format="json").json()
    assert info["project_id"] == 101
    assert info["is_longitudinal"] == 0
    assert info["surveys_enabled"] == 1
    assert info["in_production"] == 0


def test_metadata_json_shape(sim: RedcapSim) -> None:
    """Metadata: 18 raw keys, no <form>_complete, items joined by ",\\n" (REDCAP_API.md §5)."""
    reply = post(sim, content="metadata", format="json")
    rows = json.loads(reply.text)
    assert len(rows[0]) == 18
    assert not any(row["field_name"].endswith("_complete") for row in rows)
    assert "},\n{" in reply.text
    pain = next(row for row in rows if row["field_name"] == "pain")
    assert pain["custom_alignment"] == "RV"


def test_metadata_forms_filter(sim: RedcapSim) -> None:
    """forms[] selects that form's fields, in dictionary order (REDCAP_API.md §5)."""
    reply = post(sim, content="metadata", format="json", **{"forms[0]": "followup"})
    assert [row["field_name"] for row in reply.json()] == ["pain", "feedback"]


def test_instrument_csv_is_written_by_hand(sim: RedcapSim) -> None:
    """Instrument CSV: names bare, labels always quoted (REDCAP_API.md §5 instrument)."""
    reply = post(sim, content="instrument", format="csv")
    assert reply.text == (
        'instrument_name,instrument_label\nregistration,"Registration"\nfollowup,"Follow-up"\n'
    )


def test_export_field_names_for_checkbox_and_status(sim: RedcapSim) -> None:
    """exportFieldNames: checkbox choices, <form>_complete, 400 for bad field (REDCAP_API.md §5)."""
    rows = post(sim, content="exportFieldNames", format="json", field="race").json()
    assert [row["export_field_name"] for row in rows] == ["race___1", "race___2", "race___3"]
    status = post(sim, content="exportFieldNames", format="json", field="followup_complete")
    assert status.json() == [
        {
            "original_field_name": "followup_complete",
            "choice_value": "",
            "export_field_name": "followup_complete",
        }
    ]
    bad = post(sim, content="exportFieldNames", format="json", field="nope")
    assert (bad.status_code, bad.json()) == (400, {"error": "Invalid field"})


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("event", "You cannot export events for classic projects"),
        ("arm", "You cannot export arms for classic projects"),
        ("formEventMapping", "You cannot export form/event mappings for classic projects"),
        (
            "repeatingFormsEvents",
            "You cannot export repeating instruments and events because the project does not "
            "contain any repeating instruments and events",
        ),
    ],
)
def test_classic_project_refuses_longitudinal_methods(
    sim: RedcapSim, content: str, message: str
) -> None:
    """Classic projects answer event/arm/mapping/repeating exports with 400 (REDCAP_API.md §5)."""
    reply = post(sim, content=content, format="csv")
    assert (reply.status_code, reply.text) == (400, f"ERROR: {message}")


def test_events_and_mapping_on_longitudinal(long_sim: RedcapSim) -> None:
    """event rows carry int arm_num/event_id; arms[] filters the mapping (REDCAP_API.md §5)."""
    events = post(long_sim, content="event", format="json").json()
    assert events[1] == {
        "event_name": "Week 1",
        "arm_num": 1,
        "unique_event_name": "week_1_arm_1",
        "custom_event_label": "W1",
        "event_id": 42,
    }
    mapping = post(long_sim, content="formEventMapping", format="csv", **{"arms[0]": "2"})
    assert mapping.text == "arm_num,unique_event_name,form\n2,baseline_arm_2,demographics"


def test_repeating_forms_events_on_longitudinal(long_sim: RedcapSim) -> None:
    """repeatingFormsEvents lists event, form and custom label (REDCAP_API.md §5)."""
    reply = post(long_sim, content="repeatingFormsEvents", format="json")
    assert reply.json() == [
        {"event_name": "week_1_arm_1", "form_name": "diary", "custom_form_label": "[mood]"}
    ]


def test_generate_next_record_name(sim: RedcapSim) -> None:
    """generateNextRecordName is one past the largest numeric record name (REDCAP_API.md §5)."""
    reply = post(sim, content="generateNextRecordName", format="csv")
    assert (reply.text, reply.headers["Content-Type"]) == ("11", "text/csv; charset=utf-8")


# -- surveys (§5) -----------------------------------------------------------------------------
def test_survey_link_is_stable_plain_text(sim: RedcapSim) -> None:
    """surveyLink prints {base}/surveys/?s=<16>, stable per record (REDCAP_API.md §1.5, §5)."""
    first = post(sim, content="surveyLink", record="1", instrument="followup", returnFormat="csv")
    assert first.headers["Content-Type"] == "text/html; charset=UTF-8"
    assert re.fullmatch(re.escape(sim.base_url) + r"/surveys/\?s=[A-Za-z0-9]{16}", first.text)
    again = post(sim, content="surveyLink", record="1", instrument="followup")
    other = post(sim, content="surveyLink", record="2", instrument="followup")
    assert again.text == first.text != other.text


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"instrument": "followup"}, "The parameter 'record' is missing"),
        ({"record": "-1", "instrument": "followup"}, 'The record "-1" does not exist'),
        ({"record": "1"}, "The parameter 'instrument' is missing"),
        ({"record": "1", "instrument": "nope"}, "Invalid instrument"),
        (
            {"record": "1", "instrument": "registration"},
            "The instrument 'registration' has not been enabled as a survey",
        ),
    ],
)
def test_survey_link_errors(sim: RedcapSim, params: dict[str, str], message: str) -> None:
    """surveyLink's 400 messages, checked record first, then instrument (REDCAP_API.md §5)."""
    reply = post(sim, content="surveyLink", returnFormat="csv", **params)
    assert (reply.status_code, reply.text) == (400, f"ERROR: {message}")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "The parameter 'event' is missing"),
        ({"event": "nope"}, "Invalid event"),
        (
            {"event": "baseline_arm_1"},
            'The instrument "diary" has not been designated for the event "baseline_arm_1"',
        ),
    ],
)
def test_survey_link_event_errors(
    long_sim: RedcapSim, params: dict[str, str], message: str
) -> None:
    """Longitudinal surveyLink needs a valid, designated event (REDCAP_API.md §5)."""
    reply = post(
        long_sim, content="surveyLink", record="1", instrument="diary", returnFormat="csv", **params
    )
    assert (reply.status_code, reply.text) == (400, f"ERROR: {message}")


def test_participant_list_blanks_completed_links(sim: RedcapSim) -> None:
    """Completed rows: no link or code; record shown only with email (REDCAP_API.md §5)."""
    rows = post(sim, content="participantList", instrument="followup", format="json").json()
    by_status = {row["response_status"]: row for row in rows}
    done = by_status[2]
    assert (done["record"], done["survey_link"], done["survey_access_code"]) == ("1", "", "")
    open_row = by_status[0]
    assert open_row["record"] == ""  # no designated email, so REDCap hides the record
    assert open_row["survey_link"].startswith(f"{sim.base_url}/surveys/?s=")
    assert list(done) == [
        "email",
        "email_occurrence",
        "identifier",
        "record",
        "invitation_sent_status",
        "invitation_send_time",
        "response_status",
        "survey_access_code",
        "survey_link",
    ]


def test_participant_list_link_matches_survey_link(sim: RedcapSim) -> None:
    """The participant list and surveyLink hand out the same hash (REDCAP_API.md §5)."""
    link = post(sim, content="surveyLink", record="10", instrument="followup").text
    rows = post(sim, content="participantList", instrument="followup", format="json").json()
    assert link in [row["survey_link"] for row in rows]


# -- records: formats, date range, import answers (§2, §4.2) ----------------------------------
def test_record_export_csv_and_xml_shapes(sim: RedcapSim) -> None:
    """CSV lines end in \\n, trailing one too; XML values are CDATA (REDCAP_API.md §2.2)."""
    csv_reply = post(sim, content="record", format="csv", records="2", fields="record_id,age")
    assert csv_reply.text == "record_id,age\n2,17\n"
    xml_reply = post(sim, content="record", format="xml", records="2", fields="record_id,age")
    assert xml_reply.text == (
        f"{XML_HEAD}\n<records>\n<item><record_id><![CDATA[2]]></record_id>"
        "<age><![CDATA[17]]></age></item>\n</records>"
    )


def test_csv_label_headers_tab_delimiter_and_php_quoting(sim: RedcapSim) -> None:
    """rawOrLabelHeaders=label and csvDelimiter=tab; fputcsv quotes spaces (REDCAP_API.md §2.1)."""
    reply = post(
        sim, content="record", format="csv", records="1", fields="record_id,first_name,race",
        rawOrLabelHeaders="label", csvDelimiter="tab",
    )  # fmt: skip
    header, row, _ = reply.text.split("\n")
    assert header.split("\t") == [
        '"Record ID"',
        '"First name"',
        '"Race (choice=White)"',
        '"Race (choice=Black)"',
        '"Race (choice=Other)"',
    ]
    assert row.split("\t") == ["1", "Ann", "0", "1", "0"]


def test_empty_csv_export(sim: RedcapSim) -> None:
    """No rows in CSV: one empty line, which PyCap guards against (REDCAP_API.md §2.2)."""
    reply = post(sim, content="record", format="csv", records="999")
    assert (reply.status_code, reply.text) == (200, "\n")


@pytest.mark.parametrize(
    ("text", "end", "expected"),
    [
        ("2024-01-02 03:04:05", False, datetime(2024, 1, 2, 3, 4, 5)),
        ("2024/1/2T03:04", False, datetime(2024, 1, 2, 3, 4)),
        ("2024-01-02", False, datetime(2024, 1, 2)),
        ("2024-01-02", True, datetime(2024, 1, 2, 23, 59, 59)),
        ("02.01.2024", False, None),
    ],
)
def test_date_range_parsing(text: str, end: bool, expected: datetime | None) -> None:
    """dateRange bounds accept - or /, a T, H:M, or no time at all (REDCAP_API.md §2.1)."""
    assert parse_range_bound(text, end=end) == expected


def test_date_range_selects_changed_records(sim: RedcapSim) -> None:
    """dateRange keeps records changed within it, bounds inclusive (REDCAP_API.md §2.1)."""
    post(sim, content="record", format="json", data='[{"record_id":"2","age":"18"}]')
    since = post(
        sim, content="record", format="json", fields="record_id",
        dateRangeBegin="2025-03-03 09:00:00",
    )  # fmt: skip
    assert [row["record_id"] for row in since.json()] == ["2"]
    before = post(
        sim, content="record", format="json", fields="record_id", dateRangeEnd="2025-03-01"
    )
    assert [row["record_id"] for row in before.json()] == ["1", "2", "10"]


@pytest.mark.parametrize(
    ("return_format", "content", "body", "ctype"),
    [
        ("json", "count", '{"count": 2}', "application/json"),
        ("json", "ids", '["10","11"]', "application/json"),
        ("csv", "count", "2", "text/csv"),
        ("csv", "ids", "id\n10\n11", "text/csv"),
        ("xml", "count", f"{XML_HEAD}<count>2</count>", "text/xml"),
        ("xml", "ids", f"{XML_HEAD}<ids><id>10</id><id>11</id></ids>", "text/xml"),
        ("json", "nothing", "", "application/json"),
    ],
)
def test_import_answers_per_return_format(
    sim: RedcapSim, return_format: str, content: str, body: str, ctype: str
) -> None:
    """Import answers: count/ids/nothing per returnFormat (REDCAP_API.md §4.2 table)."""
    rows = [{"record_id": "10", "age": "53"}, {"record_id": "11"}]
    reply = post(
        sim, content="record", format="json", data=json.dumps(rows),
        returnFormat=return_format, returnContent=content,
    )  # fmt: skip
    assert (reply.status_code, reply.text) == (200, body)
    assert reply.headers["Content-Type"] == f"{ctype}; charset=utf-8"


def test_import_count_is_distinct_records(long_sim: RedcapSim) -> None:
    """Two rows of one record in two events count once (REDCAP_API.md §4.2)."""
    rows = [
        {"study_id": "1", "redcap_event_name": "baseline_arm_1", "dob": "1990-01-03"},
        {"study_id": "1", "redcap_event_name": "week_1_arm_1", "weight": "70.5"},
    ]
    reply = post(long_sim, content="record", format="json", data=json.dumps(rows))
    assert reply.text == '{"count": 1}'


def test_csv_import_is_parsed(sim: RedcapSim) -> None:
    """A CSV payload is read by its header line (REDCAP_API.md §4.1)."""
    data = 'record_id,first_name\n12,"Doe, Jo"\n'
    reply = post(sim, content="record", format="csv", data=data, returnContent="ids")
    assert reply.text == "id\n12"
    check = post(sim, content="record", format="json", records="12", fields="first_name")
    assert check.json()[0]["first_name"] == "Doe, Jo"


def test_import_validation_error_is_csv_lines(sim: RedcapSim) -> None:
    """Bad values: 400, one quoted CSV line per error, nothing saved (REDCAP_API.md §4.3)."""
    reply = post(
        sim, content="record", format="json", returnFormat="csv",
        data='[{"record_id":"1","age":"old"}]',
    )  # fmt: skip
    assert reply.status_code == 400
    assert reply.text.startswith('ERROR: "1","age","old","')


def test_delete_needs_array_and_existing_records(sim: RedcapSim) -> None:
    """Delete needs an array of existing records and answers the count (REDCAP_API.md §5)."""
    as_string = post(sim, content="record", action="delete", records="1", returnFormat="json")
    assert as_string.status_code == 400
    missing = post(sim, content="record", action="delete", returnFormat="json", **{
        "records[0]": "1", "records[1]": "77"})  # fmt: skip
    assert missing.json()["error"].endswith("The following records do not exist: 77")
    done = post(sim, content="record", action="delete", returnFormat="json", **{
        "records[0]": "1", "records[1]": "2"})  # fmt: skip
    assert (done.status_code, done.text) == (200, "2")
    left = post(sim, content="record", format="json", fields="record_id").json()
    assert left == [{"record_id": "10"}]


# -- reports (§5) -----------------------------------------------------------------------------
def test_report_rows_and_unknown_report(sim: RedcapSim) -> None:
    """A report's fields filtered by its logic; unknown id is 403 (REDCAP_API.md §5 report)."""
    rows = post(sim, content="report", report_id="7", format="json").json()
    assert rows == [{"record_id": "1", "age": "34"}, {"record_id": "10", "age": "52"}]
    other = post(sim, content="report", report_id="8", format="json")
    assert other.status_code == 403
    assert other.json() == {
        "error": "The API request cannot complete because report_id=8 does not belong to "
        "this project."
    }


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
