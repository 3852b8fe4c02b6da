"""The conversation log: every message sent and every text read on the record, as REDCap exports
it (PyCap, the repeating instrument ``relay_message``), once per SID whatever runs again; the
waiting mark for texts a person should answer; the project check that names what is missing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from redcap.project import Project as PyCapProject

from common.errors import ProjectCheckError
from messaging import conversation
from messaging.context import build_context
from messaging.instrument import instrument_csv
from messaging.rules_file import load_study, rules_for
from messaging.thread import OUT, Entry
from sandbox.redcap.demo import ENROLLMENT_EVENT, build_demo_longitudinal_project
from sandbox.rehearsal import add_rule_fields, add_rules
from services import delivery_checker
from services.admin.recipes import recipes
from services.admin.status import funnel
from tests.sandbox.helpers_loaders import xml_project
from tests.services.conftest import Rig, at_start, start_rig, start_rules_rig
from tests.services.replying import NEWS, UNCLEAR, VISIT, join, poll, send, text_back

LOG = {"CONVERSATION_LOG": "1"}
NOTE = """
[[rule]]
name = "note"
when = "[age] <> ''"
template = "Hello from the study."
"""


@pytest.fixture
def logged(tmp_path: Path) -> Iterator[Rig]:
    """The visit rule that takes replies and a rule without, with the conversation log on."""
    yield from start_rules_rig(tmp_path, VISIT + NEWS, sim_clock=at_start(), **LOG)


def thread(rig: Rig, record: str = "1") -> list[dict[str, str]]:
    """The record's log as REDCap exports it to anyone (PyCap, raw), in instance order."""
    pycap = PyCapProject(rig.redcap.url, rig.redcap.token)
    rows = pycap.export_records(records=[record], raw_or_label="raw")
    mine = [r for r in rows if r.get("redcap_repeat_instrument") == "relay_message"]
    return sorted(mine, key=lambda r: int(r["redcap_repeat_instance"]))


def brief(rows: list[dict[str, str]]) -> list[tuple[str, str, str, str]]:
    return [(r["msg_direction"], r["msg_rule"], r["msg_status"], r["msg_answer"]) for r in rows]


def test_a_thread_holds_each_message_and_text_once(logged: Rig) -> None:
    """Two rules text record 1, the participant asks a question, the visit rule's unclear answer
    goes, Twilio reports delivery: REDCap holds the five messages in order, each SID once, the
    participant's text as written, and the record waits for a person. Running every service
    again adds nothing."""
    join(logged, "1")
    assert send(logged)["sent"] == 2
    question = text_back(logged, "Can we do Thursday instead?")
    assert poll(logged) == {"recorded": 1}
    assert send(logged)["sent"] == 1  # "Sorry, please reply YES or NO."
    logged.advance(60)
    delivery_checker.run_once(logged.ctx())
    rows = thread(logged)
    assert brief(rows) == [
        ("out", "visit", "delivered", ""),
        ("out", "news", "delivered", ""),
        ("in", "visit", "received", "unclear"),
        ("out", "visit_answer", "delivered", ""),
    ]
    assert rows[2]["msg_sid"] == question and rows[2]["msg_text"] == "Can we do Thursday instead?"
    assert rows[3]["msg_text"] == UNCLEAR
    sids = [r["msg_sid"] for r in rows]
    assert sids[0] == logged.values("1")["visit_sms_sid"] and len(set(sids)) == 4
    assert logged.values("1")["relay_conversation_waiting"]
    for _ in range(2):
        send(logged), poll(logged), delivery_checker.run_once(logged.ctx())
    assert [r["msg_sid"] for r in thread(logged)] == sids


