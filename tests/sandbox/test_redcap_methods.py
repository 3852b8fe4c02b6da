"""The REDCap simulator's methods over raw HTTP: exact answers, errors and content types.

Simple methods, events and mappings, surveys, record export formats, dateRange, import answers,
delete and reports, compared byte for byte with what REDCap 15.7.6 sends
(``helpers_http.py``). Transport and error shapes are in ``test_redcap_api.py``.
"""

from __future__ import annotations

import json
import re
from datetime import datetime

import pytest

from sandbox.redcap.methods_record import parse_range_bound
from sandbox.redcap.server import RedcapSim
from tests.sandbox.helpers_http import XML_HEAD, post


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
