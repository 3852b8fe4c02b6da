"""admin report: per rule the funnel of the past 7 days and in total, enrollment per week and
group of the study ID rule, the records that need a person; printed, written as an e-mail page
Outlook renders (tables and inline styles only), mailed to REPORT_EMAIL_TO; counts and record
ids only, and it renders in headless Chromium."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.assign_soak import RULES
from sandbox.status_page_shot import screenshot
from services import registration_detector
from services.admin.report import report
from services.admin.report_page import render
from services.sms_sender import Sender
from tests.services.conftest import ROOT, Rig, start_rules_rig
from tests.services.test_status_page import INSTALL_SECONDS, chromium, png_pixels

__all__ = ["chromium"]  # the fixture, shared with the status page's test

WELCOME = """
[[rule]]
name = "welcome"
when = "[registration_complete] = '2'"
template = "Thanks for registering, {field:first_name}."
"""
EMAILS = {"1": "ada@example.org", "2": "ben@example.org", "3": "cai@example.org"}
PHONES = {"1": "+16175550101", "2": "+16175550102", "3": "+15005550001", "4": "+16175550104"}


@pytest.fixture
def study(tmp_path: Path) -> Iterator[Rig]:
    """A week ago records 1 (control) and 2 (patient) were screened eligible and invited; this
    week 3 (control) and 4 (no group: skipped) were. 3's number is invalid: the welcome failed."""
    for rig in start_rules_rig(
        tmp_path, WELCOME + RULES, REPORT_EMAIL_TO="team@example.org", TIMEZONE="UTC"
    ):
        for record_id, group in (("1", "1"), ("2", "2")):
            screen(rig, record_id, group)
        cycle(rig)
        rig.clock.advance(8 * 24 * 3600)
        for record_id, group in (("3", "1"), ("4", "")):
            screen(rig, record_id, group)
        cycle(rig)
        yield rig


def screen(rig: Rig, record_id: str, group: str) -> None:
    rig.register(record_id, PHONES[record_id])
    rig.set(record_id, study_group=group, eligible="1", email=EMAILS.get(record_id, ""))


def cycle(rig: Rig) -> None:
    """IDs and the welcome, then the invitations, each sent."""
    for _ in range(2):
        registration_detector.run_once(rig.ctx(needs_twilio=False))
        Sender(dry_run=False).run_once(rig.ctx())


def test_the_figures_split_the_past_week_from_the_total(study: Rig) -> None:
    """Enrollment: control 1 a week ago and 1 this week, patient 1 a week ago; the invitation
    funnel likewise; skipped and failed records are listed by id with their reason."""
    data = report(study.ctx(needs_twilio=False))
    ids = data["ids"]["study_id"]
    assert ids["groups"] == ["control", "patient"]
    assert ids["total"] == {"control": 2, "patient": 1} and ids["week"] == {
        "control": 1,
        "patient": 0,
    }
    weeks = {w["week"]: w["counts"] for w in ids["weeks"]}
    assert len(weeks) == 8 and weeks["2026-03-02"] == {"control": 1, "patient": 1}
    assert weeks["2026-03-09"] == {"control": 1, "patient": 0}
    assert ids["skipped_by_reason"] == {"no_group": 1}
    invitation = data["rules"]["invitation"]
    assert invitation["week"]["new"] == 1 and invitation["total"]["new"] == 3
    assert invitation["week"]["sent"] == 1 and invitation["total"]["sent"] == 3
    welcome = data["rules"]["welcome"]
    assert welcome["total"]["failed"] == {"failed:21211": 1}
    assert welcome["week"]["failed"] == {"failed:21211": 1}
    problems = {(r["record"], r["rule"], r["status"], r["code"]) for r in data["attention"]}
    assert problems == {
        ("3", "welcome", "failed", "21211"),
        ("4", "study_id", "skipped", "no_group"),
    }


def test_one_export_of_the_touched_records(study: Rig) -> None:
    """The figures cost one REDCap export, whatever the number of rules."""
    ctx = study.ctx(needs_twilio=False)
    study.redcap.server.reset_stats()
    report(ctx)
    assert dict(study.redcap.server.stats.requests) == {"record/export": 1}


