"""Message rules from a RULES_FILE, end to end against the sandbox: triggers, delays, date
anchors, stop_when, repeats, expiry, quiet hours, languages, baseline of a new rule, cost."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from messaging.rules_file import load_rules
from sandbox.redcap.demo import build_demo_project
from sandbox.rehearsal import add_rule_fields
from services import delivery_checker, registration_detector
from services.sms_sender import Sender
from tests.services.conftest import Rig, at_start, start_rig, start_rules_rig

WELCOME = """
[[rule]]
name = "welcome"
when = "[registration_complete] = '2'"
delay_minutes = 1
survey = "interest_form"
template = "Thanks {field:first_name}! Your survey: {survey_link}"
"""
REMINDER = """
[[rule]]
name = "reminder"
when = "[registration_complete] = '2'"
delay_minutes = 2880
survey = "interest_form"
stop_when = "[interest_form_complete] = '2'"
repeat = 1
every_minutes = 2880
template = "A reminder: your survey is waiting at {survey_link}"
"""
VISIT = """
[[rule]]
name = "visit"
when = "[visit_datetime] <> ''"
anchor = "visit_datetime"
offset_minutes = -1440
template.en = "See you {field:visit_datetime:datetime}. Reply STOP to opt out."
template.es = "Le esperamos el {field:visit_datetime:date:long}."
language_field = "language"
languages = { 1 = "en", 2 = "es" }
"""
PHONE = "+16175550100"


@pytest.fixture
def three(tmp_path: Path) -> Iterator[Rig]:
    """The demo project with the welcome, reminder and visit rules; noon UTC in New York."""
    yield from start_rules_rig(
        tmp_path, WELCOME + REMINDER + VISIT, sim_clock=at_start(), TIMEZONE="America/New_York"
    )


def join(rig: Rig, record_id: str, phone: str, **values: str) -> None:
    """A participant registers (with ``values`` typed by staff) and the detector sees it."""
    rig.register(record_id, phone)
    if values:
        rig.set(record_id, **values)
    registration_detector.run_once(rig.ctx(needs_twilio=False))


def cycle(rig: Rig, **overrides: str) -> dict[str, int]:
    """Detector then sender, as the services would run one after the other."""
    registration_detector.run_once(rig.ctx(needs_twilio=False, **overrides))
    return dict(Sender(dry_run=False).run_once(rig.ctx(**overrides)).counts)


def only_visit(rig: Rig, *records: str) -> None:
    """Keep the welcome and reminder rules out of a test about the visit rule."""
    for rid in records:
        rig.set(rid, welcome_status="baseline", reminder_status="baseline")


def advance(rig: Rig, minutes: float) -> None:
    rig.advance(minutes * 60)


def bodies(rig: Rig, phone: str = PHONE) -> list[str]:
    return [str(m["body"]) for m in rig.sent_to(phone)]


def test_welcome_then_reminder_cancelled_for_those_who_completed(three: Rig) -> None:
    """Welcome after a minute; two days later the reminder goes only to who has not answered,
    and is cancelled (never sent) for who has; the series ends after its one repeat."""
    join(three, "1", "(617) 555-0100")
    join(three, "2", "(617) 555-0101")
    advance(three, 2)
    assert cycle(three)["sent"] == 2
    three.set("2", interest_form_complete="2")
    advance(three, 2880)
    counts = cycle(three)
    assert counts["sent"] == 1 and counts["cancelled"] == 1
    assert three.values("2")["reminder_status"] == "cancelled"
    assert len(bodies(three, "+16175550101")) == 1  # the welcome only
    link = three.redcap_link("1")
    assert bodies(three) == [
        f"Thanks Ada! Your survey: {link}",
        f"A reminder: your survey is waiting at {link}",
    ]
    advance(three, 1)
    delivery_checker.run_once(three.ctx())
    advance(three, 2880)
    assert cycle(three)["sent"] == 1  # the one repeat
    assert three.values("1")["reminder_sms_count"] == "2"
    advance(three, 1)
    delivery_checker.run_once(three.ctx())
    advance(three, 2880)
    assert cycle(three).get("sent", 0) == 0  # the series is over
    assert len(bodies(three)) == 3  # the welcome, the reminder and its one repeat


def test_visit_reminder_goes_24_hours_before_in_the_participants_language(three: Rig) -> None:
    """A visit on Thursday 10:00 is texted Wednesday 10:00 local, in Spanish for code 2."""
    join(three, "1", "(617) 555-0100", visit_datetime="2026-03-05 10:00", language="2")
    only_visit(three, "1")
    # Monday noon UTC = 07:00 New York; the reminder is due Wednesday 10:00 = 15:00 UTC.
    advance(three, 2 * 1440 + 179)
    assert cycle(three).get("sent", 0) == 0
    advance(three, 2)
    assert cycle(three)["sent"] == 1
    assert bodies(three) == ["Le esperamos el 5 de marzo de 2026."]


def test_moving_the_visit_moves_the_reminder_and_a_past_visit_expires(three: Rig) -> None:
    """The anchor is read each cycle: a later visit delays the text; a visit that passed before
    the text could go makes it expired, never sent."""
    join(three, "1", "(617) 555-0100", visit_datetime="2026-03-03 09:00")
    join(three, "2", "(617) 555-0101", visit_datetime="2026-03-02 07:30")  # 07:00 local now
    only_visit(three, "1", "2")
    three.set("1", visit_datetime="2026-03-04 09:00")  # rescheduled before its reminder
    advance(three, 60)  # 08:00 local: record 2's visit has begun; record 1's is tomorrow
    counts = cycle(three)
    assert counts["expired"] == 1 and counts.get("sent", 0) == 0
    values = three.values("2")
    assert (values["visit_status"], values["visit_error_code"]) == ("expired", "expired")
    advance(three, 1440)  # 08:00 on the 3rd: still a day before the moved visit
    assert cycle(three).get("sent", 0) == 0
    advance(three, 61)
    assert cycle(three)["sent"] == 1
    assert three.sent_to("+16175550101") == []


def test_quiet_hours_hold_a_due_reminder_and_never_drop_it(three: Rig) -> None:
    """Due inside QUIET_HOURS: it waits, and goes out when they end (before the anchor)."""
    join(three, "1", "(617) 555-0100", visit_datetime="2026-03-03 22:00")
    only_visit(three, "1")
    advance(three, 15 * 60 + 1)  # 22:01 local on the 2nd: due, but quiet
    assert cycle(three, QUIET_HOURS="21:00-08:00")["waiting_quiet_hours"] == 1
    advance(three, 10 * 60)  # 08:01 on the 3rd
    assert cycle(three, QUIET_HOURS="21:00-08:00")["sent"] == 1


def test_baseline_of_a_new_rule_never_texts_the_past(tmp_path: Path) -> None:
    """A rule added to a live study: admin baseline --rule marks those it already applies to,
    and they are never texted by it; a newcomer is."""
    for rig in start_rules_rig(tmp_path, WELCOME + REMINDER):
        rig.register("1", "(617) 555-0100")
        done = rig.run("services.admin", "baseline", "--rule", "reminder")
        assert done.returncode == 0 and "marked 1 record(s) baseline for rule reminder" in (
            done.stdout
        )
        join(rig, "2", "(617) 555-0101")
        advance(rig, 2)
        assert cycle(rig)["sent"] == 2  # both welcomes
        advance(rig, 2881)
        assert cycle(rig)["sent"] == 1
        assert rig.values("1")["reminder_status"] == "baseline"
        assert len(rig.sent_to(PHONE)) == 1


def test_runaway_guard_holds_per_rule(tmp_path: Path) -> None:
    """A new rule that suddenly matches many records is held (and says how to fix it); the
    other rules go on."""
    for rig in start_rules_rig(tmp_path, WELCOME + REMINDER, MAX_NEW_PER_CYCLE="2"):
        for n in range(1, 4):
            rig.register(str(n), f"(617) 555-010{n}")
        result = registration_detector.run_once(rig.ctx(needs_twilio=False))
        assert result.counts["held_by_runaway_guard"] == 6
        assert "baseline --rule" in result.problem


def test_idle_cycle_is_one_request_per_service_for_any_number_of_rules(three: Rig) -> None:
    """Three rules and records waiting far ahead: each service's idle cycle is one export."""
    join(three, "1", "(617) 555-0100", visit_datetime="2026-06-01 10:00")
    advance(three, 2)
    cycle(three)  # the welcome goes
    advance(three, 1)
    delivery_checker.run_once(three.ctx())
    detector, sender, checker = three.ctx(needs_twilio=False), three.ctx(), three.ctx()
    three.redcap.server.reset_stats()
    registration_detector.run_once(detector)
    Sender(dry_run=False).run_once(sender)
    delivery_checker.run_once(checker)
    assert dict(three.redcap.server.stats.requests) == {"record/export": 3}


