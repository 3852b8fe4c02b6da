"""The REDCap simulator through PyCap 2.7.0, the way the services call it (REDCAP_API.md §7).

Every method the pipeline may use is exercised end to end: PyCap builds the request, the
simulator answers over HTTP, and PyCap decides from the body whether it got an error (§7.4).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime

import pytest
import redcap
import requests
import semantic_version

from sandbox.faults import Fault
from sandbox.redcap.model import Project
from sandbox.redcap.server import RedcapSim
from tests.sandbox.conftest import SimFactory

TIMEOUT = 5


def client(sim: RedcapSim, timeout: float = TIMEOUT) -> redcap.Project:
    """A PyCap project on the simulator, with a timeout (REDCAP_API.md PyCap sets none, §7.1)."""
    return redcap.Project(sim.url, sim.token, timeout=timeout)


@pytest.fixture(autouse=True)
def plain_pycap() -> Iterator[None]:
    """PyCap as it ships: its one module-level session without the status hook, retries and
    bounds our REDCap client gives it (common.redcap_client.configure_session), which a test of
    the services run earlier in this worker may have set; put back afterwards."""
    session = redcap.request._session
    hooks, adapters = dict(session.hooks), dict(session.adapters)
    session.hooks = {"response": []}
    session.adapters.clear()
    for prefix, adapter in requests.Session().adapters.items():
        session.mount(prefix, adapter)
    yield
    session.hooks = hooks
    session.adapters.clear()
    session.adapters.update(adapters)


@pytest.fixture
def sim(redcap_sim: SimFactory, classic_project: Project) -> RedcapSim:
    return redcap_sim(classic_project)


@pytest.fixture
def proj(sim: RedcapSim) -> redcap.Project:
    return client(sim)


@pytest.fixture
def long_proj(redcap_sim: SimFactory, longitudinal_project: Project) -> redcap.Project:
    return client(redcap_sim(longitudinal_project))


# -- project design ---------------------------------------------------------------------------
def test_version(proj: redcap.Project) -> None:
    """export_version parses the plain-text version (REDCAP_API.md §5 version, §7.3)."""
    assert proj.export_version() == semantic_version.Version("15.7.6")


def test_project_info(proj: redcap.Project) -> None:
    """export_project_info returns one dict with integer flags (REDCAP_API.md §5 project)."""
    info = proj.export_project_info()
    assert info["project_id"] == 101
    assert info["is_longitudinal"] == 0
    assert info["record_autonumbering_enabled"] == 0


def test_metadata_and_derived_properties(proj: redcap.Project) -> None:
    """Metadata drives def_field, field_names and forms (REDCAP_API.md §7.1)."""
    assert proj.def_field == "record_id"
    assert proj.field_names[:3] == ["record_id", "first_name", "email"]
    assert sorted(proj.forms) == ["followup", "registration"]
    only = proj.export_metadata(fields=["age"], forms=["followup"])
    assert [row["field_name"] for row in only] == ["age", "pain", "feedback"]


def test_is_longitudinal_depends_on_form_event_mapping_error(
    proj: redcap.Project, long_proj: redcap.Project
) -> None:
    """The classic formEventMapping error makes is_longitudinal False (REDCAP_API.md §7.2)."""
    assert proj.is_longitudinal is False
    assert long_proj.is_longitudinal is True


def test_instruments_and_field_names(proj: redcap.Project) -> None:
    """export_instruments and export_field_names (REDCAP_API.md §5)."""
    assert [i["instrument_name"] for i in proj.export_instruments()] == [
        "registration",
        "followup",
    ]
    names = proj.export_field_names(field="race")
    assert [(n["choice_value"], n["export_field_name"]) for n in names] == [
        ("1", "race___1"),
        ("2", "race___2"),
        ("3", "race___3"),
    ]


def test_events_arms_mappings_repeating(long_proj: redcap.Project) -> None:
    """Longitudinal design exports: events, arms, mappings, repeating setup (REDCAP_API.md §5)."""
    assert [e["unique_event_name"] for e in long_proj.export_events(arms=["1"])] == [
        "baseline_arm_1",
        "week_1_arm_1",
    ]
    assert long_proj.export_arms() == [
        {"arm_num": 1, "name": "Drug A"},
        {"arm_num": 2, "name": "Drug B"},
    ]
    mapping = long_proj.export_instrument_event_mappings()
    assert {"arm_num": 1, "unique_event_name": "week_1_arm_1", "form": "diary"} in mapping
    assert long_proj.export_repeating_instruments_events() == [
        {"event_name": "week_1_arm_1", "form_name": "diary", "custom_form_label": "[mood]"}
    ]


@pytest.mark.parametrize(
    "method", ["export_events", "export_arms", "export_instrument_event_mappings"]
)
def test_longitudinal_methods_fail_on_classic(proj: redcap.Project, method: str) -> None:
    """Classic projects answer events/arms/mappings with an error body (REDCAP_API.md §5)."""
    with pytest.raises(redcap.RedcapError, match="classic projects"):
        getattr(proj, method)()


# -- records ----------------------------------------------------------------------------------
def test_export_records_by_fields_and_filter(proj: redcap.Project) -> None:
    """fields and filter_logic keep only matching rows (REDCAP_API.md §2.1, §2.3)."""
    rows = proj.export_records(fields=["age"], filter_logic="[age] >= 18")
    assert rows == [{"record_id": "1", "age": "34"}, {"record_id": "10", "age": "52"}]


def test_export_records_csv_and_xml(proj: redcap.Project) -> None:
    """format csv and xml come back as text (REDCAP_API.md §2.2)."""
    csv_text = proj.export_records(format_type="csv", records=["2"], fields=["age"])
    assert csv_text == "record_id,age\n2,17\n"
    xml_text = proj.export_records(format_type="xml", records=["2"], fields=["age"])
    assert "<item><record_id><![CDATA[2]]></record_id>" in xml_text


def test_export_records_date_begin(proj: redcap.Project, sim: RedcapSim) -> None:
    """date_begin keeps records changed since, on the sim's clock (REDCAP_API.md §2.1)."""
    sim.clock.advance(3600)
    proj.import_records([{"record_id": "10", "feedback": "better"}])
    since = datetime(2025, 3, 3, 9, 30)
    rows = proj.export_records(fields=["record_id"], date_begin=since)
    assert rows == [{"record_id": "10"}]


