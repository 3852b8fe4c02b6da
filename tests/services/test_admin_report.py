"""admin status --report-id N: a saved REDCap report read through the API, as the source of
the funnel when it holds the pipeline fields, else its size and columns."""

from __future__ import annotations

import json

from sandbox.redcap.demo import FUNNEL_REPORT, NEEDS_ATTENTION_REPORT, find_report
from sandbox.redcap.model import Report
from services import registration_detector
from services.admin.status import command_status, funnel
from services.sms_sender import Sender
from tests.services.conftest import Rig


def sent_two_skipped_one(rig: Rig) -> None:
    """1 sent, 2 failed (Twilio refuses the number), 3 skipped (no usable phone)."""
    rig.register("1")
    rig.register("2", "+15005550004")
    rig.register("3", "not a phone")
    registration_detector.run_once(rig.ctx(needs_twilio=False))
    rig.clock.advance(61)
    Sender(dry_run=False).run_once(rig.ctx())


def test_a_report_with_the_pipeline_fields_gives_the_funnel(rig: Rig) -> None:
    """The demo's "Pipeline funnel" report (every pipeline_* field): the same funnel as our
    own export, plus the report's id, rows and columns; one report request, no export."""
    sent_two_skipped_one(rig)
    report = find_report(rig.project, FUNNEL_REPORT)
    done = rig.run("services.admin", "status", "--json", "--report-id", str(report.report_id))
    assert done.returncode in (0, 1), done.stderr  # the real clock is long past START
    data = json.loads(done.stdout)
    assert data["report"]["rows"] == 3 and data["report"]["rules"] == ["pipeline"]
    assert "pipeline_status" in data["report"]["columns"]
    ours = funnel(rig.ctx(needs_twilio=False))
    assert data["by_status"] == ours["by_status"] and data["funnel"] == ours["funnel"]
    ctx = rig.ctx(needs_twilio=False)
    rig.redcap.server.reset_stats()
    command_status(ctx, True, report_id=str(report.report_id))
    assert dict(rig.redcap.server.stats.requests) == {"report/export": 1}


def test_a_report_filter_picks_the_records_and_lacking_fields_are_not_checked(rig: Rig) -> None:
    """ "Needs attention" (a filter, no times): the funnel of the records it selects; the health
    checks needing times it lacks are listed as not checked, not passed."""
    sent_two_skipped_one(rig)
    report = find_report(rig.project, NEEDS_ATTENTION_REPORT)
    done = rig.run("services.admin", "status", "--json", "--report-id", str(report.report_id))
    data = json.loads(done.stdout)
    assert data["records"] == 1 and data["by_status"]["failed"] == 1
    assert data["by_status"]["skipped"] == 0 and data["by_status"]["sms_sent"] == 0
    assert any("pipeline_registered_at" in n for n in data["health"]["not_checked"])


def test_a_report_without_pipeline_fields_shows_its_size_and_columns(rig: Rig) -> None:
    """A team's own report without our fields: its row count and columns, how to get the
    funnel from it; exit 0 (nothing to judge the health on)."""
    rig.register("1")
    rig.project.reports[77] = Report(report_id=77, title="Mine", fields=["record_id", "first_name"])
    done = rig.run("services.admin", "status", "--report-id", "77")
    assert done.returncode == 0, done.stderr
    assert "report 77: 1 row(s); columns: first_name, record_id" in done.stdout
    assert "add them to see the funnel" in done.stdout and "Ada" not in done.stdout


def test_a_report_of_another_project_is_refused_in_words(rig: Rig) -> None:
    """A report id REDCap does not know is the argument's fault, said so (not "the token was
    refused"): exit 2, one line naming --report-id and where the ids are."""
    done = rig.run("services.admin", "status", "--report-id", "12345")
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert "--report-id 12345: this project has no report 12345" in line
    assert "My Reports & Exports" in line and "token" not in line and "Traceback" not in line