def test_admin_status_shows_each_rules_funnel(three: Rig) -> None:
    """Per rule: its own counts, and the cancelled/expired codes of file rules."""
    join(three, "1", "(617) 555-0100")
    advance(three, 2)
    cycle(three)
    done = three.run("services.admin", "status")
    assert "rule welcome:" in done.stdout and "rule visit:" in done.stdout
    assert "  cancelled" in done.stdout and "  expired" in done.stdout


@pytest.mark.parametrize(
    ("transition", "visit", "due_utc"),
    [
        # DST starts 2026-03-08 02:00 and ends 2026-11-01 02:00 in New York.
        ("spring forward", "2026-03-08 10:00", "2026-03-07 15:00"),  # EDT visit, EST day before
        ("fall back", "2026-11-01 10:00", "2026-10-31 14:00"),  # EST visit, EDT day before
    ],
)
def test_24_hours_before_keeps_the_wall_clock_across_daylight_saving(
    tmp_path: Path, transition: str, visit: str, due_utc: str
) -> None:
    """ "24 h before" a 10:00 visit is 10:00 local the day before, even across a DST change."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from messaging.due import due_at
    from messaging.records import RuleRow

    path = tmp_path / "rules.toml"
    path.write_text(VISIT, encoding="utf-8")
    [rule] = load_rules(path, default_event="")
    row = RuleRow(rule, "1", {"visit_datetime": visit})
    due = due_at(row, ZoneInfo("America/New_York"))
    assert due is not None
    expected = datetime.strptime(due_utc, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
    assert due == expected, transition
    local_visit = datetime.strptime(visit, "%Y-%m-%d %H:%M").replace(
        tzinfo=ZoneInfo("America/New_York")
    )
    elapsed = local_visit.astimezone(UTC) - due.astimezone(UTC)
    assert elapsed == timedelta(hours=23 if transition == "spring forward" else 25)


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (
            ("[registration_complete] = '2'", "[registration_complete] = = '2'"),
            "rule welcome: when",
        ),
        (("delay_minutes = 1", 'anchor = "first_name"'), "anchor = 'first_name' is not a date"),
        (("Thanks {field:first_name}!", "Hi {field:nickname}!"), "nickname"),
    ],
    ids=["logic REDCap rejects", "anchor not a date", "unknown template field"],
)
def test_a_rule_the_project_cannot_run_stops_every_command_in_one_line(
    tmp_path: Path, change: tuple[str, str], said: str
) -> None:
    """What only REDCap can tell is checked at startup: exit 3, one line naming the rule."""
    for rig in start_rules_rig(tmp_path, WELCOME.replace(*change)):
        done = rig.run("services.registration_detector", "--once")
        assert done.returncode == 3, done.stderr
        [line] = done.stderr.strip().splitlines()
        assert said in line and "Traceback" not in done.stderr


def test_missing_rule_fields_are_named_with_the_command_that_makes_them(tmp_path: Path) -> None:
    """A rule whose fields the project lacks: named, with `admin instrument` as the fix; that
    command prints them without needing them (REDCap column order, one row per field)."""
    path = tmp_path / "rules.toml"
    path.write_text(WELCOME, encoding="utf-8")
    for rig in start_rig(build_demo_project(), tmp_path, RULES_FILE=str(path)):
        done = rig.run("services.sms_sender", "--once")
        assert done.returncode == 3
        assert "welcome_status missing" in done.stderr and "admin instrument" in done.stderr
        printed = rig.run("services.admin", "instrument")
        assert printed.returncode == 0
        lines = printed.stdout.splitlines()
        assert lines[0].startswith('"Variable / Field Name","Form Name"')
        assert [line.split(",")[0] for line in lines[1:3]] == [
            "welcome_status",
            "welcome_registered_at",
        ]
        assert len(lines) == 1 + 15


def test_without_rules_file_admin_instrument_prints_the_shipped_csv(rig: Rig) -> None:
    """The built-in rule's fields are exactly redcap/pipeline_instrument.csv."""
    done = rig.run("services.admin", "instrument")
    shipped = (
        Path(__file__).resolve().parents[2] / "redcap" / "pipeline_instrument.csv"
    ).read_text()
    assert done.returncode == 0 and done.stdout == shipped


