"""Study IDs ([[assign]] rules): each eligible record gets the next ID of its group, once, in
the same write as its status; a value typed by hand is kept and never overwritten; records
without one group are skipped with the reason; the rule's fields, baseline, the runaway guard,
requeue and the one-assigner lock work as for message rules."""

from __future__ import annotations

import collections
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.assign_soak import ASSIGN, INVITATION, RULES
from common.errors import ProjectCheckError
from messaging.ids import split_id
from sandbox.httpserver import wait_until
from services import registration_detector
from services.admin.status import funnel
from services.admin.status_page import render as render_status_page
from services.sms_sender import Sender
from tests.processes import finish
from tests.services.conftest import ROOT, Rig, clean_env, start_rules_rig


@pytest.fixture
def ids(tmp_path: Path) -> Iterator[Rig]:
    yield from start_rules_rig(tmp_path, RULES)


def screened(rig: Rig, record_id: str, group: str, eligible: str = "1", **values: str) -> None:
    """A participant registers and the team records the screening: group and eligibility."""
    rig.register(record_id)
    rig.set(record_id, study_group=group, eligible=eligible, **values)


def held(rig: Rig, record_id: str) -> dict[str, str]:
    """What REDCap holds for the record, a field never written being blank."""
    return collections.defaultdict(str, rig.values(record_id))


def detect(rig: Rig) -> dict[str, int]:
    return dict(registration_detector.run_once(rig.ctx(needs_twilio=False)).counts)


def test_each_group_counts_from_its_start_once_per_record(ids: Rig) -> None:
    """Control IDs run HC-03000, HC-03001 ...; patient IDs 10200, 10201; each record has its ID,
    status assigned and group in REDCap; a second cycle changes nothing."""
    for record_id, group in (("1", "1"), ("2", "2"), ("3", "1"), ("4", "2"), ("5", "1")):
        screened(ids, record_id, group)
    assert detect(ids)["assigned"] == 5
    got = {r: held(ids, r)["study_id"] for r in "12345"}
    assert got == {"1": "HC-03000", "2": "10200", "3": "HC-03001", "4": "10201", "5": "HC-03002"}
    for record_id in "12345":
        values = held(ids, record_id)
        assert values["study_id_status"] == "assigned"
        assert values["study_id_group"] == ("control" if record_id in "135" else "patient")
        assert values["study_id_assigned_at"].startswith("2026-03-02 ")
    fields = ("study_id", "study_id_status", "study_id_group", "study_id_assigned_at")
    before = {r: [held(ids, r)[name] for name in fields] for r in "12345"}
    assert detect(ids) == {"registered": 5}  # the invitations; no ID changes
    assert {r: [held(ids, r)[name] for name in fields] for r in "12345"} == before


def test_the_sequence_continues_from_what_redcap_holds(ids: Rig) -> None:
    """The next ID follows the highest REDCap holds, whoever wrote it: IDs already there
    (typed by hand, or given before) are never given again."""
    screened(ids, "1", "2")
    detect(ids)
    ids.set("1", study_id="10250")  # staff changed it by hand: the run goes on after it
    screened(ids, "2", "2")
    screened(ids, "3", "1")
    detect(ids)
    assert held(ids, "2")["study_id"] == "10251"
    assert held(ids, "3")["study_id"] == "HC-03000"


def test_a_value_typed_by_hand_is_kept_and_counted(ids: Rig) -> None:
    """A record whose ID field holds a value when the rule first applies keeps it (status
    kept, group read from the value), and the run never gives that value to anyone else."""
    screened(ids, "1", "1", study_id="HC-03004")
    screened(ids, "2", "1")
    screened(ids, "3", "2", study_id="OLD-7")  # no ID of this rule: kept, no group
    counts = detect(ids)
    assert (counts["kept"], counts["assigned"]) == (2, 1)
    one, three = held(ids, "1"), held(ids, "3")
    assert (one["study_id"], one["study_id_status"], one["study_id_group"]) == (
        "HC-03004",
        "kept",
        "control",
    )
    assert (three["study_id"], three["study_id_status"], three["study_id_group"]) == (
        "OLD-7",
        "kept",
        "",
    )
    assert held(ids, "2")["study_id"] == "HC-03005"