def test_export_records_longitudinal_repeating(long_proj: redcap.Project) -> None:
    """Repeating rows carry an integer instance; event filter applies (REDCAP_API.md §2.2)."""
    rows = long_proj.export_records(events=["week_1_arm_1"], forms=["diary"])
    instances = [(r["redcap_repeat_instrument"], r["redcap_repeat_instance"]) for r in rows]
    # The event's own row comes first, with blank repeat columns.
    assert instances == [("", ""), ("diary", 1), ("diary", 2)]
    assert {r["redcap_event_name"] for r in rows} == {"week_1_arm_1"}


def test_bad_filter_logic_raises(proj: redcap.Project) -> None:
    """Syntactically bad filterLogic is refused with an error body (REDCAP_API.md §2.3, §10)."""
    with pytest.raises(redcap.RedcapError):
        proj.export_records(filter_logic="[age] >>> 3 and (")


def test_unknown_field_raises(proj: redcap.Project) -> None:
    """Unknown export fields get 400 naming them (REDCAP_API.md §2.1)."""
    with pytest.raises(redcap.RedcapError, match=r"parameter .fields. are not valid.*nope"):
        proj.export_records(fields=["nope"])


def test_import_records_answers(proj: redcap.Project) -> None:
    """import_records count / ids, and the new record exports back (REDCAP_API.md §4.2)."""
    assert proj.import_records([{"record_id": "20", "first_name": "Eve", "age": 29}]) == {
        "count": 1
    }
    assert proj.import_records([{"record_id": "20", "age": 30}], return_content="ids") == ["20"]
    assert proj.export_records(records=["20"], fields=["age"]) == [{"record_id": "20", "age": "30"}]


def test_import_bad_value_raises_and_saves_nothing(proj: redcap.Project) -> None:
    """A bad value raises with its CSV error line; nothing is saved (REDCAP_API.md §4.3)."""
    with pytest.raises(redcap.RedcapError) as info:
        proj.import_records([{"record_id": "1", "age": "old"}, {"record_id": "21"}])
    assert info.value.args[0]["error"].startswith('"1","age","old",')
    assert proj.export_records(records=["21"]) == []


def test_import_unknown_field_raises(proj: redcap.Project) -> None:
    """Unknown import columns are refused as a whole (REDCAP_API.md §4.3)."""
    with pytest.raises(redcap.RedcapError, match="not found in the project"):
        proj.import_records([{"record_id": "1", "shoe_size": "9"}])


def test_import_with_nothing_swallows_errors(proj: redcap.Project) -> None:
    """return_content='nothing' ignores the body, even a 400 (REDCAP_API.md §4.6, §7.4)."""
    assert proj.import_records([{"record_id": "1", "age": "old"}], return_content="nothing") == [{}]


def test_delete_records(proj: redcap.Project) -> None:
    """delete_records answers the number deleted (REDCAP_API.md §5 record delete)."""
    assert proj.delete_records(["2", "10"]) == 2
    assert [row["record_id"] for row in proj.export_records(fields=["record_id"])] == ["1"]


def test_generate_next_record_name(proj: redcap.Project) -> None:
    """generate_next_record_name (REDCAP_API.md §5)."""
    assert proj.generate_next_record_name() == "11"


def test_report(proj: redcap.Project) -> None:
    """export_report returns the report's rows; an unknown id raises (REDCAP_API.md §5 report)."""
    assert proj.export_report("7") == [
        {"record_id": "1", "age": "34"},
        {"record_id": "10", "age": "52"},
    ]
    with pytest.raises(redcap.RedcapError, match="does not belong"):
        proj.export_report("99")