FOLLOWUP = """
[[rule]]
name = "followup"
when = "[enrollment_arm_1][registration_complete] = '2'"
event = "followup_arm_1"
delay_minutes = 1
survey = "interest_form"
template = "Time for your follow-up survey: {survey_link}"
"""


def test_a_longitudinal_rule_keeps_its_fields_and_link_in_its_event(tmp_path: Path) -> None:
    """A rule in the follow-up event: registration in enrollment triggers it; its status and
    its survey link are the follow-up event's."""
    from sandbox.redcap.demo import FOLLOWUP_EVENT, build_demo_longitudinal_project

    path = tmp_path / "rules.toml"
    path.write_text(FOLLOWUP, encoding="utf-8")
    project = add_rule_fields(
        build_demo_longitudinal_project(), load_rules(path, default_event="enrollment_arm_1")
    )
    for rig in start_rig(project, tmp_path, RULES_FILE=str(path), REDCAP_EVENT="enrollment_arm_1"):
        rig.register("1", "(617) 555-0100", event="enrollment_arm_1")
        registration_detector.run_once(rig.ctx(needs_twilio=False))
        advance(rig, 2)
        assert Sender(dry_run=False).run_once(rig.ctx()).counts["sent"] == 1
        with rig.project.lock:
            slots = rig.project.records["1"].slots
            followup = next(v for (event, _, _), v in slots.items() if event == FOLLOWUP_EVENT)
        assert followup["followup_status"] == "sms_sent"
        pycap_link = rig.redcap_link_in("1", FOLLOWUP_EVENT)
        assert bodies(rig) == [f"Time for your follow-up survey: {pycap_link}"]