def test_no_group_or_several_groups_is_skipped_with_the_reason(tmp_path: Path) -> None:
    """A record no group takes, or two groups take, gets no ID: skipped, with the code and what
    to do; once corrected and requeued it gets its ID."""
    overlapping = ASSIGN.replace("when = \"[study_group] = '2'\"", "when = \"[study_group] <> ''\"")
    for rig in start_rules_rig(tmp_path, INVITATION + overlapping):
        screened(rig, "1", "")
        screened(rig, "2", "1")
        screened(rig, "3", "2")
        assert detect(rig) == {"skipped": 2, "assigned": 1}
        none, both = held(rig, "1"), held(rig, "2")
        assert (none["study_id_status"], none["study_id_error_code"]) == ("skipped", "no_group")
        assert "requeue" in none["study_id_error_message"] and none["study_id"] == ""
        assert (both["study_id_status"], both["study_id_error_code"]) == (
            "skipped",
            "several_groups",
        )
        assert held(rig, "3")["study_id"] == "10200"
        rig.set("1", study_group="2")
        done = rig.run("services.admin", "requeue", "1", "--rule", "study_id")
        assert done.returncode == 0, done.stderr
        assert held(rig, "1")["study_id_status"] == ""
        assert detect(rig)["assigned"] == 1  # and record 3's invitation is registered
        assert held(rig, "1")["study_id"] == "10201"


def test_a_group_whose_numbers_run_out_never_spills_into_the_next(tmp_path: Path) -> None:
    """Groups without prefixes share one run of numbers: control ends where patient starts, so
    a full group skips (group_full) instead of giving a patient's number."""
    narrow = ASSIGN.replace('start = 3000\nprefix = "HC-"\nwidth = 5', "start = 10198")
    for rig in start_rules_rig(tmp_path, INVITATION + narrow):
        for record_id in "123":
            screened(rig, record_id, "1")
        screened(rig, "4", "2")
        detect(rig)
        got = [held(rig, r)["study_id"] for r in "1234"]
        assert got == ["10198", "10199", "", "10200"]
        three = held(rig, "3")
        assert (three["study_id_status"], three["study_id_error_code"]) == (
            "skipped",
            "group_full",
        )


def test_the_invitation_carries_the_id_in_its_text_and_link(ids: Rig) -> None:
    """A rule ordered after the ID (its when requires the status) mails it: the text holds the
    ID as it is, the link holds it URL-encoded."""
    screened(ids, "1", "1")
    ids.set("1", email="ada@example.org")
    detect(ids)
    detect(ids)  # the invitation's when now holds
    Sender(dry_run=False).run_once(ids.ctx())
    [mail] = ids.mailed_to("ada@example.org")
    assert "Your study ID is HC-03000." in mail.content
    assert "/?StudyID=HC-03000\n" in mail.content


def test_url_placeholder_encodes_every_reserved_character(ids: Rig) -> None:
    """{url:field:NAME} leaves letters, digits and -._~ alone and encodes the rest."""
    screened(ids, "1", "1", study_id="A/B 7&x=1")
    ids.set("1", email="ada@example.org")
    detect(ids)
    ids.set("1", study_id_status="assigned")  # kept: the team lets it be invited anyway
    detect(ids)
    Sender(dry_run=False).run_once(ids.ctx())
    [mail] = ids.mailed_to("ada@example.org")
    assert "/?StudyID=A%2FB%207%26x%3D1\n" in mail.content