def test_printed_written_and_mailed(study: Rig, tmp_path: Path) -> None:
    """admin report prints the text; --html writes the page (0600: its record ids may be
    medical record numbers; --public 0644); --email mails it (HTML) to REPORT_EMAIL_TO, no one
    else, and says so with the address masked."""
    printed = study.run("services.admin", "report")
    assert printed.returncode == 0, printed.stderr
    assert "Enrollment (study IDs of rule study_id): control / patient" in printed.stdout
    assert "  in total: 2 / 1" in printed.stdout
    page = tmp_path / "report.html"
    done = study.run("services.admin", "report", "--html", str(page), "--email")
    assert done.returncode == 0, done.stderr
    assert "sent to t***@e***.org" in done.stdout and "team@" not in done.stdout + done.stderr
    [mail] = study.mailed_to("team@example.org")
    assert mail.content_type == "html" and mail.subject.startswith("redcap-relay weekly report")
    assert mail.content == page.read_text(encoding="utf-8")
    assert page.stat().st_mode & 0o777 == 0o600
    assert study.run("services.admin", "report", "--html", str(page), "--public").returncode == 0
    assert page.stat().st_mode & 0o777 == 0o644
    assert mail.headers["x-redcap-relay-id"].startswith("report-1-")
    assert (
        json.loads(study.run("services.admin", "report", "--json").stdout)["attention_total"] == 2
    )


def test_email_without_report_email_to_is_a_config_error(study: Rig) -> None:
    """--email with REPORT_EMAIL_TO unset: one line naming it, exit 2, nothing mailed."""
    done = study.run("services.admin", "report", "--email", REPORT_EMAIL_TO="")
    assert done.returncode == 2
    assert "REPORT_EMAIL_TO is not set" in done.stderr and len(done.stderr.splitlines()) == 1
    assert study.mailed_to("team@example.org") == []


def test_the_page_holds_no_contact_data_nor_anything_outlook_drops(study: Rig) -> None:
    """No phone (in any form), address, survey link, study ID or message text; no link, script,
    SVG, image or style block: tables and inline styles, every value escaped."""
    html = render(report(study.ctx(needs_twilio=False)))
    for number in PHONES.values():
        assert number not in html and number[2:] not in html and number[-7:] not in html
    for address in EMAILS.values():
        assert address not in html and address.split("@")[0] not in html
    for record_id in PHONES:
        if value := study.values(record_id).get("study_id"):
            assert value not in html
    assert "Thanks for registering" not in html and "Your study ID" not in html
    assert not re.search(r"\b(src|href)\s*=", html, re.IGNORECASE)
    for banned in ("http", "<script", "<svg", "<img", "<style", "display:flex", "display:grid"):
        assert banned not in html.lower()
    assert "<table" in html and 'bgcolor="#14325c"' in html


def test_values_are_escaped(study: Rig) -> None:
    """A group or rule name with markup shows as text."""
    data = report(study.ctx(needs_twilio=False))
    data["attention"][0]["rule"] = "<b>x</b>"
    assert "&lt;b&gt;x&lt;/b&gt;" in render(data) and "<b>x</b>" not in render(data)


@pytest.mark.timeout(3 * INSTALL_SECONDS + 120)  # the first test on a machine may install it
def test_the_report_renders_in_headless_chromium(study: Rig, chromium: str, tmp_path: Path) -> None:
    """Chromium renders the mail to a screenshot with text and bars on it."""
    html, png = tmp_path / "report.html", tmp_path / "report.png"
    html.write_text(render(report(study.ctx(needs_twilio=False))), encoding="utf-8")
    screenshot(html, png, chromium=chromium, timeout=90)
    data = png.read_bytes()
    width, height, pixels = png_pixels(data)
    assert (width, height) == (1200, 1600) and len(data) > 20_000
    assert len(set(pixels)) > 64


def test_the_kubernetes_cronjob_mails_the_report_weekly() -> None:
    """docs/k8s: one CronJob running admin report --email weekly, one at a time, never retried
    in the Job, with the private copy of the settings the other CronJobs use."""
    yaml = pytest.importorskip("yaml", reason="PyYAML comes with openapi-core in requirements-dev")
    text = (ROOT / "docs" / "k8s" / "redcap-relay-report-cronjob.yaml").read_text("utf-8")
    (job,) = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    spec = job["spec"]
    assert job["kind"] == "CronJob" and spec["schedule"] == "0 8 * * 1"
    assert (
        spec["concurrencyPolicy"] == "Forbid" and spec["jobTemplate"]["spec"]["backoffLimit"] == 0
    )
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == [
        "python", "-m", "services.admin", "report", "--email", "--env-file",
        "/run/redcap-relay/relay.env",
    ]  # fmt: skip
    (init,) = pod["initContainers"]
    assert init["command"] == [
        "install", "-m", "600", "/etc/redcap-relay/relay.env", "/run/redcap-relay/relay.env"
    ]  # fmt: skip
    secret = next(v["secret"] for v in pod["volumes"] if v["name"] == "settings")
    assert secret["defaultMode"] == 0o400