def test_a_busy_cycle_batches_its_imports_and_waiting_records_keep_idle_at_one_export(
    three: Rig,
) -> None:
    """Twelve due for the welcome: one import per rule that marks them, a claim and a result
    import and the claim's two reads per chunk of ten, one import of their deliveries; with
    every rule then waiting far ahead (reminder delay, a visit in June, the reminder's repeat)
    each idle cycle is one export."""
    for n in range(12):
        three.register(str(n + 1), f"(617) 555-01{n:02d}")
        three.set(str(n + 1), visit_datetime="2026-06-01 10:00")
    detector, sender, checker = three.ctx(needs_twilio=False), three.ctx(), three.ctx()
    three.redcap.server.reset_stats()
    registration_detector.run_once(detector)
    # one OR-filtered export, one per rule to say which holds, one import per matching rule
    assert dict(three.redcap.server.stats.requests) == {"record/export": 4, "record/import": 3}
    advance(three, 2)
    three.redcap.server.reset_stats()
    assert Sender(dry_run=False).run_once(sender).counts["sent"] == 12
    assert dict(three.redcap.server.stats.requests) == {
        "record/export": 1 + 2 * 2,
        "surveyLink/export": 12,
        "record/import": 4,
    }
    advance(three, 1)
    three.redcap.server.reset_stats()
    assert delivery_checker.run_once(checker).counts["delivered"] == 12
    assert dict(three.redcap.server.stats.requests) == {"record/export": 1, "record/import": 1}
    for when in (0.0, 2880.0):  # waiting for the reminder; then between it and its repeat
        advance(three, when)
        cycle(three)
        advance(three, 1)
        delivery_checker.run_once(checker)
        three.redcap.server.reset_stats()
        registration_detector.run_once(detector)
        Sender(dry_run=False).run_once(sender)
        delivery_checker.run_once(checker)
        assert dict(three.redcap.server.stats.requests) == {"record/export": 3}