def test_baseline_and_the_runaway_guard_hold_for_an_id_rule(ids: Rig) -> None:
    """admin baseline --rule study_id marks who was eligible before go-live (never given an
    ID); more new records than MAX_NEW_PER_CYCLE are held by the guard, none given an ID."""
    screened(ids, "1", "1")
    done = ids.run("services.admin", "baseline", "--rule", "study_id")
    assert done.returncode == 0, done.stderr
    assert "marked 1 record(s) baseline for rule study_id" in done.stdout
    assert held(ids, "1")["study_id_status"] == "baseline"
    for record_id in "234":
        screened(ids, record_id, "2")
    result = registration_detector.run_once(ids.ctx(needs_twilio=False, MAX_NEW_PER_CYCLE="2"))
    assert result.counts["held_by_runaway_guard"] == 3
    assert "baseline --rule study_id" in result.problem
    assert all(held(ids, r)["study_id"] == "" for r in "1234")


def test_admin_instrument_prints_the_rule_fields(ids: Rig) -> None:
    """The ID rule's own fields, with its status codes, follow the message rules' fields."""
    done = ids.run("services.admin", "instrument")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    names = [line.split(",")[0] for line in lines[1:]]
    assert names[-5:] == [
        "study_id_status",
        "study_id_group",
        "study_id_assigned_at",
        "study_id_error_code",
        "study_id_error_message",
    ]
    status = next(line for line in lines if line.startswith("study_id_status,"))
    for code in ("baseline", "assigned", "kept", "skipped", "needs_review"):
        assert f"{code}, " in status


def test_one_assigner_per_project(ids: Rig) -> None:
    """A second detector of a study with ID rules, on the host where one runs, exits at start
    (the assign lock), saying why; without ID rules detectors hold no lock."""
    screened(ids, "1", "1")
    env = ids.env_file(POLL_INTERVAL_SECONDS="0.2")
    first = subprocess.Popen(
        [sys.executable, "-m", "services.registration_detector", "--env-file", str(env)],
        cwd=ROOT,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_until(lambda: held(ids, "1")["study_id"] != "", timeout=30)
        second = ids.run("services.registration_detector", "--once")
        assert second.returncode == 1
        assert "another detector giving study IDs is already running" in second.stderr
    finally:
        code, _, err = finish(first, terminate=True, timeout=20)
    assert code == 0, err
    assert split_id(held(ids, "1")["study_id"]) == ("HC-", 3000)


@pytest.mark.parametrize(
    ("field", "why"), [("first_name", "an identifier"), ("email", "validated as email")]
)
def test_a_link_carries_no_identifier(tmp_path: Path, field: str, why: str) -> None:
    """The project check refuses {url:field:NAME} of a field the data dictionary marks as an
    identifier, or validates as a phone or an e-mail: only a study ID goes in a link."""
    leaky = INVITATION.replace("{url:field:study_id}", f"{{url:field:{field}}}")
    for rig in start_rules_rig(tmp_path, leaky + ASSIGN):
        with pytest.raises(ProjectCheckError) as caught:
            rig.ctx(needs_twilio=False)
        assert f"{{url:field:{field}}} puts {field} ({why} in the data dictionary)" in str(
            caught.value
        )
        done = rig.run("services.admin", "check")
        assert done.returncode != 0 and "put only a study ID in a link" in done.stdout


def test_admin_status_counts_the_id_rule_by_status(ids: Rig) -> None:
    """admin status shows the ID rule's records by status and why some got no ID (never an
    ID itself), in text, JSON and the status page."""
    screened(ids, "1", "1")
    screened(ids, "2", "")
    detect(ids)
    done = ids.run("services.admin", "status")
    assert "rule study_id (study IDs in study_id):" in done.stdout, done.stdout + done.stderr
    section = done.stdout.split("rule study_id (study IDs in study_id):")[1]
    assert "  assigned           1" in section and "  skipped            1" in section
    assert "  skipped:no_group                    1" in section
    assert "HC-03000" not in done.stdout
    data = json.loads(ids.run("services.admin", "status", "--json").stdout)
    assert data["ids"]["study_id"]["by_status"]["assigned"] == 1
    ctx = ids.ctx(needs_twilio=False)
    page = render_status_page(ctx, funnel(ctx))
    assert "Rule study_id (study IDs in study_id)" in page and "HC-03000" not in page