# -- surveys ----------------------------------------------------------------------------------
def test_survey_link(proj: redcap.Project, sim: RedcapSim) -> None:
    """export_survey_link: the plain URL, stable per record (REDCAP_API.md §5 surveyLink)."""
    link = proj.export_survey_link("2", "followup")
    assert re.fullmatch(re.escape(sim.base_url) + r"/surveys/\?s=[A-Za-z0-9]{16}", link)
    assert proj.export_survey_link("2", "followup") == link


def test_survey_link_for_non_survey_raises(proj: redcap.Project) -> None:
    """A non-survey instrument 'has not been enabled as a survey' (REDCAP_API.md §5)."""
    with pytest.raises(redcap.RedcapError, match="has not been enabled as a survey"):
        proj.export_survey_link("2", "registration")


def test_survey_link_longitudinal_repeat_instance(long_proj: redcap.Project) -> None:
    """Each instance of a repeating survey has its own link (REDCAP_API.md §5 surveyLink)."""
    first = long_proj.export_survey_link("1", "diary", event="week_1_arm_1", repeat_instance=1)
    second = long_proj.export_survey_link("1", "diary", event="week_1_arm_1", repeat_instance=2)
    assert first != second


def test_participant_list(proj: redcap.Project) -> None:
    """The participant list: completed rows have no link (REDCAP_API.md §5 participantList)."""
    rows = proj.export_survey_participant_list("followup")
    assert len(rows) == 3
    completed = [row for row in rows if row["response_status"] == 2]
    assert [row["survey_link"] for row in completed] == [""]


# -- failures the services must survive ------------------------------------------------------
def test_wrong_token_raises_with_error_dict(sim: RedcapSim) -> None:
    """A wrong token raises RedcapError with REDCap's error dict (REDCAP_API.md §1.3, §7.4)."""
    bad = redcap.Project(sim.url, "F" * 32, timeout=TIMEOUT)
    with pytest.raises(redcap.RedcapError) as info:
        bad.export_records()
    assert info.value.args[0] == {"error": "You do not have permissions to use the API"}


def test_rate_limit_ban_breaks_json_calls(redcap_sim: SimFactory, classic_project: Project) -> None:
    """After a ban, JSON calls fail to decode the plain 429 body (REDCAP_API.md §6, §7.4)."""
    sim = redcap_sim(classic_project, rate_limit_per_minute=2)
    proj = client(sim)
    proj.export_project_info()
    proj.export_project_info()
    proj.export_project_info()  # the crossing request is still served
    with pytest.raises(redcap.RedcapError):
        proj.export_project_info()
    # A csv call gets the ban text back as if it were the survey link (§7.4).
    assert proj.export_survey_link("1", "followup").startswith("Your IP address (127.0.0.1)")


def test_injected_fault_hits_imports_only(sim: RedcapSim, proj: redcap.Project) -> None:
    """A 5xx can be injected for record imports alone (REDCAP_API.md §9.10)."""
    sim.server.faults.add(
        Fault(kind="status", status=503, match={"content": "record", "action": "import"})
    )
    assert proj.export_records(fields=["record_id"])  # exports are untouched
    with pytest.raises(requests.exceptions.JSONDecodeError):
        proj.import_records([{"record_id": "1", "age": 35}])
    assert proj.import_records([{"record_id": "1", "age": 35}]) == {"count": 1}


def test_hang_after_apply_lands_the_write(sim: RedcapSim) -> None:
    """A timeout after the write landed: the import is stored (REDCAP_API.md §6, §9.10)."""
    sim.server.faults.add(
        Fault(
            kind="hang",
            seconds=3,
            after_apply=True,
            match={"content": "record", "action": "import"},
        )
    )
    impatient = client(sim, timeout=0.5)
    with pytest.raises(requests.exceptions.Timeout):
        impatient.import_records([{"record_id": "2", "age": 18}])
    assert client(sim).export_records(records=["2"], fields=["age"]) == [
        {"record_id": "2", "age": "18"}
    ]


# -- the demo project -------------------------------------------------------------------------
def test_demo_project_serves_the_pipeline_calls(redcap_sim: SimFactory) -> None:
    """The demo project answers the pipeline's calls: import, link, report (REDCAP_API.md §9)."""
    demo = pytest.importorskip("sandbox.redcap.demo")
    sim = redcap_sim(demo.build_demo_project())
    proj = client(sim)
    assert proj.generate_next_record_name() == "1"
    assert proj.import_records([{"record_id": "1", "first_name": "Ann"}]) == {"count": 1}
    link = proj.export_survey_link("1", demo.SURVEY_FORM)
    assert link.startswith(f"{sim.base_url}/surveys/?s=")
    report = demo.find_report(sim.project, demo.FUNNEL_REPORT)
    rows = proj.export_report(str(report.report_id))
    assert [row["record_id"] for row in rows] == ["1"]