def test_a_clear_answer_waits_for_nobody_and_a_later_question_does(logged: Rig) -> None:
    """YES is read as confirmed (no wait); a text to the rule without replies after it is free
    text: logged, waiting; the coordinator blanks the mark once answered, and it stays blank."""
    join(logged, "1")
    send(logged)
    text_back(logged, "yes")
    poll(logged)
    assert logged.values("1").get("relay_conversation_waiting", "") == ""
    assert brief(thread(logged))[-1] == ("in", "visit", "received", "confirmed")
    send(logged)
    logged.advance(3 * 24 * 3600 + 60)  # past the visit's reply window
    text_back(logged, "What is the parking code?")
    assert poll(logged) == {"ignored_outside_window": 1}
    assert brief(thread(logged))[-1] == ("in", "", "received", "")
    assert logged.values("1")["relay_conversation_waiting"]
    found = funnel(logged.ctx())["health"]["findings"]
    waiting = [f for f in found if f["check"] == "conversation_waiting"]
    assert waiting and waiting[0]["count"] == 1 and waiting[0]["oldest_record"] == "1"
    logged.set("1", relay_conversation_waiting="")
    poll(logged)
    assert logged.values("1").get("relay_conversation_waiting", "") == ""


def test_a_shared_phone_logs_an_unplaced_text_on_each_record_as_ambiguous(logged: Rig) -> None:
    """Two records share a phone, both reminded: an unclear text goes on both threads, marked
    ambiguous, and both wait for a person."""
    join(logged, "1")
    join(logged, "2")
    send(logged)
    text_back(logged, "which one of us?")
    poll(logged)
    for record in ("1", "2"):
        last = thread(logged, record)[-1]
        assert (last["msg_direction"], last["msg_ambiguous"]) == ("in", "1")
        assert logged.values(record)["relay_conversation_waiting"]


def test_with_the_log_off_nothing_is_written_to_it(tmp_path: Path) -> None:
    for rig in start_rules_rig(tmp_path, VISIT, sim_clock=at_start(), **LOG):
        rig.env["CONVERSATION_LOG"] = "0"
        join(rig, "1")
        send(rig)
        text_back(rig, "maybe")
        poll(rig)
        assert thread(rig) == []


def test_an_entry_another_writer_displaced_is_written_again(logged: Rig) -> None:
    """Staff (or another service) saved instance 1 after we read the thread: our entry, found
    displaced by the read-back, goes at instance 2; theirs stays as they wrote it."""
    join(logged, "1")
    ctx = logged.ctx()
    entry = Entry("SMtest", OUT, ctx.clock.now(), rule="visit", status="sms_sent", text="hi")
    planned = conversation.plan(ctx, {"1": [entry]})
    ctx.redcap.import_rows(planned.all_rows(ctx), overwrite=True)
    theirs = {"msg_sid": "SMstaff", "msg_direction": "out", "msg_text": "typed by staff"}
    logged.set("1", redcap_repeat_instrument="relay_message", redcap_repeat_instance="1", **theirs)
    assert conversation.confirm(ctx, planned) == 1
    assert [(r["msg_sid"], r["msg_text"]) for r in thread(logged)] == [
        ("SMstaff", "typed by staff"),
        ("SMtest", "hi"),
    ]


def test_a_longitudinal_thread_is_in_redcap_event(tmp_path: Path) -> None:
    for rig in start_rules_rig(
        tmp_path,
        VISIT,
        sim_clock=at_start(),
        project=build_demo_longitudinal_project(),
        REDCAP_EVENT=ENROLLMENT_EVENT,
        **LOG,
    ):
        join(rig, "1")
        send(rig)
        text_back(rig, "yes")
        poll(rig)
        rows = thread(rig)
        assert [r["redcap_event_name"] for r in rows] == [ENROLLMENT_EVENT] * 2
        assert brief(rows) == [
            ("out", "visit", "sms_sent", ""),
            ("in", "visit", "received", "confirmed"),
        ]


def test_the_project_check_names_what_the_log_lacks(tmp_path: Path) -> None:
    """CONVERSATION_LOG=1 on a project without the instrument, or where it is not repeating:
    one line naming relay_message and the fix."""
    for rig in start_rules_rig(tmp_path, VISIT, sim_clock=at_start(), **LOG):
        rig.project.repeating_forms.clear()
        with pytest.raises(ProjectCheckError, match="relay_message is not a repeating instrument"):
            rig.ctx()
        rig.project.fields = [f for f in rig.project.fields if not f.name.startswith("msg_")]
        with pytest.raises(ProjectCheckError, match=r"msg_direction missing.*admin instrument"):
            rig.ctx()


def test_admin_instrument_and_reports_print_the_log_only_when_it_is_on(logged: Rig) -> None:
    """The instrument holds relay_message (the text marked identifier) and the waiting mark;
    the report recipes list who waits and the threads; neither without CONVERSATION_LOG."""
    rules = logged.ctx().rules
    on, off = instrument_csv(rules, True), instrument_csv(rules, False)
    assert "msg_text,relay_message,,notes," in on and "relay_conversation_waiting,relay," in on
    assert "relay_message" not in off and "relay_conversation_waiting" not in off
    reports = recipes(rules, conversation_log=True)
    assert "[relay_conversation_waiting] <> ''" in reports and "[msg_sid] <> ''" in reports
    assert "relay_conversation_waiting" not in recipes(rules)


def test_a_rehearsal_copy_gets_the_log_when_the_settings_ask_for_it(rig: Rig) -> None:
    """`python -m sandbox` on a project without the log, CONVERSATION_LOG=1: the copy gets the
    instrument, repeating, with a note that the real project needs it uploaded; the services
    then start on it."""
    settings = rig.settings(**LOG)
    notes = add_rules(rig.project, settings, rules_for(settings))
    assert len(notes) == 1 and "the conversation log (relay_message, made repeating)" in notes[0]
    assert conversation.enabled(rig.ctx(**LOG))
    assert add_rules(rig.project, settings, rules_for(settings)) == []


def test_the_log_beside_a_repeating_instrument_of_the_study(tmp_path: Path) -> None:
    """The reference project with a repeating instrument of its own (bp, three instances
    of record 1, as REDCap exported it): the log's instances are numbered on their own (1, not 3),
    export after bp's in dictionary order, leave bp's untouched, and a retried write adds
    nothing, as REDCap numbers instances per instrument."""
    rules = tmp_path / "rules.toml"
    rules.write_text(NOTE, encoding="utf-8")
    study = load_study(rules, default_event="", alerts=False)
    project = add_rule_fields(xml_project("repeating-instruments"), study, conversation_log=True)
    settings = {"RULES_FILE": str(rules), "PHONE_FIELDS": "first_name", **LOG}
    for rig in start_rig(project, tmp_path, sim_clock=at_start(), **settings):
        pycap = PyCapProject(rig.redcap.url, rig.redcap.token)
        before = [r for r in pycap.export_records(records=["1"]) if r["redcap_repeat_instrument"]]
        assert [(r["redcap_repeat_instrument"], r["redcap_repeat_instance"]) for r in before] == [
            ("bp", 1),
            ("bp", 2),
            ("bp", 3),
        ]
        ctx = build_context(rig.settings(), needs_twilio=False, clock=rig.clock)
        entry = Entry("SMref", OUT, ctx.clock.now(), rule="visit", status="sms_sent", text="hi")
        assert conversation.log(ctx, {"1": [entry]}) == 1
        assert conversation.log(ctx, {"1": [entry]}) == 0
        rows = [r for r in pycap.export_records(records=["1"]) if r["redcap_repeat_instrument"]]
        assert [(r["redcap_repeat_instrument"], r["redcap_repeat_instance"]) for r in rows] == [
            *((r["redcap_repeat_instrument"], r["redcap_repeat_instance"]) for r in before),
            ("relay_message", 1),
        ]
        assert [r for r in rows if r["redcap_repeat_instrument"] == "bp"] == [
            r for r in before if r["redcap_repeat_instrument"] == "bp"
        ]


def test_exports_give_a_record_its_own_rows_unless_asked_for_instances(logged: Rig) -> None:
    """Every reader of a record's own row (status, claims, replies...) gets no log instance in
    its rows, whatever fields it asks for; the log's own readers ask for them."""
    join(logged, "1")
    send(logged)
    client = logged.ctx().redcap
    own = client.export(["record_id", "msg_sid", "visit_status"], records=["1"])
    assert [(r["redcap_repeat_instrument"], r["visit_status"]) for r in own] == [("", "sms_sent")]
    every = client.export(["record_id", "msg_sid"], records=["1"], instances=True)
    assert [r["redcap_repeat_instrument"] for r in every] == ["", "relay_message", "relay_message"]
